"""Backups of a project that can be taken while readers save, and restored.

A backup is a folder: ``octant.sqlite`` copied with SQLite's online backup API (one consistent
snapshot that includes every commit still in the WAL; readers keep saving meanwhile), every other
file at the top of the project folder (its secrets and settings, e.g. ``patient.key``: the
database is useless without them), and ``backup.json`` with each file's SHA-256, the schema
revision and the audit chain's head, so a damaged backup is refused and a restored one can be
checked with ``audit verify --expect-head``. Sub-folders (photos, caches, predictions, trained
models, the backups themselves) are not copied: see docs/backup.md.

Each backup is written under a temporary name and renamed when complete, so an interrupted one is
never taken for a backup. ``automatic_backup`` keeps one a day in ``<project>/backups`` (the
newest ``KEEP_DAILY``). PostgreSQL projects are backed up with ``pg_dump`` (BackupNotPossible
says so in one sentence).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import threading
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from storage.audit import record, verify
from storage.database import BUSY_TIMEOUT_MS, DATABASE_FILENAME, Database, check_revision, sqlite_revision, sqlite_url
from storage.errors import CancelledError, DatabaseError, InvalidRequestError, NotFoundError, OctantError

BACKUPS_FOLDER = "backups"
MANIFEST = "backup.json"
DAILY_PREFIX = "daily-"
KEEP_DAILY = 7
PG_DUMP_ADVICE = ("This project's database is on PostgreSQL; back it up on the server with "
                  "`pg_dump --format=custom --file octant.dump DATABASE` and restore with `pg_restore` "
                  "(docs/backup.md), and copy the project folder's files (e.g. patient.key) with it.")


BLOCK = 1 << 20             # bytes hashed or copied between two looks at a cancel
STEP_PAGES = 256            # database pages written per online-backup step (1 MiB at 4 KiB pages)
STAGING_PREFIX = ".restoring-"   # the hidden folder in the project where a restore prepares its copy
RESTORE_CANCELLED = "The restore was cancelled; the project is exactly as it was."
# What a restore reports: a sentence saying what it is doing, and how far it is, 0..1.
Progress = Callable[[str, float], None]


class BackupNotPossible(OctantError):
    """The project's database cannot be backed up by Octant itself (PostgreSQL)."""


@dataclass(frozen=True)
class BackupResult:
    folder: Path
    files: list[str]  # names inside the backup folder, database first
    events: int  # audit events in the copy
    audit_head: str


def is_database_file(name: str) -> bool:
    """The database and what belongs to it (WAL, shared memory, journal, pre-upgrade copies):
    copied through the backup API, never file by file."""
    return name.startswith(DATABASE_FILENAME)


def project_files(root: Path) -> list[Path]:
    """The files a backup carries beside the database: every regular file at the top of the
    project folder that is not part of the database (secrets such as patient.key, settings)."""
    return sorted(p for p in Path(root).iterdir()
                  if p.is_file() and not p.is_symlink() and not is_database_file(p.name) and not p.name.startswith("."))


def _sha256(path: Path, cancel: threading.Event | None = None) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(BLOCK), b""):
            _check(cancel, RESTORE_CANCELLED)
            digest.update(block)
    return digest.hexdigest()


def _sqlite_path(db: Database) -> Path:
    if db.engine.dialect.name != "sqlite":
        raise BackupNotPossible(PG_DUMP_ADVICE)
    if not db.engine.url.database:
        raise BackupNotPossible("An in-memory database has no file to back up; open a project folder.")
    return Path(db.engine.url.database)


def _copy_database(source: Path, target: Path) -> None:
    """SQLite's online backup in one step: a single read snapshot (WAL included), so the copy is
    consistent even while other processes commit; they are not held up (WAL readers never block
    writers)."""
    try:
        live = sqlite3.connect(source, timeout=BUSY_TIMEOUT_MS / 1000)
        copy = sqlite3.connect(target)
        try:
            live.backup(copy)  # pages=-1: everything in one step, under one snapshot
        finally:
            copy.close()
            live.close()
    except sqlite3.Error as error:
        raise DatabaseError(f"The database could not be copied ({error}); check the disk space at "
                            f"{target.parent} and try again (the project is unchanged).") from error


def _seal(copy_path: Path, cancel: threading.Event | None = None) -> None:
    """Make the copy one self-contained file (rollback journal, no WAL) and check it. The check
    reads every page: with ``cancel`` SQLite looks at it every few thousand steps and stops."""
    copy = sqlite3.connect(copy_path)
    if cancel is not None:
        copy.set_progress_handler(cancel.is_set, 10_000)   # true: SQLite interrupts the statement
    try:
        copy.execute("PRAGMA journal_mode = DELETE")
        try:
            checked = copy.execute("PRAGMA integrity_check").fetchone()[0]
        except sqlite3.OperationalError:
            _check(cancel, RESTORE_CANCELLED)   # interrupted by the cancel; anything else goes on up
            raise
        if checked != "ok":
            raise DatabaseError(f"The copy of the database in {copy_path.parent} failed SQLite's integrity check; "
                                "check the disk and take the backup again.")
    finally:
        copy.close()


def _check(cancel: threading.Event | None, sentence: str = "The backup was cancelled; nothing was written.") -> None:
    if cancel is not None and cancel.is_set():
        raise CancelledError(sentence)


def _write_backup(db: Database, root: Path, folder: Path, cancel: threading.Event | None = None) -> BackupResult:
    """Write a complete backup into ``folder`` (which must not exist), via a temporary name.
    ``cancel`` is checked between the steps and while the copy's audit is verified."""
    source = _sqlite_path(db)
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InvalidRequestError(f"{folder} already exists and is not an empty folder; give a new folder for the backup.")
    partial = folder.with_name(f".{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        partial.mkdir(parents=True)
        _copy_database(source, partial / DATABASE_FILENAME)
        _check(cancel)
        files = [DATABASE_FILENAME]
        for path in project_files(root):
            shutil.copy2(path, partial / path.name)  # keeps a key file's 0600 mode
            files.append(path.name)
        copy = Database.open(sqlite_url(partial / DATABASE_FILENAME))
        try:
            report = verify(copy, cancel=cancel)
        finally:
            copy.dispose()
        _seal(partial / DATABASE_FILENAME)
        _check(cancel)
        manifest = dict(
            created_at=datetime.now(timezone.utc).isoformat(), schema_revision=sqlite_revision(partial / DATABASE_FILENAME),
            audit_events=report.events, audit_head=report.head, audit_intact=report.intact,
            files={name: _sha256(partial / name) for name in files},
        )
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        if folder.exists():
            folder.rmdir()  # empty (checked above)
        partial.rename(folder)
    except OSError as error:
        raise InvalidRequestError(f"The backup could not be written to {folder} ({error.strerror or error}); "
                                  "choose a folder you may write to with enough free space.") from error
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return BackupResult(folder, files, report.events, report.head)


def backup_project(db: Database, root: Path, destination: Path, cancel: threading.Event | None = None) -> BackupResult:
    """A backup of the project in the new folder ``destination``."""
    return _write_backup(db, root, destination, cancel)


def automatic_backup(db: Database, root: Path, today: datetime | None = None, keep: int = KEEP_DAILY,
                     cancel: threading.Event | None = None) -> Path | None:
    """Today's backup in ``<project>/backups/daily-YYYY-MM-DD`` unless there is one; the oldest
    daily backups beyond ``keep`` are removed. None when nothing was needed (or PostgreSQL)."""
    if db.engine.dialect.name != "sqlite":
        return None
    day = (today or datetime.now(timezone.utc)).strftime("%Y-%m-%d")
    backups = Path(root) / BACKUPS_FOLDER
    folder = backups / f"{DAILY_PREFIX}{day}"
    made = None
    if not folder.exists():
        try:
            made = _write_backup(db, root, folder, cancel).folder
        except InvalidRequestError:
            if not folder.exists():  # another workstation finishing the same day's backup is fine
                raise
    daily = sorted(p for p in backups.iterdir() if p.is_dir() and p.name.startswith(DAILY_PREFIX))
    for old in daily[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return made


def read_manifest(folder: Path, cancel: threading.Event | None = None) -> dict:
    """The backup's manifest, after checking every file it lists against its SHA-256."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NotFoundError(f"{folder} does not exist or is not a folder; give the folder `backup` made.")
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        files = manifest["files"]
    except FileNotFoundError as error:
        raise NotFoundError(f"{folder} is not an Octant backup (it has no {MANIFEST}); give the folder "
                            "`backup` made.") from error
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DatabaseError(f"The backup in {folder} is damaged (its {MANIFEST} cannot be read); use another backup.") from error
    for name, expected in files.items():
        path = folder / name
        if Path(name).name != name or not path.is_file() or _sha256(path, cancel) != expected:
            raise DatabaseError(f"The backup in {folder} is damaged ({name} is missing or changed since the "
                                "backup); use another backup (the project is unchanged).")
    return manifest


def check_backup(folder: Path, cancel: threading.Event | None = None) -> dict:
    """The manifest of a backup that can be restored here: every file as the backup wrote it, and
    a schema this Octant knows (a newer Octant's backup is refused). What ``restore_project``
    checks first; the workstation checks it before asking to confirm (File → Restore from backup…)."""
    manifest = read_manifest(folder, cancel)
    check_revision(sqlite_revision(Path(folder) / DATABASE_FILENAME))
    return manifest


def _copy_file(source: Path, target: Path, cancel: threading.Event | None, progress: Callable[[float], None]) -> None:
    """``shutil.copy2`` in blocks, looking at ``cancel`` between them."""
    size, done = max(source.stat().st_size, 1), 0
    with source.open("rb") as reading, target.open("wb") as writing:
        for block in iter(lambda: reading.read(BLOCK), b""):
            _check(cancel, RESTORE_CANCELLED)
            writing.write(block)
            done += len(block)
            progress(done / size)
    _check(cancel, RESTORE_CANCELLED)
    shutil.copystat(source, target)


def _copy_database_in_steps(source: Path, target: Path, cancel: threading.Event | None,
                            progress: Callable[[float], None]) -> None:
    """SQLite's online backup of ``source`` over ``target``, ``STEP_PAGES`` at a time. The source
    is read in one read transaction, so the copy is one snapshot however long it takes and other
    programs' saves neither restart it nor wait for it; the target is written in one write
    transaction, held from the first step to the last: programs with it open see the old
    database or the new one, never a mix, and a cancel between two steps rolls the target back
    whole (CancelledError)."""
    def step(_status: int, remaining: int, total: int) -> None:
        if remaining:   # after the last step the target is committed: too late to call it cancelled
            _check(cancel, RESTORE_CANCELLED)   # the backup is then finished unfinished: rolled back
        progress(1 - remaining / total if total else 1.0)

    _check(cancel, RESTORE_CANCELLED)
    reading = sqlite3.connect(source, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    writing = sqlite3.connect(target, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        reading.execute("BEGIN")
        reading.execute("SELECT count(*) FROM sqlite_master").fetchone()   # the snapshot starts here
        reading.backup(writing, pages=STEP_PAGES, progress=step)
    finally:
        writing.close()
        reading.close()


class _LiveDatabaseDamaged(Exception):
    """The project's database could not be read to keep a copy of it: it is moved aside instead."""


def _keep_files(root: Path, folder: Path) -> None:
    """The project's top-level files (its secrets and settings) into ``folder``, made anew."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for path in project_files(root):
        shutil.copy2(path, folder / path.name)


# SQLite errors that say nothing of ``live``'s health: a lock, or the copy's own disk (full, read-only).
_NOT_DAMAGE = ("locked", "disk is full", "unable to open", "readonly")


def _keep_a_copy(live: Path, kept: Path, cancel: threading.Event | None, progress: Callable[[float], None]) -> None:
    """A consistent copy of ``live`` in ``kept``, checked; _LiveDatabaseDamaged when it cannot be
    read (a lock, a cancel or a copy that cannot be written is not damage: it goes on up, and the
    restore stops with the project as it was, never moving a healthy database aside)."""
    try:
        _copy_database_in_steps(live, kept, cancel, progress)
        _seal(kept, cancel)
    except (DatabaseError, sqlite3.Error) as error:
        kept.unlink(missing_ok=True)
        if isinstance(error, sqlite3.OperationalError) and any(words in str(error) for words in _NOT_DAMAGE):
            raise
        raise _LiveDatabaseDamaged(str(error)) from error


def _replace_keeping_a_copy(staged: Path, live: Path, kept: Path, cancel: threading.Event | None,
                            keeping: Callable[[float], None], putting: Callable[[float], None]) -> None:
    """Write ``staged`` over ``live`` through the online backup API, and keep a copy of ``live``
    in ``kept`` made under the same write lock, so no save of another program can fall between
    the copy and the overwrite (it would be in neither).

    The overwrite's first step takes ``live``'s write lock and keeps it to the last step (one
    write transaction): from then on other programs' saves wait for it (the busy timeout; the
    workstation keeps them and tries again, ui/save_queue.py) and go into the restored database.
    After that first step, with nothing committed yet and nobody else able to commit, the copy
    of ``live`` is taken: it holds every save acknowledged before the restore. A cancel, or a
    database that cannot be copied (_LiveDatabaseDamaged), rolls the overwrite back whole."""
    with closing(sqlite3.connect(staged)) as connection:
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
    step_pages = max(1, min(STEP_PAGES, pages // 2))   # the first step never finishes it: copy, then commit
    kept_yet = False

    def step(status: int, remaining: int, total: int) -> None:
        nonlocal kept_yet
        if status not in (sqlite3.SQLITE_OK, sqlite3.SQLITE_DONE):   # busy: tried again; an error: raised
            if not kept_yet:
                _check(cancel, RESTORE_CANCELLED)
            return
        if not kept_yet:
            if not remaining:   # committed in one step: a page or two is not an Octant database
                raise DatabaseError("The backup's database is empty; check the backup.")
            _keep_a_copy(live, kept, cancel, keeping)
            kept_yet = True
        if remaining:   # after the last step the target is committed: too late to call it cancelled
            _check(cancel, RESTORE_CANCELLED)
        putting(1 - remaining / total if total else 1.0)

    _check(cancel, RESTORE_CANCELLED)
    reading = sqlite3.connect(staged, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    try:
        writing = sqlite3.connect(live, timeout=BUSY_TIMEOUT_MS / 1000)
    except sqlite3.Error:
        reading.close()
        raise
    try:
        reading.execute("BEGIN")
        reading.execute("SELECT count(*) FROM sqlite_master").fetchone()
        try:
            reading.backup(writing, pages=step_pages, progress=step)
        except sqlite3.DatabaseError as error:
            if kept_yet or isinstance(error, sqlite3.OperationalError):   # locked, or a disk error: not damage
                raise
            raise _LiveDatabaseDamaged(str(error)) from error   # not a database: refused before the first step
    finally:
        writing.close()
        reading.close()


def _move_damaged(root: Path, folder: Path) -> None:
    for name in (DATABASE_FILENAME, f"{DATABASE_FILENAME}-wal", f"{DATABASE_FILENAME}-shm"):
        if (Path(root) / name).exists():
            shutil.move(Path(root) / name, folder / name)


def _no_progress(_sentence: str, _fraction: float) -> None:
    pass


def restore_project(root: Path, source: Path, reader_id: int | None = None,
                    progress: Progress | None = None, cancel: threading.Event | None = None) -> BackupResult:
    """Replace the project's database and top-level files by a backup's.

    Everything up to the last step works on copies, so a cancel (``cancel``, seen within a
    second: between blocks hashed or copied, database pages written and audit events checked)
    leaves the project exactly as it was and raises CancelledError: the backup is checked, copied
    into a hidden folder in the project, upgraded to this Octant's schema there, its restore is
    recorded in its audit trail and the trail checked; last the copy is written over the project's
    database through the online backup API, in one write transaction: programs with the project
    open see the old or the restored database, never a mix, and a cancel during it rolls it back.
    Under that transaction's write lock, before anything is committed, what the project holds now
    is kept in ``<project>/backups/before-restore-<time>`` (a consistent copy of a healthy
    database; a damaged one is moved there), so a restore never loses anything: every save another
    program made before the lock is in that copy, and saves meanwhile wait for the lock (or are
    kept by the workstation and tried again) and go into the restored database
    (``_replace_keeping_a_copy``). Only the top-level files' renames follow. Returns where the
    earlier state was kept.
    ``progress(sentence, fraction)`` says what it is doing.
    """
    root, source = Path(root), Path(source)
    tell = progress or _no_progress

    def say(sentence: str, fraction: float) -> None:
        tell(sentence, round(fraction, 3))   # 0.1 + 0.2 must not come out past 0.3
    say("Checking the backup's files…", 0.0)
    manifest = check_backup(source, cancel)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    backups, live, staging = root / BACKUPS_FOLDER, root / DATABASE_FILENAME, root / f"{STAGING_PREFIX}{stamp}"
    kept = backups / f"before-restore-{stamp}"
    had_backups, replacing = backups.exists(), False
    for left in root.glob(f"{STAGING_PREFIX}*"):   # a restore killed mid-way (kill -9, power cut) left its copy
        shutil.rmtree(left, ignore_errors=True)
    try:
        staging.mkdir()
        _copy_file(source / DATABASE_FILENAME, staging / DATABASE_FILENAME, cancel,
                   lambda done: say("Copying the backup…", 0.1 + 0.2 * done))
        for name in manifest["files"]:
            if name != DATABASE_FILENAME:
                shutil.copy2(source / name, staging / name)
        say("Checking the backup's audit trail…", 0.3)
        staged = Database.open(sqlite_url(staging / DATABASE_FILENAME), root)  # upgrades an older backup's schema
        try:
            with staged.transaction() as session:
                record(session, "project", None, "restore_backup", None,
                       dict(source=str(source), backup_created_at=manifest.get("created_at"),
                            backup_audit_head=manifest.get("audit_head"), kept_before_restore=str(kept)),
                       reader_id)
            report = verify(staged, cancel=cancel)
        finally:
            staged.dispose()
        _check(cancel, RESTORE_CANCELLED)
        _keep_files(root, kept)
        damaged = not live.exists()
        if not damaged:
            try:
                _replace_keeping_a_copy(staging / DATABASE_FILENAME, live, kept / DATABASE_FILENAME, cancel,
                                        lambda done: say("Keeping what the project holds now…", 0.5 + 0.2 * done),
                                        lambda done: say("Putting the backup in place…", 0.7 + 0.3 * done))
                replacing = True
            except _LiveDatabaseDamaged:
                damaged = True
        if damaged:   # a database that cannot be read (or none) is moved aside whole, not copied
            say("Putting the backup in place…", 0.7)
            replacing = True
            _move_damaged(root, kept)
            (staging / DATABASE_FILENAME).replace(live)
        for name in manifest["files"]:
            if name != DATABASE_FILENAME:
                (staging / name).replace(root / name)
    except (OSError, sqlite3.Error) as error:
        where = f"what the project held before is kept in {kept}" if replacing else "the project is unchanged"
        raise DatabaseError(f"The backup could not be restored into {root} ({error}); {where}.") from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if not replacing:   # cancelled or failed before the project was touched: nothing of it stays
            shutil.rmtree(kept, ignore_errors=True)
            if not had_backups and backups.is_dir() and not any(backups.iterdir()):
                backups.rmdir()
    say("Restored.", 1.0)
    return BackupResult(kept, list(manifest["files"]), report.events, report.head)
