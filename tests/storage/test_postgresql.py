"""PostgreSQL itself: refusing databases Octant must not touch, upgrading from several
workstations at once, and one clear sentence for each failure a user can act on.

Everything else in tests/storage runs on PostgreSQL too (the ``[postgresql]`` tests).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import make_url

from main import main
from storage import postgresql
from storage.database import Database, current_revision, known_revisions, translated_errors
from storage.errors import (
    ConcurrentChangeError,
    DatabaseError,
    DatabaseLockedError,
    DatabaseUnreachableError,
    SchemaTooNewError,
)
from storage.project import create_project, open_project
from storage.readers import list_readers
from storage.reading import ReaderSession
from storage.schema import Project
from tests.conftest import add_reader_as_admin
from tests.storage.postgres_server import connect

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def storage_commands_only(monkeypatch):
    # main.py would import every layer's commands (torch, Qt); these tests need only storage's.
    monkeypatch.setattr("main.COMMAND_MODULES", ("storage.commands",))


def revision_of(url: str) -> str | None:
    with connect(url) as connection:
        return connection.execute("SELECT version_num FROM alembic_version").fetchone()[0]

@pytest.fixture(autouse=True)
def admin_passphrase(monkeypatch):
    """`init` reads the first admin's passphrase before it reaches the server."""
    monkeypatch.setenv("OCTANT_ADMIN_PASSPHRASE", "the clinic's long phrase")

@pytest.mark.postgresql_only
def test_a_newer_schema_is_refused_and_left_untouched(tmp_project, database_url):
    add_reader_as_admin(tmp_project.database, "Dr A", "ophthalmologist")
    tmp_project.close()
    with connect(database_url) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    with pytest.raises(SchemaTooNewError, match="newer Octant"):
        open_project(tmp_project.root, database_url)
    assert revision_of(database_url) == "9999_from_the_future"
    with connect(database_url) as connection:
        assert connection.execute("SELECT name FROM reader").fetchall() == [("Admin",), ("Dr A",)]

@pytest.mark.postgresql_only
def test_another_programs_database_is_refused_and_left_untouched(tmp_path, database_url):
    with connect(database_url) as connection:
        connection.execute("CREATE TABLE patients (name TEXT)")
    with pytest.raises(DatabaseError, match="another program's tables"):
        create_project(tmp_path, database_url=database_url)
    with connect(database_url) as connection:
        tables = connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    assert tables == [("patients",)]

@pytest.mark.postgresql_only
def test_an_empty_database_is_not_taken_for_a_project(tmp_path, database_url):
    with pytest.raises(DatabaseError, match="init DIR --database-url URL"):
        open_project(tmp_path, database_url)
    with connect(database_url) as connection:
        assert connection.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == (0,)

OPEN_WHEN_TOLD = """
import sys, time
from pathlib import Path
from storage.database import Database
url, ready, go = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
ready.touch()
while not go.exists():
    time.sleep(0.005)
Database.open(url, create=True).dispose()
"""

@pytest.mark.postgresql_only
def test_workstations_opening_an_empty_database_at_once_migrate_it_once(tmp_path, database_url):
    """Every workstation upgrades the schema when it opens the project: two processes (Alembic
    runs one migration at a time per process) set off together once their imports are done."""
    go = tmp_path / "go"
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    workstations = [
        subprocess.Popen([sys.executable, "-c", OPEN_WHEN_TOLD, database_url, str(tmp_path / f"ready{n}"), str(go)],
                         cwd=REPO, env=environment, stderr=subprocess.PIPE, text=True)
        for n in range(2)
    ]
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"ready{n}").exists() for n in range(2)) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    failures = [w.stderr.read() for w in workstations if w.wait(timeout=60) != 0]
    assert failures == []
    assert revision_of(database_url) == known_revisions()[1]

def test_an_unreachable_server_is_one_sentence_and_exit_1(tmp_path, capsys, storage_commands_only):
    pytest.importorskip("psycopg")
    nowhere = f"postgresql+psycopg://octant@/octant?host={tmp_path}"  # no server listens there
    assert main(["status", "--project", str(tmp_path), "--database-url", nowhere]) == 1
    assert capsys.readouterr().err == f"octant: {postgresql.UNREACHABLE}\n"
    assert main(["init", str(tmp_path / "p"), "--admin", "Boss", "--database-url", nowhere]) == 1
    assert capsys.readouterr().err == f"octant: {postgresql.UNREACHABLE}\n"
    # Its own type: a workstation keeps a click that met it and saves it once the server answers.
    with pytest.raises(DatabaseUnreachableError):
        Database.open(nowhere, tmp_path)


def test_a_server_shutting_down_or_starting_up_is_out_of_reach_for_now():
    """Between a stop and a start the server answers with these FATAL reasons (no SQLSTATE on a
    failed connection): kept clicks are tried again, as when nothing listens."""
    from sqlalchemy import exc as sa_exc

    for reason in ("the database system is shutting down", "the database system is starting up"):
        failed = sa_exc.OperationalError("connect", {}, type("OperationalError", (Exception,), {
            "__module__": "psycopg", "sqlstate": None})(f'connection failed: FATAL:  {reason}'))
        assert isinstance(postgresql.user_error(failed), DatabaseUnreachableError)

@pytest.mark.parametrize("url", ["postgres://host/octant", "octant.sqlite", "nosuchdb+driver://host/x"])
def test_a_url_octant_cannot_use_says_how_to_write_one(url, tmp_path, capsys, storage_commands_only):
    assert main(["status", "--project", str(tmp_path), "--database-url", url]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "postgresql+psycopg://USER@HOST/DATABASE" in err

@pytest.mark.postgresql_only
def test_a_missing_database_or_user_is_named_in_one_sentence(tmp_path, database_url, capsys, storage_commands_only):
    missing = make_url(database_url).set(database="no_such_clinic").render_as_string(hide_password=False)
    assert main(["init", str(tmp_path), "--admin", "Boss", "--database-url", missing]) == 1
    assert capsys.readouterr().err == (
        "octant: The PostgreSQL database 'no_such_clinic' does not exist; create it (createdb no_such_clinic) "
        "or correct the database URL.\n")
    stranger = make_url(database_url).set(username="no_such_user").render_as_string(hide_password=False)
    assert main(["status", "--project", str(tmp_path), "--database-url", stranger]) == 1
    err = capsys.readouterr().err
    assert err.startswith("octant: PostgreSQL refused the login (") and err.count("\n") == 1
    assert "no_such_user" in err and "check the user and password" in err

@pytest.fixture
def visitor_url(database_url):
    """The test database's URL for a new role that may connect but not create tables."""
    role = f"visitor_{make_url(database_url).database}"
    with connect(database_url) as admin:
        try:
            admin.execute(f'CREATE ROLE "{role}" LOGIN')
            admin.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        except Exception as error:  # e.g. an existing server where the test user may not
            pytest.skip(f"cannot make a role without rights on this server: {error}")
    yield make_url(database_url).set(username=role).render_as_string(hide_password=False)
    with connect(database_url) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
        admin.execute(f'DROP ROLE "{role}"')

@pytest.mark.postgresql_only
def test_a_user_without_rights_on_the_database_is_told_so(tmp_path, visitor_url, capsys, storage_commands_only):
    assert main(["init", str(tmp_path), "--admin", "Boss", "--database-url", visitor_url]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "permission denied for schema public" in err
    assert "may not change this database" in err and "owner" in err

@pytest.mark.postgresql_only
def test_a_lock_held_past_the_busy_timeout_is_reported_as_busy_and_nothing_is_lost(clinic, database_url):
    db = clinic.project.database
    reader, other_reader = clinic.ophthalmologists[0].id, clinic.ophthalmologists[1].id
    image = ReaderSession(db, reader).next_unfinished().id
    ReaderSession(db, reader).set_regions(image, "drusen", {1})
    impatient = Database.open(database_url, clinic.project.root, busy_timeout_ms=200)
    try:
        with connect(database_url) as stuck:  # a workstation that hangs in the middle of an action
            stuck.execute("BEGIN")
            stuck.execute("SELECT id FROM read WHERE reader_id = %s AND image_id = %s FOR NO KEY UPDATE",
                          (reader, image))
            started = time.monotonic()
            with pytest.raises(DatabaseLockedError, match="another workstation holds a lock") as refused:
                ReaderSession(impatient, reader).set_regions(image, "drusen", {1, 2})
            assert time.monotonic() - started < 4 and str(refused.value) == postgresql.BUSY  # not 5 s
            other = ReaderSession(impatient, other_reader)  # other reads are not held up
            mine = [i.id for i in other.queue()]
            assert other.set_regions(mine[0], "membrane", {4}).regions == {"membrane": frozenset({4})}
            stuck.execute("ROLLBACK")
        assert ReaderSession(db, reader).read(image).regions == {"drusen": frozenset({1})}
        again = ReaderSession(impatient, reader).set_regions(image, "drusen", {1, 2})
        assert again.regions == {"drusen": frozenset({1, 2})}
    finally:
        impatient.dispose()

@pytest.mark.postgresql_only
def test_a_session_with_a_short_lock_wait_gives_up_on_a_held_row_and_saves_once_it_is_free(clinic, database_url):
    """The workstation's saves (ReaderSession(lock_wait_ms=...)) wait that long for another
    workstation's lock, not the busy timeout (SET LOCAL: the connection's own timeout is kept)."""
    db = clinic.project.database
    reader = clinic.ophthalmologists[0].id
    session = ReaderSession(db, reader, lock_wait_ms=50)
    image = session.next_unfinished().id
    with connect(database_url) as stuck:
        stuck.execute("BEGIN")
        stuck.execute("SELECT id FROM read WHERE reader_id = %s AND image_id = %s FOR NO KEY UPDATE",
                      (reader, image))
        with pytest.raises(DatabaseLockedError):
            session.set_regions(image, "drusen", {3})
        stuck.execute("ROLLBACK")
    assert session.set_regions(image, "drusen", {3}).regions == {"drusen": frozenset({3})}
    with db.transaction() as after:   # a later action on a pooled connection waits the busy timeout again
        assert after.connection().exec_driver_sql("SHOW lock_timeout").scalar() == "5s"


@pytest.mark.postgresql_only
def test_a_serialization_failure_is_one_sentence_saying_to_try_again(tmp_project):
    """A server whose administrator set stricter isolation for everything can refuse a write that
    raced another: the driver error becomes ConcurrentChangeError (a DatabaseLockedError)."""
    strict = tmp_project.database.engine.execution_options(isolation_level="REPEATABLE READ")
    with strict.connect() as first, strict.connect() as second:
        first.execute(select(Project.name)).all()  # its snapshot starts here
        second.execute(update(Project).values(name="Clinic B"))
        second.commit()
        with pytest.raises(ConcurrentChangeError) as refused, translated_errors():
            first.execute(update(Project).values(name="Clinic A"))
    assert str(refused.value) == postgresql.CONCURRENT_CHANGE
    assert isinstance(refused.value, DatabaseLockedError)

@pytest.mark.postgresql_only
def test_a_workstation_reconnects_after_the_server_ended_its_connections(clinic, database_url):
    """A server restart (or a firewall) ends idle connections overnight: the next action reconnects."""
    reader = clinic.ophthalmologists[0].id
    session = ReaderSession(clinic.project.database, reader)
    image = session.next_unfinished().id
    session.set_regions(image, "drusen", {1})
    with connect(database_url) as admin:
        ended = admin.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchone()[0]
    assert ended >= 1
    assert session.set_regions(image, "drusen", {1, 2}).regions == {"drusen": frozenset({1, 2})}
    assert [r.name for r in list_readers(clinic.project.database)][:2] == ["Admin", "Dr O0"]
    assert current_revision(clinic.project.database.engine) == known_revisions()[1]


@pytest.mark.postgresql_only
def test_connections_give_up_on_a_silent_network_within_seconds(tmp_project, database_url):
    """A network that drops packets silently left a save waiting for the kernel's TCP retries (about
    15 minutes, the workstation frozen; measured in a network namespace whose server address was
    pointed at a missing MAC). libpq's timeouts end it in seconds; a URL's own values are kept."""
    from sqlalchemy import text

    for url, connect_timeout in ((database_url, "3"), (f"{database_url}&connect_timeout=20"
                                                        if "?" in database_url else f"{database_url}?connect_timeout=20", "20")):
        database = Database.open(url)
        try:
            with database.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
                parameters = connection.connection.dbapi_connection.info.get_parameters()
        finally:
            database.dispose()
        assert parameters["connect_timeout"] == connect_timeout
        assert parameters["tcp_user_timeout"] == "3000" and parameters["keepalives_idle"] == "10"
