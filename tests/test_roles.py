"""Every cell of docs/roles.md's table for commands and storage: each is observed, not assumed.

One project per test: an admin (Boss, passphrase), three ophthalmologists (Dr 0 with a PIN, Dr 1,
Dr 2), a reviewer (Rhea, PIN); two training photos and one test photo, each read by the three
ophthalmologists, with labels and landmarks saved. A cell's check acts as that role's person
through the real command line (``--as``, credential from $OCTANT_CREDENTIAL) or storage API and
reports what happened in the table's words. The screens' rows are in tests/ui/test_roles_screens.py.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import pytest
from sqlalchemy import insert, select

import main
from storage.assignment import assign_readers
from storage.errors import AccessDeniedError
from storage.images import NewImage, add_images
from storage.predictions import list_models, register_model, save_prediction
from storage.project import ProjectHandle, create_project, update_settings
from storage.readers import Role, add_reader, create_first_admin, find_reader, set_reader_active
from storage.reading import ReaderSession
from storage.schema import Read
from tests.conftest import ADMIN_PASSPHRASE
from tests.roles_table import cells, role_table

CREDENTIALS = {"Boss": ADMIN_PASSPHRASE, "Rhea": "246810", "Dr 0": "135791"}
ACTING = {"Reader": "Dr 0", "Reviewer": "Rhea", "Admin": "Boss"}


def screen_row(row: str) -> bool:
    return row.startswith("gui-")


@dataclass
class Clinic:
    project: ProjectHandle
    images: list[int]   # train, train, test

    @property
    def db(self):
        return self.project.database

    def id(self, name: str) -> int:
        return find_reader(self.db, name).id


@pytest.fixture
def clinic(tmp_path, monkeypatch) -> Clinic:
    project = create_project(tmp_path / "clinic", name="Roles")
    db = project.database
    boss = create_first_admin(db, "Boss", ADMIN_PASSPHRASE)
    for name, role in (("Dr 0", Role.OPHTHALMOLOGIST), ("Dr 1", Role.OPHTHALMOLOGIST),
                       ("Dr 2", Role.OPHTHALMOLOGIST), ("Rhea", Role.REVIEWER)):
        add_reader(db, name, role, CREDENTIALS.get(name), acting_reader_id=boss.id)
    images = add_images(db, [NewImage(tmp_path / f"eye{i}.jpg", f"{i + 1:064x}", 64, 48, None,
                                      "test" if i == 2 else "train") for i in range(3)])
    update_settings(db, split_roles={"train": ["ophthalmologist"], "test": ["ophthalmologist"]})
    assign_readers(db)
    clinic = Clinic(project, images)
    for n in range(3):
        session = ReaderSession(db, clinic.id(f"Dr {n}"))
        session.set_regions(images[0], "haemorrhage", {n + 1})
        if n == 1:
            session.set_landmarks(images[0], disc=(40.0, 24.0), fovea=(20.0, 24.0))
    save_prediction(db, images[2], "regions", {"haemorrhage": [1]}, "model-1")
    register_model(db, "m", "guided:haemorrhage", {}, {}, {"validation": {"eye": {"present": True}}}, "m.pt")
    monkeypatch.setenv("OCTANT_PROJECT", str(project.root))
    monkeypatch.setattr("sys.stdin", io.StringIO(""))   # nothing typed unless a check says so
    yield clinic
    project.close()


def run(capsys, monkeypatch, who: str | None, *argv, stdin: str = "") -> tuple[int, str]:
    """Run a command as ``who`` (their credential in $OCTANT_CREDENTIAL); exit code and stderr."""
    if who in CREDENTIALS:
        monkeypatch.setenv("OCTANT_CREDENTIAL", CREDENTIALS[who])
    else:
        monkeypatch.delenv("OCTANT_CREDENTIAL", raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    capsys.readouterr()
    code = main.main([str(a) for a in argv] + (["--as", who] if who else []))
    return code, capsys.readouterr().err


def allowed(code: int, err: str, refusals: tuple[str, ...], yes: str = "yes") -> str:
    if code == 0:
        return yes
    assert any(refusal in err for refusal in refusals), err   # refused for the role, not for another reason
    return "no"


ADMIN_ONLY = ("Only an admin",)
REVIEWERS_ONLY = ("reviewers and admins", "reviewer or admin")


def check_admin_command(argv_for, stdin: str = ""):
    def check(clinic, who, capsys, monkeypatch, tmp_path):
        code, err = run(capsys, monkeypatch, who, *argv_for(clinic), stdin=stdin)
        return allowed(code, err, ADMIN_ONLY)
    return check


def check_reinstate(clinic, who, capsys, monkeypatch, tmp_path):
    set_reader_active(clinic.db, clinic.id("Dr 2"), False, acting_reader_id=clinic.id("Boss"))
    code, err = run(capsys, monkeypatch, who, "readers", "reinstate", "Dr 2")
    return allowed(code, err, ADMIN_ONLY)


def check_own_pin(clinic, who, capsys, monkeypatch, tmp_path):
    new = "a new long passphrase"
    capsys.readouterr()
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{CREDENTIALS[who]}\n{new}\n"))
    assert main.main(["readers", "pin", who]) == 0
    # Not another's: the old one asked is theirs, so one's own credential does not change theirs.
    other = "Rhea" if who != "Rhea" else "Boss"
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{new}\n{new}\n"))
    assert main.main(["readers", "pin", other]) == 1 and "not right" in capsys.readouterr().err
    return "own"


def check_db_login(clinic, who, capsys, monkeypatch, tmp_path):
    """On SQLite an admin gets past the admin check and is then told logins are PostgreSQL's
    (tests/storage/test_database_roles.py makes them on a real server)."""
    code, err = run(capsys, monkeypatch, who, "readers", "db-login", "Dr 1", stdin="a database password\n")
    if code and "PostgreSQL only" in err:
        return "yes"
    return allowed(code, err, ADMIN_ONLY)


def check_export(clinic, who, capsys, monkeypatch, tmp_path):
    out = tmp_path / f"labels-{who}.csv"
    code, err = run(capsys, monkeypatch, who, "export", "--out", out)
    if code:
        return allowed(code, err, REVIEWERS_ONLY)
    return "all" if all(f"Dr {n}" in out.read_text() for n in range(3)) else "own"


def check_regions(clinic, who, capsys, monkeypatch, tmp_path):
    # Only Dr 1 placed landmarks on the first photo; the model placed none.
    from tests.annotate.fundus import write_photo

    image = find_image(clinic, clinic.images[0])
    write_photo(image.path, size=(64, 48))
    code, err = run(capsys, monkeypatch, who, "regions", clinic.images[0], "--out", tmp_path / "map.png")
    if code == 0:
        return "all"
    assert "has no landmarks" in err, err
    return "own"


def find_image(clinic, image_id):
    from storage.images import get_image

    return get_image(clinic.db, image_id)


def check_report(clinic, who, capsys, monkeypatch, tmp_path):
    code, err = run(capsys, monkeypatch, who, "report", "--out", tmp_path / "report")
    return "all" if code == 0 else allowed(code, err, REVIEWERS_ONLY)


def check_audit_export(clinic, who, capsys, monkeypatch, tmp_path):
    out = tmp_path / "audit.json"
    code, err = run(capsys, monkeypatch, who, "audit", "export", "--format", "json", "--out", out)
    if code:
        return allowed(code, err, REVIEWERS_ONLY)
    return "all" if '"haemorrhage"' in out.read_text() else "own"


def check_screenshot(clinic, who, capsys, monkeypatch, tmp_path):
    """The screenshot shows the named reader's window: signing in as them is required, and one
    person's credential does not open another's."""
    from ui.commands import sign_in_for_screenshot

    args = main.build_parser().parse_args(["screenshot", "--out", str(tmp_path), "--reader", who,
                                           "--project", str(clinic.project.root)])
    monkeypatch.setenv("OCTANT_CREDENTIAL", CREDENTIALS[who])
    sign_in_for_screenshot(args)
    monkeypatch.setenv("OCTANT_CREDENTIAL", "someone else's phrase")
    with pytest.raises(AccessDeniedError, match="not right"):
        sign_in_for_screenshot(args)
    return "own"


def check_labels_of(clinic, who, capsys, monkeypatch, tmp_path):
    session = ReaderSession(clinic.db, clinic.id(who))
    try:
        state = session.labels_of(clinic.id("Dr 2"), clinic.images[0])
    except AccessDeniedError as refusal:
        assert "Blind reading" in str(refusal)
        return "no"
    assert state.regions == {"haemorrhage": frozenset({3})}
    return "all"


def check_suggestions(clinic, who, capsys, monkeypatch, tmp_path):
    shown = ReaderSession(clinic.db, clinic.id(who)).suggestion(clinic.images[2], "regions")
    return "hidden" if shown is None else "shown"


def check_model_snapshot(clinic, who, capsys, monkeypatch, tmp_path):
    (model,) = list_models(clinic.db, reader_id=clinic.id(who))
    return "no" if model.label_snapshot is None else "yes"


def check_save_when_retired(clinic, who, capsys, monkeypatch, tmp_path):
    db, reader = clinic.db, clinic.id(who)
    with db.transaction() as session:   # reviewers and admins get no reads by assignment: give one
        if session.scalar(select(Read.id).where(Read.reader_id == reader)) is None:
            session.execute(insert(Read), dict(image_id=clinic.images[1], reader_id=reader, position=0))
    session = ReaderSession(db, reader)
    image = session.queue()[0].id
    session.set_regions(image, "drusen", {2})   # active: saves
    boss = clinic.id("Boss")
    if who == "Boss":   # the only admin cannot be retired: another admin retires Boss
        boss = add_reader(db, "Second admin", Role.ADMIN, "another long phrase", acting_reader_id=boss).id
    set_reader_active(db, reader, False, acting_reader_id=boss)
    try:
        session.set_regions(image, "drusen", {2, 3})
    except AccessDeniedError as refusal:
        assert "retired and cannot save" in str(refusal)
        assert session.read(image).regions["drusen"] == frozenset({2})   # nothing of the refused save
        return "no"
    return "yes"


CHECKS = {
    "readers-add": check_admin_command(lambda c: ["readers", "add", "Dr New", "--role", "ophthalmologist"]),
    "readers-role": check_admin_command(lambda c: ["readers", "role", "Dr 2", "glaucoma_specialist"]),
    "readers-retire": check_admin_command(lambda c: ["readers", "retire", "Dr 2"]),
    "readers-reinstate": check_reinstate,
    "readers-reset-pin": check_admin_command(lambda c: ["readers", "reset-pin", "Dr 1"], stdin="975310\n"),
    "readers-pin": check_own_pin,
    "readers-db-login": check_db_login,
    "split": check_admin_command(lambda c: ["split", c.images[0], "--to", "test"]),
    "reading-order": check_admin_command(lambda c: ["reading-order", "model-uncertainty"]),
    "export": check_export,
    "regions": check_regions,
    "report": check_report,
    "audit-export": check_audit_export,
    "screenshot": check_screenshot,
    "labels-of": check_labels_of,
    "suggestions-on-test": check_suggestions,
    "model-snapshot": check_model_snapshot,
    "save-when-retired": check_save_when_retired,
}
# Commands that sign nobody in: the documented "any" is that the command has no --as to give.
NO_SIGN_IN = {"init": ["init"], "import": ["import"], "assign": ["assign"], "status": ["status"],
              "label-source": ["label-source"], "readers-list": ["readers", "list"],
              "audit-verify": ["audit", "verify"], "backup": ["backup"], "restore": ["restore"],
              "presegment": ["presegment"], "train": ["train"], "train-seg": ["train-seg"], "screen": ["screen"]}


def test_every_row_has_its_check_and_every_check_its_row():
    rows = {row for row in role_table() if not screen_row(row)}
    checked = set(CHECKS) | {row for row in NO_SIGN_IN if row != "train-seg"}
    assert rows == checked


def subparser(path: list[str]):
    parser = main.build_parser()
    for name in path:
        action = next(a for a in parser._actions if getattr(a, "choices", None) and name in a.choices)
        parser = action.choices[name]
    return parser


@pytest.mark.parametrize("row, role, documented",
                         [c for c in cells(lambda row: row in NO_SIGN_IN)])
def test_commands_that_sign_nobody_in(row, role, documented):
    commands = [NO_SIGN_IN[row]] + ([NO_SIGN_IN["train-seg"]] if row == "train" else [])
    observed = {"any" if not any(a.dest == "as_reader" for a in subparser(c)._actions) else "signs in"
                for c in commands}
    assert observed == {documented}


@pytest.mark.parametrize("row, role, documented",
                         [c for c in cells(lambda row: row in CHECKS)])
def test_each_cell(clinic, row, role, documented, capsys, monkeypatch, tmp_path):
    assert CHECKS[row](clinic, ACTING[role], capsys, monkeypatch, tmp_path) == documented
