"""Backups taken while readers save, restored, rotated; pre-upgrade copies never overwritten."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

import main
from storage.audit import audit_events, state_digest, verify
from storage.backup import MANIFEST, automatic_backup, backup_project, restore_project
from storage.database import DATABASE_FILENAME, Database, backup_sqlite, sqlite_url
from storage.errors import DatabaseError, InvalidRequestError
from storage.labels import READ_COLUMNS, load_read_states, state_json
from storage.project import open_project
from storage.reading import ReaderSession

REPO = Path(__file__).resolve().parents[2]
SAVING = """
import sys, time
from storage.project import open_project
from storage.reading import ReaderSession
project = open_project(sys.argv[1])
session = ReaderSession(project.database, int(sys.argv[2]))
images = [image.id for image in session.queue()]
print("ready", flush=True)
end, n = time.monotonic() + float(sys.argv[3]), 0
while time.monotonic() < end:
    session.toggle_region(images[n % len(images)], "drusen", 1 + n % 8)
    n += 1
project.close()
print(n)
"""


def states_and_digests(db: Database) -> tuple[dict[int, dict], dict[int, str]]:
    """Every read's stored state, and the state_sha256 of its last audited label write."""
    with db.reading() as session:
        rows = session.execute(select(*READ_COLUMNS)).all()
        states = {read_id: state_json(state) for read_id, state in load_read_states(session, rows).items()}
    digests = {e.entity_id: e.after["state_sha256"] for e in audit_events(db, "read") if e.after}
    return states, digests


@pytest.mark.sqlite_only
def test_a_backup_taken_while_three_readers_save_is_consistent_with_its_audit(clinic, tmp_path, backend):
    root = clinic.project.root
    (root / "patient.key").write_bytes(os.urandom(32))
    os.chmod(root / "patient.key", 0o600)
    (root / "photos").mkdir()
    (root / "photos" / "eye.jpg").write_bytes(b"not copied")
    script = tmp_path / "saving.py"
    script.write_text(SAVING)
    readers = [r.id for r in clinic.ophthalmologists]
    savers = [subprocess.Popen([sys.executable, str(script), str(root), str(reader), "4"], cwd=REPO,
                               env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, text=True)
              for reader in readers]
    try:
        for saver in savers:
            assert saver.stdout.readline().strip() == "ready"
        time.sleep(1.5)
        before = len(audit_events(clinic.project.database))
        result = backup_project(clinic.project.database, root, tmp_path / "backup")
        after_backup = len(audit_events(clinic.project.database))
    finally:
        counts = [int(saver.communicate(timeout=60)[0].split()[-1]) for saver in savers]
    assert all(saver.returncode == 0 for saver in savers) and min(counts) > 0
    assert before < after_backup or sum(counts) > 0
    assert sorted(result.files) == sorted([DATABASE_FILENAME, "patient.key"])
    assert (tmp_path / "backup" / "patient.key").read_bytes() == (root / "patient.key").read_bytes()
    assert (tmp_path / "backup" / "patient.key").stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / "backup" / "photos").exists()
    assert {p.name for p in (tmp_path / "backup").iterdir()} == {DATABASE_FILENAME, "patient.key", MANIFEST}
    copy = Database.open(sqlite_url(tmp_path / "backup" / DATABASE_FILENAME))
    try:
        report = verify(copy, expect_head=result.audit_head)
        assert report.intact and before <= report.events == result.events <= after_backup
        states, digests = states_and_digests(copy)
        for read_id, digest in digests.items():  # every label in the copy is what its last event says
            assert state_digest(states[read_id]) == digest
    finally:
        copy.dispose()


@pytest.mark.sqlite_only
def test_a_backup_holds_the_commits_still_in_the_wal(clinic, tmp_path, backend):
    s = ReaderSession(clinic.project.database, clinic.ophthalmologists[0].id)
    image = s.next_unfinished().id
    for region in range(1, 9):
        s.toggle_region(image, "haemorrhage", region)
    assert (clinic.project.root / f"{DATABASE_FILENAME}-wal").stat().st_size > 0
    backup_project(clinic.project.database, clinic.project.root, tmp_path / "b")
    with sqlite3.connect(tmp_path / "b" / DATABASE_FILENAME) as copy:
        assert copy.execute("SELECT regions FROM regional_label").fetchall() == [(255,)]
        assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # one self-contained file
    assert not (tmp_path / "b" / f"{DATABASE_FILENAME}-wal").exists()


@pytest.mark.sqlite_only
def test_a_backup_never_goes_into_a_folder_that_holds_something(clinic, tmp_path, backend):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "mine.txt").write_text("keep")
    with pytest.raises(InvalidRequestError, match="not an empty folder"):
        backup_project(clinic.project.database, clinic.project.root, tmp_path / "b")
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["mine.txt"]
    assert not [p for p in tmp_path.iterdir() if "partial" in p.name]


def changed_after_a_backup(clinic, folder: Path) -> tuple[ReaderSession, int]:
    """A first reader's drusen in region 2 and a key file "old key", backed up into ``folder``; then
    region 7 instead and "new key". Returns the reader's session and the image."""
    root, db = clinic.project.root, clinic.project.database
    (root / "patient.key").write_bytes(b"old key")
    session = ReaderSession(db, clinic.ophthalmologists[0].id)
    image = session.next_unfinished().id
    session.set_regions(image, "drusen", {2})
    backup_project(db, root, folder)
    session.set_regions(image, "drusen", {7})
    (root / "patient.key").write_bytes(b"new key")
    return session, image


@pytest.mark.sqlite_only
def test_restore_brings_back_the_labels_and_keeps_what_was_there(clinic, tmp_path, backend):
    root = clinic.project.root
    _, image = changed_after_a_backup(clinic, tmp_path / "b")
    clinic.project.close()
    result = restore_project(root, tmp_path / "b")
    assert (root / "patient.key").read_bytes() == b"old key"
    with open_project(root) as project:
        assert ReaderSession(project.database, clinic.ophthalmologists[0].id).read(image).regions == \
            {"drusen": frozenset({2})}
        events = audit_events(project.database)
        assert events[-1].action == "restore_backup" and verify(project.database).intact
    # what was there before the restore is kept, whole
    assert (result.folder / "patient.key").read_bytes() == b"new key"
    with sqlite3.connect(result.folder / DATABASE_FILENAME) as kept:
        assert kept.execute("SELECT regions FROM regional_label").fetchall() == [(1 << 6,)]


@pytest.mark.sqlite_only
def test_a_damaged_backup_is_refused_and_the_project_left_alone(clinic, tmp_path, backend):
    root, db = clinic.project.root, clinic.project.database
    backup_project(db, root, tmp_path / "b")
    with (tmp_path / "b" / DATABASE_FILENAME).open("r+b") as handle:
        handle.seek(5000)
        handle.write(b"\xff\xff")
    before = (root / DATABASE_FILENAME).stat().st_mtime_ns
    with pytest.raises(DatabaseError, match="damaged"):
        restore_project(root, tmp_path / "b")
    assert (root / DATABASE_FILENAME).stat().st_mtime_ns == before
    assert not (root / "backups").exists()


@pytest.mark.sqlite_only
def test_restore_replaces_a_broken_database_and_keeps_the_broken_one(clinic, tmp_path, backend):
    root, db = clinic.project.root, clinic.project.database
    backup_project(db, root, tmp_path / "b")
    clinic.project.close()
    for name in (f"{DATABASE_FILENAME}-wal", f"{DATABASE_FILENAME}-shm"):
        (root / name).unlink(missing_ok=True)
    (root / DATABASE_FILENAME).write_bytes(b"garbage" * 1000)
    assert main.main(["restore", str(tmp_path / "b"), "--project", str(root)]) == 0
    with open_project(root) as project:
        assert verify(project.database).intact
    kept = next((root / "backups").glob("before-restore-*"))
    assert (kept / DATABASE_FILENAME).read_bytes() == b"garbage" * 1000


@pytest.mark.sqlite_only
def test_a_healthy_database_that_cannot_be_kept_for_want_of_space_is_not_moved_aside(
        clinic, tmp_path, backend, monkeypatch):
    # A full disk while the copy of what the project holds is written is no damage: the restore stops
    # and the project is as it was. (Taken for damage, the live database was moved aside whole while
    # other workstations had it open: their saves from then on went into the moved file.)
    from storage import backup

    root = clinic.project.root
    session, image = changed_after_a_backup(clinic, tmp_path / "b")
    seal = backup._seal

    def disk_full_for_the_kept_copy(path, cancel=None):
        if "before-restore" in str(path):
            raise sqlite3.OperationalError("database or disk is full")
        return seal(path, cancel)

    monkeypatch.setattr(backup, "_seal", disk_full_for_the_kept_copy)
    with pytest.raises(DatabaseError, match=r"\(database or disk is full\); the project is unchanged\.$"):
        restore_project(root, tmp_path / "b")
    assert session.read(image).regions == {"drusen": frozenset({7})} and (root / DATABASE_FILENAME).is_file()
    assert (root / "patient.key").read_bytes() == b"new key" and not (root / "backups").exists()


@pytest.mark.sqlite_only
def test_daily_backups_rotate_keeping_seven(clinic, backend):
    root, db = clinic.project.root, clinic.project.database
    for day in range(1, 11):
        made = automatic_backup(db, root, today=datetime(2026, 11, day, tzinfo=timezone.utc))
        assert made is not None and made.name == f"daily-2026-11-{day:02d}"
    assert automatic_backup(db, root, today=datetime(2026, 11, 10, tzinfo=timezone.utc)) is None  # one a day
    assert sorted(p.name for p in (root / "backups").iterdir()) == [f"daily-2026-11-{d:02d}" for d in range(4, 11)]
    # a later backup does not carry the backups folder itself
    assert not (root / "backups" / "daily-2026-11-10" / "backups").exists()


@pytest.mark.sqlite_only
def test_a_second_upgrade_attempt_never_overwrites_the_first_copy(clinic, backend):
    path = clinic.project.root / DATABASE_FILENAME
    first = backup_sqlite(path, "0001")
    first_bytes = first.read_bytes()
    ReaderSession(clinic.project.database, clinic.ophthalmologists[0].id).set_comment(clinic.images[0], "x")
    second = backup_sqlite(path, "0001")
    assert first != second and first.read_bytes() == first_bytes
    assert "before-upgrade-from-0001-" in first.name


@pytest.mark.postgresql_only
def test_on_postgresql_backup_names_pg_dump(clinic, tmp_path, capsys, backend):
    url = clinic.project.database.engine.url.render_as_string(hide_password=False)
    assert main.main(["backup", str(tmp_path / "b"), "--project", str(clinic.project.root), "--database-url", url]) == 1
    error = capsys.readouterr().err
    assert "pg_dump" in error and error.count("\n") == 1
    assert automatic_backup(clinic.project.database, clinic.project.root) is None


@pytest.mark.sqlite_only
def test_backup_command_says_what_it_wrote(clinic, tmp_path, capsys, backend):
    assert main.main(["backup", str(tmp_path / "b"), "--project", str(clinic.project.root)]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "b") in out and "audit events" in out
    assert main.main(["restore", str(tmp_path / "nothing"), "--project", str(clinic.project.root)]) == 1
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main.main(["restore", str(tmp_path / "empty"), "--project", str(clinic.project.root)]) == 1
    assert "not an Octant backup" in capsys.readouterr().err


@pytest.mark.sqlite_only
def test_a_cancelled_backup_leaves_nothing_behind(clinic, tmp_path, backend):
    import threading

    from storage.errors import CancelledError

    cancel = threading.Event()
    cancel.set()
    with pytest.raises(CancelledError):
        backup_project(clinic.project.database, clinic.project.root, tmp_path / "b", cancel)
    assert [p.name for p in tmp_path.iterdir()] == ["project"]  # neither the backup nor its partial folder


def project_as_it_is(root: Path, db: Database) -> tuple:
    """Everything a restore could change: every path in the project folder (the database's own
    files aside: SQLite's WAL comes and goes), the top-level files' bytes, the stored answers and
    the audit trail."""
    paths = sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.name.startswith(DATABASE_FILENAME))
    files = {p.name: p.read_bytes() for p in root.iterdir() if p.is_file() and not p.name.startswith(DATABASE_FILENAME)}
    return paths, files, states_and_digests(db), [e.row_hash for e in audit_events(db)]


RESTORE_STEPS = ("Checking the backup's files", "Copying the backup", "Checking the backup's audit trail",
                 "Keeping what the project holds now", "Putting the backup in place")


@pytest.mark.sqlite_only
@pytest.mark.parametrize("step", RESTORE_STEPS)
def test_a_restore_cancelled_at_any_step_leaves_the_project_exactly_as_it_was(clinic, tmp_path, backend,
                                                                              monkeypatch, step):
    import threading

    import storage.backup
    from storage.errors import CancelledError

    monkeypatch.setattr(storage.backup, "STEP_PAGES", 2)   # several steps even for a small database
    root, db = clinic.project.root, clinic.project.database
    s, image = changed_after_a_backup(clinic, tmp_path / "b")   # drusen {7}: saved after the backup, must survive
    before = project_as_it_is(root, db)
    cancel, seen = threading.Event(), []

    def progress(sentence: str, fraction: float) -> None:
        seen.append((sentence, fraction))
        if sentence.startswith(step) and (fraction > 0.75 or not step.startswith("Putting")):
            cancel.set()                                  # the write itself is cancelled half-way

    with pytest.raises(CancelledError, match="exactly as it was"):
        restore_project(root, tmp_path / "b", progress=progress, cancel=cancel)
    assert project_as_it_is(root, db) == before
    assert s.read(image).regions == {"drusen": frozenset({7})}
    assert verify(db).intact
    assert [sentence for sentence, _ in seen][-1].startswith(step)


@pytest.mark.sqlite_only
def test_a_restore_reports_each_step_in_order_and_ends_whole(clinic, tmp_path, backend, monkeypatch):
    import storage.backup

    monkeypatch.setattr(storage.backup, "STEP_PAGES", 2)
    root, db = clinic.project.root, clinic.project.database
    backup_project(db, root, tmp_path / "b")
    clinic.project.close()
    seen: list[tuple[str, float]] = []
    restore_project(root, tmp_path / "b", progress=lambda sentence, fraction: seen.append((sentence, fraction)))
    fractions = [fraction for _, fraction in seen]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    steps = [next(s for s in RESTORE_STEPS if sentence.startswith(s)) for sentence, _ in seen[:-1]]
    assert list(dict.fromkeys(steps)) == list(RESTORE_STEPS)
    assert sum(sentence.startswith("Putting") for sentence, _ in seen) > 2   # the write reports as it goes
    assert not list(root.glob(".restoring-*"))
    with open_project(root) as project:
        assert verify(project.database).intact and audit_events(project.database)[-1].action == "restore_backup"
    # a restore killed mid-way leaves its hidden copy of the backup: the next one removes it
    (root / ".restoring-20261204T205740224714Z").mkdir()
    (root / ".restoring-20261204T205740224714Z" / DATABASE_FILENAME).write_bytes(b"a copy of the backup")
    restore_project(root, tmp_path / "b")
    assert not list(root.glob(".restoring-*"))
    with open_project(root) as project:
        assert verify(project.database).intact and audit_events(project.database)[-1].action == "restore_backup"


def read_digests(database: Path) -> set[str]:
    """The state_sha256 of every label save in a database file's audit trail."""
    with sqlite3.connect(database) as connection:
        rows = connection.execute("""SELECT "after" FROM audit_event WHERE entity = 'read'""").fetchall()
    return {json.loads(after)["state_sha256"] for (after,) in rows if after and "state_sha256" in json.loads(after)}


@pytest.mark.sqlite_only
def test_no_save_acknowledged_while_a_restore_runs_is_lost(clinic, tmp_path, backend, monkeypatch):
    """Another workstation saves at every step of a restore, up to its last page written: each save
    it was told is in is in the copy kept of the database replaced (before the restore took the
    write lock) or in the restored one (after it let go); the others met the locked database, said
    so (DatabaseLockedError: the workstation's save queue keeps them and tries again)."""
    import storage.backup
    from storage.errors import DatabaseLockedError

    monkeypatch.setattr(storage.backup, "STEP_PAGES", 2)   # several steps even for a small database
    root, db = clinic.project.root, clinic.project.database
    _, image = changed_after_a_backup(clinic, tmp_path / "b")
    workstation = ReaderSession(db, clinic.ophthalmologists[0].id, lock_wait_ms=50)
    acknowledged: list[tuple[str, str]] = []   # (the step it was saved at, what the audit says was stored)
    refused: list[str] = []

    def progress(sentence: str, fraction: float) -> None:
        try:
            state = workstation.set_comment(image, f"save {len(acknowledged) + len(refused)}: {sentence} {fraction}")
        except DatabaseLockedError:
            refused.append(sentence)
        else:
            acknowledged.append((sentence, state_digest(state_json(state))))

    result = restore_project(root, tmp_path / "b", progress=progress)
    kept, restored = read_digests(result.folder / DATABASE_FILENAME), read_digests(root / DATABASE_FILENAME)
    lost = [step for step, digest in acknowledged if digest not in kept | restored]
    assert lost == []
    assert refused and all(step.startswith(("Keeping", "Putting")) for step in refused)   # the write lock was held
    assert acknowledged[-1][0] == "Restored." and acknowledged[-1][1] in restored
    assert any(step.startswith("Checking the backup's audit") and digest in kept for step, digest in acknowledged)
    assert verify(db).intact
