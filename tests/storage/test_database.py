"""Schema from empty, SQLite settings, and refusing databases Octant must not touch.

PostgreSQL's own cases (unreachable server, another program's database) are in test_postgresql.py.
"""
from __future__ import annotations

import sqlite3

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, text
from sqlalchemy.exc import IntegrityError

from storage.database import DATABASE_FILENAME, Database, known_revisions, sqlite_url
from storage.errors import (
    DatabaseError,
    DatabaseLockedError,
    InvalidRequestError,
    NotFoundError,
    SchemaTooNewError,
)
from storage.project import create_project, open_project
from storage.readers import list_readers
from storage.schema import Base, Read
from tests.conftest import add_reader_as_admin


def test_migrations_from_empty_reach_head_and_match_the_models(tmp_project):
    _, head = known_revisions()
    with tmp_project.database.engine.connect() as connection:
        context = MigrationContext.configure(connection)
        assert context.get_current_revision() == head
        assert compare_metadata(context, Base.metadata) == []


@pytest.mark.sqlite_only
def test_sqlite_runs_in_wal_with_foreign_keys_and_a_busy_timeout(tmp_project):
    with tmp_project.database.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 10_000


def test_foreign_keys_are_enforced(tmp_project):
    with pytest.raises(IntegrityError, match="(?i)FOREIGN KEY"):
        with tmp_project.database.transaction() as session:
            session.execute(insert(Read).values(image_id=99, reader_id=99, position=0))


def test_a_project_reopens_with_what_was_saved(tmp_project, database_url):
    add_reader_as_admin(tmp_project.database, "Dr A", "ophthalmologist")
    tmp_project.close()
    with open_project(tmp_project.root, database_url) as again:
        assert [r.name for r in list_readers(again.database)] == ["Admin", "Dr A"]
        assert again.settings().name == "Test clinic"


def test_a_folder_without_a_project_says_to_run_init(tmp_path):
    with pytest.raises(NotFoundError, match="init"):
        open_project(tmp_path)
    assert not (tmp_path / DATABASE_FILENAME).exists()


def test_init_refuses_a_folder_or_database_that_has_a_project(tmp_project, database_url):
    with pytest.raises(InvalidRequestError, match="already holds"):
        create_project(tmp_project.root, database_url=database_url)


@pytest.mark.sqlite_only
def test_a_newer_schema_is_refused_and_left_untouched(tmp_project):
    with tmp_project.database.transaction() as session:
        session.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    tmp_project.close()
    path = tmp_project.root / DATABASE_FILENAME
    before = path.read_bytes()
    with pytest.raises(SchemaTooNewError, match="newer Octant"):
        open_project(tmp_project.root)
    assert path.read_bytes() == before


def test_a_file_that_is_not_a_database_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / DATABASE_FILENAME
    path.write_bytes(b"These are clinic notes, not a database.\n" * 200)
    with pytest.raises(DatabaseError, match="not a readable Octant database"):
        open_project(tmp_path)
    assert path.read_bytes() == b"These are clinic notes, not a database.\n" * 200


def test_another_programs_sqlite_database_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / DATABASE_FILENAME
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE patients (name TEXT)")
    before = path.read_bytes()
    with pytest.raises(DatabaseError, match="not a readable Octant database"):
        open_project(tmp_path)
    assert path.read_bytes() == before


def test_an_empty_database_file_is_not_taken_for_a_project(tmp_path):
    (tmp_path / DATABASE_FILENAME).touch()
    with pytest.raises(DatabaseError, match="init"):
        open_project(tmp_path)


@pytest.mark.sqlite_only
def test_a_database_locked_by_another_program_gives_a_clear_error_and_keeps_data(tmp_project):
    add_reader_as_admin(tmp_project.database, "Dr A", "ophthalmologist")
    url = sqlite_url(tmp_project.root / DATABASE_FILENAME)
    impatient = Database.open(url, tmp_project.root, busy_timeout_ms=50)
    other = sqlite3.connect(tmp_project.root / DATABASE_FILENAME, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another program holds the write lock
    try:
        with pytest.raises(DatabaseLockedError, match="busy in another program"):
            add_reader_as_admin(impatient, "Dr B", "ophthalmologist")
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert [r.name for r in list_readers(impatient)] == ["Admin", "Dr A"]
    add_reader_as_admin(impatient, "Dr B", "ophthalmologist")  # works again once the lock is gone
    impatient.dispose()


@pytest.mark.sqlite_only
def test_a_backup_copy_holds_everything_saved(tmp_project):
    from storage.database import backup_sqlite

    add_reader_as_admin(tmp_project.database, "Dr A", "ophthalmologist")
    copy = backup_sqlite(tmp_project.root / DATABASE_FILENAME, "0001")
    with sqlite3.connect(copy) as connection:
        assert connection.execute("SELECT name FROM reader").fetchall() == [("Admin",), ("Dr A",)]


KILLED_MID_ACTION = """
import os, signal, sys
from sqlalchemy import insert, text
from sqlalchemy.exc import IntegrityError
from storage.project import open_project
from storage.reading import ReaderSession
project = open_project(sys.argv[1])
session = ReaderSession(project.database, 2)
image = session.next_unfinished().id
session.set_regions(image, "drusen", {3})               # committed
with project.database.transaction() as s:               # killed before this one commits
    s.execute(text("UPDATE regional_label SET regions = 255"))
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.sqlite_only
def test_a_process_killed_mid_action_keeps_every_committed_action(clinic, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from storage.reading import ReaderSession

    assert clinic.ophthalmologists[0].id == 2   # the admin, made first, is 1
    script = tmp_path / "killed.py"
    script.write_text(KILLED_MID_ACTION)
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, str(script), str(clinic.project.root)], cwd=repo,
                          env={"PYTHONPATH": str(repo)}, capture_output=True, timeout=60)
    assert done.returncode == -9, done.stderr.decode()
    clinic.project.close()
    with open_project(clinic.project.root) as again:
        session = ReaderSession(again.database, 2)
        image = session.queue()[0].id
        assert session.read(image).regions == {"drusen": frozenset({3})}
