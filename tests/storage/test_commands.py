"""init, readers, assign and status from the command line; errors are one line and exit 1."""
from __future__ import annotations

import io

import pytest

from main import main
from storage.images import list_images
from storage.project import open_project
from storage.readers import find_reader, list_readers, sign_in
from tests.storage.conftest import add_fake_images


@pytest.fixture(autouse=True)
def storage_commands_only(monkeypatch):
    # main.py would import every layer's commands (torch, Qt); these tests need only storage's.
    monkeypatch.setattr("main.COMMAND_MODULES", ("storage.commands",))


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


ADMIN = ["--as", "Boss"]
PASSPHRASE = "the clinic's long phrase"


@pytest.fixture
def admin_env(monkeypatch):
    """The first admin's passphrase for `init`, and the --as reader's credential, from the one
    variable the README names, as a script would give them."""
    monkeypatch.delenv("OCTANT_ADMIN_PASSPHRASE", raising=False)
    monkeypatch.setenv("OCTANT_CREDENTIAL", PASSPHRASE)


def test_init_readers_assign_status(tmp_path, capsys, monkeypatch, database_url, admin_env):
    # PostgreSQL: the same commands with --database-url, as every workstation would run them.
    db = [] if database_url is None else ["--database-url", database_url]
    folder = tmp_path / "clinic"
    code, out, _ = run(capsys, "init", str(folder), "--name", "Clinic A", "--consensus-k", "3", "--admin", "Boss", *db)
    assert code == 0 and "admin: Boss" in out
    monkeypatch.setenv("OCTANT_PROJECT", str(folder))
    for i in range(3):
        assert run(capsys, "readers", "add", f"Dr {i}", "--role", "ophthalmologist", *ADMIN, *db)[0] == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("432198\n"))
    code, out, _ = run(capsys, "readers", "add", "Dr R", "--role", "retina_specialist", "--pin", *ADMIN, *db)
    assert code == 0 and "PIN" in out
    code, out, _ = run(capsys, "readers", "list", *db)
    assert "Dr R" in out and "retina_specialist" in out and "Boss" in out
    boss, dr_r, dr_0 = (next(line.rstrip() for line in out.splitlines() if f" {name} " in line)
                        for name in ("Boss", "Dr R", "Dr 0"))
    assert boss.endswith("admin                passphrase")   # an admin always has one, never a PIN
    assert dr_r.endswith("retina_specialist    PIN") and dr_0.endswith("ophthalmologist")
    with open_project(folder, database_url) as project:
        assert project.settings().consensus_k == 3
        add_fake_images(project, train=4)
    assert "4 images still need readers" in run(capsys, "status", *db)[1]
    code, out, _ = run(capsys, "assign", "--seed", "1", *db)
    assert code == 0 and "Assigned 12 reads over 4 images" in out
    code, out, _ = run(capsys, "status", "--project", str(folder), *db)
    assert code == 0 and "Images: 4 (4 train)" in out and "need readers" not in out
    table = out[out.index("Reads done / assigned:"):].splitlines()[1:]
    assert table[0].split() == ["Reader", "Role", "train", "all"] and len(table) == 5   # header and 4 readers
    assert all(line.split()[-6:] == ["0", "/", "3", "0", "/", "3"] for line in table[1:]), table
    code, _, err = run(capsys, "init", str(folder), "--admin", "Boss", *db)
    assert code == 1 and "already holds" in err and err.count("\n") == 1


def test_admin_actions_need_a_signed_in_admin(tmp_path, capsys, monkeypatch, admin_env):
    folder = tmp_path / "clinic"
    assert run(capsys, "init", str(folder), "--admin", "Boss")[0] == 0
    monkeypatch.setenv("OCTANT_PROJECT", str(folder))
    # Issue 16: `readers add Mallory --role admin` asked for nothing.
    for argv in (["readers", "add", "Mallory", "--role", "admin"],
                 ["readers", "add", "Mallory", "--role", "ophthalmologist"],
                 ["readers", "retire", "Boss"], ["split", "1", "--to", "test"]):
        code, _, err = run(capsys, *argv)
        assert code == 1 and "--as NAME of an admin" in err and err.count("\n") == 1
    monkeypatch.setenv("OCTANT_CREDENTIAL", "the wrong long phrase")
    code, _, err = run(capsys, "readers", "add", "Mallory", "--role", "ophthalmologist", *ADMIN)
    assert code == 1 and "not right for Boss" in err
    monkeypatch.setenv("OCTANT_CREDENTIAL", PASSPHRASE)
    assert run(capsys, "readers", "add", "Dr A", "--role", "ophthalmologist", *ADMIN)[0] == 0
    code, _, err = run(capsys, "readers", "add", "Mallory", "--role", "ophthalmologist", "--as", "Dr A")
    assert code == 1 and "Only an admin" in err
    with open_project(folder) as project:
        assert [r.name for r in list_readers(project.database)] == ["Boss", "Dr A"]
        add_fake_images(project, train=2)
    assert run(capsys, "split", "1", "2", "--to", "test", *ADMIN)[1] == "Moved 2 images to the test set.\n"
    code, _, err = run(capsys, "split", "1", "9", "--to", "train", *ADMIN)
    assert code == 1 and "no image number 9" in err
    with open_project(folder) as project:
        assert [i.split for i in list_images(project.database)] == ["test", "test"]


def test_roles_retiring_and_pins_from_the_command_line(tmp_path, capsys, monkeypatch, admin_env):
    folder = tmp_path / "clinic"
    assert run(capsys, "init", str(folder), "--admin", "Boss")[0] == 0
    monkeypatch.setenv("OCTANT_PROJECT", str(folder))
    monkeypatch.setattr("sys.stdin", io.StringIO("135791\n"))
    assert run(capsys, "readers", "add", "Dr A", "--role", "ophthalmologist", "--pin", *ADMIN)[0] == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("a reviewer's phrase\n"))
    assert run(capsys, "readers", "role", "Dr A", "reviewer", *ADMIN)[1] == "Dr A is now reviewer.\n"
    monkeypatch.setattr("sys.stdin", io.StringIO("1357\n"))   # too short: refused, nothing changed
    code, _, err = run(capsys, "readers", "reset-pin", "Dr A", *ADMIN)
    assert code == 1 and "6 digits" in err
    monkeypatch.setattr("sys.stdin", io.StringIO("000000\n135799\n"))   # wrong old one
    code, _, err = run(capsys, "readers", "pin", "Dr A")
    assert code == 1 and "not right for Dr A" in err
    monkeypatch.setattr("sys.stdin", io.StringIO("135791\n864200\n"))   # `role` kept the old PIN
    assert run(capsys, "readers", "pin", "Dr A")[0] == 0
    assert run(capsys, "readers", "retire", "Dr A", *ADMIN)[0] == 0
    assert "retired" in run(capsys, "readers", "list", "--all")[1]
    code, _, err = run(capsys, "readers", "retire", "Boss", *ADMIN)
    assert code == 1 and "only admin" in err
    assert run(capsys, "readers", "reinstate", "Dr A", *ADMIN)[0] == 0
    with open_project(folder) as project:
        reader = find_reader(project.database, "Dr A")
        assert reader.active and reader.role.value == "reviewer"
        assert sign_in(project.database, reader.id, "864200").id == reader.id


def test_errors_are_one_line_and_a_non_zero_exit(tmp_path, capsys, admin_env):
    code, out, err = run(capsys, "status", "--project", str(tmp_path))
    assert code == 1 and err.count("\n") == 1 and err.startswith("octant: ") and "init" in err
    assert run(capsys, "init", str(tmp_path / "p"), "--admin", "Boss")[0] == 0
    code, _, err = run(capsys, "init", str(tmp_path / "p"), "--admin", "Boss")
    assert code == 1 and "already holds" in err and err.count("\n") == 1
    code, _, err = run(capsys, "assign", "--project", str(tmp_path / "p"), "--test-roles", "optometrist")
    assert code == 1 and "Unknown role" in err


def test_label_source_is_shown_and_set(tmp_path, capsys, admin_env):
    folder = str(tmp_path / "p")
    assert run(capsys, "init", folder, "--admin", "Boss")[0] == 0
    assert run(capsys, "label-source", "--project", folder)[1] == "Training and export use consensus labels.\n"
    code, out, _ = run(capsys, "label-source", "adjudicated", "--project", folder)
    assert code == 0 and "now use adjudicated, else consensus labels" in out
    with open_project(folder) as project:
        assert project.settings().label_source == "adjudicated"
    with pytest.raises(SystemExit) as exit_:
        main(["label-source", "majority", "--project", folder])
    assert exit_.value.code == 2 and capsys.readouterr().err.count("\n") == 1


def test_reading_order_is_shown_by_anyone_and_set_by_an_admin(tmp_path, capsys, admin_env):
    folder = str(tmp_path / "p")
    assert run(capsys, "init", folder, "--admin", "Boss")[0] == 0
    assert run(capsys, "reading-order", "--project", folder)[1] == "Readers read in assignment order.\n"
    code, _, err = run(capsys, "reading-order", "model-uncertainty", "--project", folder)
    assert code == 1 and "admin" in err and err.count("\n") == 1
    code, out, _ = run(capsys, "reading-order", "model-uncertainty", "--project", folder, *ADMIN)
    assert code == 0 and "now read where the model is least certain" in out
    with open_project(folder) as project:
        assert project.settings().reading_order == "model_uncertainty"
    assert run(capsys, "reading-order", "default", "--project", folder, *ADMIN)[0] == 0
    with open_project(folder) as project:
        assert project.settings().reading_order == "default"
    with pytest.raises(SystemExit) as exit_:
        main(["reading-order", "random", "--project", folder])
    assert exit_.value.code == 2 and capsys.readouterr().err.count("\n") == 1


def test_init_refuses_a_short_passphrase_before_making_anything(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("OCTANT_ADMIN_PASSPHRASE", raising=False)
    monkeypatch.setenv("OCTANT_CREDENTIAL", "123456789012")
    code, _, err = run(capsys, "init", str(tmp_path / "p"), "--admin", "Boss")
    assert code == 1 and "not only digits" in err and not (tmp_path / "p").exists()
    monkeypatch.delenv("OCTANT_CREDENTIAL")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, _, err = run(capsys, "init", str(tmp_path / "p"), "--admin", "Boss")
    assert code == 1 and "OCTANT_CREDENTIAL" in err and not (tmp_path / "p").exists()


@pytest.mark.parametrize("variables, passphrase", [
    ({"OCTANT_CREDENTIAL": PASSPHRASE}, PASSPHRASE),
    ({"OCTANT_ADMIN_PASSPHRASE": PASSPHRASE}, PASSPHRASE),   # the older name, as older scripts set it
    # Both: the older name says whose it is; an exported OCTANT_CREDENTIAL may be another reader's.
    ({"OCTANT_ADMIN_PASSPHRASE": PASSPHRASE, "OCTANT_CREDENTIAL": "another reader's phrase"}, PASSPHRASE),
], ids=["credential", "older-name", "both"])
def test_init_reads_the_first_admins_passphrase_from_octant_credential(tmp_path, capsys, monkeypatch,
                                                                      variables, passphrase):
    """A user of the README set OCTANT_CREDENTIAL, the one name it gives, and init asked anyway."""
    monkeypatch.delenv("OCTANT_ADMIN_PASSPHRASE", raising=False)
    monkeypatch.delenv("OCTANT_CREDENTIAL", raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))   # nothing to fall back on
    code, out, err = run(capsys, "init", str(tmp_path / "p"), "--admin", "Boss")
    assert code == 0 and "admin: Boss" in out, err
    with open_project(tmp_path / "p") as project:
        boss = find_reader(project.database, "Boss")
        assert sign_in(project.database, boss.id, passphrase).name == "Boss"


def test_init_help_names_octant_credential(capsys):
    with pytest.raises(SystemExit):
        main(["init", "--help"])
    assert "$OCTANT_CREDENTIAL" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("command", ["init", "readers", "split", "assign", "status", "label-source",
                                     "reading-order"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0 and "usage:" in capsys.readouterr().out


def test_readers_list_names_each_credential_by_what_it_is(tmp_path, capsys, monkeypatch, admin_env):
    # It said "PIN" beside a reviewer who signs in with a passphrase.
    from sqlalchemy import update

    from storage.schema import Reader

    folder = tmp_path / "clinic"
    assert run(capsys, "init", str(folder), "--name", "Clinic", "--admin", "Boss")[0] == 0
    monkeypatch.setenv("OCTANT_PROJECT", str(folder))
    for name, role, secret in (("Rhea", "reviewer", "a reviewer's long phrase"), ("Dr P", "ophthalmologist", "246813"),
                               ("Dr Old", "ophthalmologist", "135792")):
        monkeypatch.setattr("sys.stdin", io.StringIO(f"{secret}\n"))
        assert run(capsys, "readers", "add", name, "--role", role, "--pin", *ADMIN)[0] == 0
    with open_project(folder) as project:   # a credential set before Octant noted its kind
        with project.database.transaction() as session:
            session.execute(update(Reader).where(Reader.name == "Dr Old").values(credential_kind=None))

    def listed() -> dict[str, str]:
        out = run(capsys, "readers", "list")[1]
        return {name: next(line.rstrip() for line in out.splitlines() if f" {name} " in line).split("  ")[-1].strip()
                for name in ("Boss", "Rhea", "Dr P", "Dr Old")}

    assert listed() == {"Boss": "passphrase", "Rhea": "passphrase", "Dr P": "PIN", "Dr Old": "PIN or passphrase"}
    with open_project(folder) as project:   # typed right once, its kind is known from then on
        sign_in(project.database, find_reader(project.database, "Dr Old").id, "135792")
    assert listed()["Dr Old"] == "PIN"
