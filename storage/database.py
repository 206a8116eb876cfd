"""Engine, transactions and schema checks for a project database.

SQLite by default (``<project>/octant.sqlite``, WAL, foreign keys, busy timeout); a PostgreSQL URL
is used as given, with the locks and isolation levels of ``storage.postgresql``. Every user action
runs in one ``Database.transaction()``; driver errors that a user can act on (locked, not a
database, server unreachable) leave it as ``storage.errors`` types with one sentence.
"""
from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from storage import postgresql
from storage.errors import DatabaseError, DatabaseLockedError, SchemaTooNewError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

DATABASE_FILENAME = "octant.sqlite"
BUSY_TIMEOUT_MS = 5000
WAL_AUTOCHECKPOINT_PAGES = 10_000  # 4 KiB pages
WRITE_LOCK_TRY_MS = 1  # one try for the write lock (see _begin_immediate)
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Alembic keeps the running migration in module globals (alembic.context, alembic.op): one
# migration at a time in this process, whichever database it is for.
_ALEMBIC_IN_USE = threading.Lock()

_LOCKED = DatabaseLockedError(
    "The project database is busy in another program; wait for it to finish (or close it) and try again."
)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{Path(path).resolve()}"


def alembic_config() -> Config:
    """Built in code so an installed (non-editable) package needs no alembic.ini."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def known_revisions() -> tuple[set[str], str]:
    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_current_head()
    if head is None:   # the package's migrations folder lost its files
        raise DatabaseError("Octant's database migrations are missing; reinstall Octant.")
    return {rev.revision for rev in script.walk_revisions()}, head


def _install_sqlite_pragmas(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: object) -> None:   # the driver's own connection
        # Take transaction control away from pysqlite so BEGIN is ours (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        # With WAL, NORMAL syncs at checkpoints only: a committed action survives a crash or kill
        # of the process (the WAL is in the OS cache); only a power cut can lose the last commits.
        cursor.execute("PRAGMA synchronous = NORMAL")
        # Checkpoint (copy the WAL into the database) every ~40 MB instead of SQLite's 4 MB: a
        # checkpoint runs inside whichever commit crosses the limit, so rarer checkpoints keep
        # saving a label fast for 99 % of clicks or more (bench_storage.py). dispose() checkpoints.
        cursor.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # Writers take the write lock at BEGIN (IMMEDIATE) so they wait for the busy timeout
        # instead of failing when another process wrote between their read and their write.
        options = connection.get_execution_options()
        mode = options.get("sqlite_begin", "DEFERRED")
        if mode == "IMMEDIATE":
            wait_ms = options.get("lock_wait_ms", busy_timeout_ms)   # Database.transaction(lock_wait_ms=...)
            _begin_immediate(connection.connection.driver_connection, wait_ms,  # type: ignore[arg-type]
                             busy_timeout_ms)
        else:
            connection.exec_driver_sql(f"BEGIN {mode}")


def _begin_immediate(dbapi_connection: sqlite3.Connection, wait_ms: int, busy_timeout_ms: int) -> None:
    """BEGIN IMMEDIATE, waiting up to ``wait_ms`` for the write lock by polling every millisecond or two.

    SQLite's own busy handler sleeps ever longer (up to 100 ms a try) and queues nobody, so under
    steady saving a waiting writer kept missing the moments the lock was free and waited seconds
    (4.2 s of a 5 s timeout, bench_storage_concurrency.py). Short, jittered tries take the lock
    within milliseconds of its release; the busy timeout still bounds the whole wait.
    """
    deadline = time.monotonic() + wait_ms / 1000
    dbapi_connection.execute(f"PRAGMA busy_timeout = {WRITE_LOCK_TRY_MS}")
    try:
        while True:
            try:
                dbapi_connection.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as error:
                problem = sqlite_problem(error)
                if problem is None:
                    raise
                if problem is not _LOCKED:   # a read-only or damaged database: its one sentence, not the raw error
                    raise problem from error
                if time.monotonic() >= deadline:
                    raise _LOCKED from error
                time.sleep(random.uniform(0.0002, 0.0015))
    finally:   # the connection's own timeout again, for the statements that follow
        dbapi_connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")


def make_engine(url: str, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"timeout": busy_timeout_ms / 1000, "check_same_thread": False}
        )
        _install_sqlite_pragmas(engine, busy_timeout_ms)
        return engine
    try:
        parsed = make_url(url)
        connect_args = postgresql.network_settings(parsed.query) if parsed.get_backend_name() == "postgresql" else {}
        engine = create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)
    except (ImportError, sa_exc.ArgumentError) as error:  # not a URL, or its driver is missing
        raise DatabaseError(
            "Octant cannot use that database URL; write it as postgresql+psycopg://USER@HOST/DATABASE "
            "and install the driver with Octant's extra: pip install -e '.[postgres]'."
        ) from error
    if engine.dialect.name == "postgresql":
        postgresql.configure_engine(engine, busy_timeout_ms)
    return engine


def _writing(engine: Engine) -> Engine:
    """The engine for actions that write (see _on_begin and storage.postgresql)."""
    if engine.dialect.name == "postgresql":
        return postgresql.writing_options(engine)
    return engine.execution_options(sqlite_begin="IMMEDIATE")


@contextmanager
def translated_errors() -> Iterator[None]:
    """Turn driver errors a user can act on into Octant errors; others pass through."""
    try:
        yield
    except sa_exc.IntegrityError:
        raise
    except sa_exc.DatabaseError as error:
        if postgresql.raised_by_postgresql(error):
            user_error = postgresql.user_error(error)
        else:
            user_error = _sqlite_user_error(error)
        if user_error is None:
            raise
        raise user_error from error


def _sqlite_user_error(error: sa_exc.DatabaseError) -> DatabaseError | None:
    return None if error.orig is None else sqlite_problem(error.orig)


def sqlite_problem(error: BaseException) -> DatabaseError | None:
    """One sentence per kind of SQLite failure (by its result code, else its text); None for
    errors that are bugs rather than something the user can act on."""
    text = str(error).lower()
    code = getattr(error, "sqlite_errorname", "") or ""
    if "locked" in text or "busy" in text or code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return _LOCKED
    if code.startswith("SQLITE_READONLY") or "readonly" in text or "read-only" in text:
        return _read_only()
    if code == "SQLITE_FULL" or "disk is full" in text:
        return DatabaseError("The disk holding the project database is full; free some space and try again "
                             "(nothing of this action was saved).")
    if code.startswith("SQLITE_IOERR") or "i/o error" in text:
        return DatabaseError("The project database's disk failed to read or write (an I/O error); check the disk "
                             "or network drive, then try again (nothing of this action was saved).")
    if "no such table" in text or "no such column" in text or "malformed database schema" in text:
        return DatabaseError(f"The project database's tables are damaged ({error}); restore it from a backup "
                             "(Octant changed nothing).")
    if code.startswith("SQLITE_CANTOPEN") or "unable to open" in text:
        return DatabaseError(
            "The project database cannot be opened; check that the folder exists and that you may write to it."
        )
    if code in ("SQLITE_CORRUPT", "SQLITE_NOTADB") or "not a database" in text or "malformed" in text:
        return _not_a_database()
    if isinstance(error, sqlite3.OperationalError):
        return DatabaseError(
            f"The project database failed ({error}); close other programs using it and try again."
        )
    return None


def _read_only() -> DatabaseError:
    return DatabaseError("The project database is read-only (its file or folder cannot be written); make "
                         "the project folder and octant.sqlite writable for you, then try again.")


def _not_a_database(path: Path | None = None) -> DatabaseError:
    where = f"{path} " if path else "The project database "
    return DatabaseError(
        f"{where}is not a readable Octant database (damaged or another kind of file); "
        "restore it from a backup or choose another project folder."
    )


def _no_project(url: str) -> DatabaseError:
    init = "init DIR" if url.startswith("sqlite") else "init DIR --database-url URL"
    path = Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None
    if path is not None and path.is_file() and (path.parent / "backups").is_dir():
        # A project folder with backups whose database has no tables was a project: its file was
        # emptied (a full disk, a copy cut short), and init would start it again from nothing.
        return DatabaseError(f"{path} is empty, but this folder has backups: restore the newest with "
                             f"`python main.py restore {path.parent / 'backups'}/NAME --project {path.parent}`.")
    if path is not None and path.is_file():
        # `init` accepts an empty file (storage/project.py), so this says what both ways lead to.
        return DatabaseError(f"{path} is empty (no project in it): put back a backup of it with `python main.py "
                             f"restore BACKUP --project {path.parent}`, or start a new project there with "
                             f"`python main.py init {path.parent} --admin NAME`.")
    return DatabaseError(f"The project database is empty; create a project with `python main.py {init}` first.")


def sqlite_revision(path: Path) -> str | None:
    """Read the schema revision without changing the file (read-only, no pragmas).

    Returns None for a database with no tables at all; raises DatabaseError for a file that is not
    SQLite or is an SQLite database of some other program.
    """
    try:
        connection = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error as error:
        raise DatabaseError(
            f"{path} cannot be opened; check that it exists and that you may read it."
        ) from error
    try:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        if not tables:
            return None
        if "alembic_version" not in tables:
            raise _not_a_database(path)
        rows = connection.execute("SELECT version_num FROM alembic_version").fetchall()
        if not rows and tables - {"alembic_version"}:
            raise DatabaseError(f"{path} holds a project's tables but no schema version (its alembic_version "
                                "table is empty); restore it from a backup (Octant changed nothing).")
        if len(rows) > 1:
            raise _two_versions(len(rows))
        return rows[0][0] if rows else None
    except sqlite3.OperationalError as error:
        problem = sqlite_problem(error)
        if problem is _LOCKED:
            raise _LOCKED from error
        if not os.access(path, os.W_OK) or not os.access(Path(path).parent, os.W_OK) or "unable to open" in str(error):
            # WAL: a read-only reader still needs the -shm file, which a read-only folder cannot hold
            raise _read_only() from error
        raise _not_a_database(path) from error
    except sqlite3.DatabaseError as error:
        raise _not_a_database(path) from error
    finally:
        connection.close()


def check_revision(revision: str | None) -> bool:
    """True when the schema needs an upgrade; SchemaTooNewError when it comes from a newer Octant."""
    known, head = known_revisions()
    if revision is not None and revision not in known:
        raise SchemaTooNewError(
            "This project was saved by a newer Octant; update Octant to open it (nothing was changed)."
        )
    return revision != head


def upgrade_schema(engine: Engine) -> None:
    """Bring the schema to this Octant's head in one transaction (SQLite and PostgreSQL DDL are
    transactional). Another workstation may be upgrading the same database: Alembic reads the
    revision again once this one holds the lock, and finds nothing left to do."""
    config = alembic_config()
    with _ALEMBIC_IN_USE, translated_errors(), _writing(engine).begin() as connection:
        if engine.dialect.name == "postgresql":
            postgresql.take_write_lock(connection, "schema")
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def backup_sqlite(path: Path, revision: str) -> Path:
    """Copy a database before its schema is upgraded, so an upgrade can never cost saved work.

    The name carries the time (UTC) and, if need be, a number: a second attempt at an upgrade
    never overwrites the copy the first one made."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.before-upgrade-from-{revision}-{stamp}")
    number = 1
    while True:
        try:
            target.open("xb").close()  # reserved atomically: two programs upgrading at once get two names
            break
        except FileExistsError:
            number += 1
            target = path.with_name(f"{path.name}.before-upgrade-from-{revision}-{stamp}-{number}")
    source, copy = sqlite3.connect(path), sqlite3.connect(target)
    try:
        source.backup(copy)  # consistent even while other programs use the database
    finally:
        copy.close()
        source.close()
    return target


def _two_versions(count: int) -> DatabaseError:
    return DatabaseError(f"The project database records {count} schema versions at once (its alembic_version "
                         "table should hold one row); restore it from a backup (Octant changed nothing).")


def current_revision(engine: Engine) -> str | None:
    with translated_errors(), engine.connect() as connection:
        heads = MigrationContext.configure(connection).get_current_heads()
    if len(heads) > 1:
        raise _two_versions(len(heads))
    return heads[0] if heads else None


class Database:
    """One project database: the engine plus sessions for reading and for one user action."""

    def __init__(self, engine: Engine, root: Path | None = None) -> None:
        self.engine = engine
        self.root = root  # the project folder: image paths are stored relative to it
        reading = postgresql.reading_options(engine) if engine.dialect.name == "postgresql" else engine
        self._read_sessions = sessionmaker(reading, expire_on_commit=False)
        self._write_sessions = sessionmaker(_writing(engine), expire_on_commit=False)
        self._short_writes: dict[int, sessionmaker[Session]] = {}   # by lock wait (transaction)

    @classmethod
    def open(
        cls,
        url: str,
        root: Path | None = None,
        create: bool = False,
        busy_timeout_ms: int = BUSY_TIMEOUT_MS,
    ) -> Database:
        """Open an Octant database, upgrading an older schema; refuses anything else.

        An empty database gets the schema only when ``create`` is set.
        """
        if url.startswith("sqlite:///"):
            path = Path(url.removeprefix("sqlite:///"))
            revision = sqlite_revision(path) if path.exists() or not create else None
            check_revision(revision)
            if revision is None and not create:
                raise _no_project(url)
        engine = make_engine(url, busy_timeout_ms)
        try:
            if not url.startswith("sqlite"):
                with translated_errors(), engine.connect() as connection:
                    has_tables = bool(inspect(connection).get_table_names())
                revision = current_revision(engine)
                if revision is None and has_tables:
                    raise postgresql.not_an_octant_database()
            else:
                revision = current_revision(engine)
            if revision is None and not create:
                raise _no_project(url)
            if check_revision(revision):
                if revision is not None and url.startswith("sqlite:///"):
                    backup_sqlite(Path(url.removeprefix("sqlite:///")), revision)
                upgrade_schema(engine)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, root)

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def transaction(self, lock: str | None = None, lock_wait_ms: int | None = None) -> Iterator[Session]:
        """One user action: commits at the end, rolls everything back on any exception.

        ``lock_wait_ms`` bounds the wait for another program's lock (SQLite's write lock, a
        PostgreSQL row or advisory lock) below the busy timeout: a save on the GUI thread waits
        that long at most, then DatabaseLockedError (ui/save_queue.py keeps the click and retries).

        ``lock`` (one of ``postgresql.WRITE_LOCKS``) is for an action that checks what is stored
        before it writes: on PostgreSQL it holds that lock from its start to its commit, so no
        other workstation's action of the same kind comes in between. SQLite needs none: its
        writers take turns (BEGIN IMMEDIATE).
        """
        with translated_errors(), self._writer(lock_wait_ms)() as session, session.begin():
            if lock_wait_ms is not None and self.engine.dialect.name == "postgresql":
                session.connection().exec_driver_sql(f"SET LOCAL lock_timeout = {int(lock_wait_ms)}")
            if lock is not None and self.engine.dialect.name == "postgresql":
                postgresql.take_write_lock(session.connection(), lock)
            yield session

    def _writer(self, lock_wait_ms: int | None) -> sessionmaker[Session]:
        """The write sessions that wait ``lock_wait_ms`` for a lock (None: the busy timeout)."""
        if lock_wait_ms is None or self.engine.dialect.name != "sqlite":
            return self._write_sessions
        if lock_wait_ms not in self._short_writes:
            engine = self.engine.execution_options(sqlite_begin="IMMEDIATE", lock_wait_ms=int(lock_wait_ms))
            self._short_writes[lock_wait_ms] = sessionmaker(engine, expire_on_commit=False)
        return self._short_writes[lock_wait_ms]

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A consistent read-only snapshot (never writes)."""
        with translated_errors(), self._read_sessions() as session:
            yield session  # closing the session rolls its snapshot back

    def dispose(self) -> None:
        if self.engine.dialect.name == "sqlite":
            try:  # fold the WAL into the database file without waiting for other programs
                with self.engine.connect() as connection:
                    connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            except sa_exc.SQLAlchemyError:
                pass
        self.engine.dispose()
