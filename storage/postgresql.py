"""What a PostgreSQL project database needs that SQLite gives by itself.

SQLite lets one writer in at a time (``BEGIN IMMEDIATE``), so an action may read, check and then
write. PostgreSQL lets writers run together, so an action that reads before it writes first takes
a lock held until it commits: the row it changes (a reader's read), or an advisory lock for its
kind of action (``WRITE_LOCKS``, via ``Database.transaction(lock=...)``). Writes run at READ
COMMITTED, so what an action reads after its lock includes everything committed before it; reads
run in one REPEATABLE READ snapshot, as on SQLite. A lock wait ends after the busy timeout, as on
SQLite; driver errors a user can act on become ``storage.errors`` types with one sentence.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Engine, event, text
from sqlalchemy import exc as sa_exc

from storage.errors import ConcurrentChangeError, DatabaseError, DatabaseLockedError, DatabaseUnreachableError

# pg_advisory_xact_lock(namespace, key): the namespace keeps clear of other programs' locks.
LOCK_NAMESPACE = 0x0C7A
WRITE_LOCKS = {  # one per kind of action that checks what is stored before it writes
    "schema": 1,  # migrations: every workstation upgrades the schema when it opens the project
    "project": 2,  # the project row, its settings and its finding catalogue
    "readers": 3,  # unique names, PINs, retiring
    "images": 4,  # de-duplication by hash and path
    "assignment": 5,  # three distinct readers per image, queue positions
    "models": 6,  # one active model per network
    "claims": 7,  # one process per image's model work (storage/work_claims.py)
}
_LOCK_STATEMENTS = {
    name: text(f"SELECT pg_advisory_xact_lock({LOCK_NAMESPACE}, {key})") for name, key in WRITE_LOCKS.items()
}

_LOCK_NOT_AVAILABLE = "55P03"  # lock_timeout passed
_CONCURRENT_CHANGE = ("40001", "40P01")  # serialization failure, deadlock detected
_INSUFFICIENT_PRIVILEGE = "42501"
_CONNECTION_LOST = ("08", "57P")  # connection exceptions; server shut down or restarting
# A server on its way down or up refuses connections with these words (and no SQLSTATE here).
_RESTARTING = re.compile(r"the database system is (starting up|shutting down|in recovery mode|not yet accepting)")

# A network that drops packets without a word (a cable pulled, the Wi-Fi gone) never answers: a
# save then waited for the kernel's TCP retries, about 15 minutes, with the workstation frozen.
# With these libpq settings an action gives up after about 6 s (the pool's ping, then a new
# connection) as "cannot be reached": the workstation keeps the click and saves it once the server
# answers. A URL's own values win.
NETWORK_SETTINGS = {
    "connect_timeout": 3,           # seconds to set up a connection
    "tcp_user_timeout": 3000,       # ms that sent data may stay unacknowledged
    "keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3,   # an idle link
}

UNREACHABLE = (
    "The PostgreSQL server cannot be reached; check that it is running and that the database URL "
    "names the right host and port, then try again."
)
BUSY = (
    "The project database is busy: another workstation holds a lock on the same data; "
    "wait a moment and try again."
)
CONCURRENT_CHANGE = (
    "Another workstation changed the same data at the same moment, so this action was not saved; "
    "try it again."
)


def network_settings(url_query: Mapping[str, object]) -> dict[str, int]:
    """``NETWORK_SETTINGS`` less those the database URL sets itself (its ``?name=value`` options)."""
    return {name: value for name, value in NETWORK_SETTINGS.items() if name not in url_query}


def configure_engine(engine: Engine, lock_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: object) -> None:   # the driver's own connection
        # Give up on a lock after the busy timeout (SQLite's busy_timeout) instead of waiting for
        # ever behind a workstation that hangs mid-action; SET outside any action, so commit it.
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET lock_timeout = {int(lock_timeout_ms)}")
        dbapi_connection.commit()


def reading_options(engine: Engine) -> Engine:
    # One snapshot for a whole read, as SQLite gives (READ COMMITTED takes one per statement);
    # a read-only transaction never fails to serialise.
    return engine.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)


def writing_options(engine: Engine) -> Engine:
    # Pinned, whatever the server's default: after waiting for a lock, an action's statements
    # must see what the holder committed (a REPEATABLE READ snapshot would predate it).
    return engine.execution_options(isolation_level="READ COMMITTED")


def take_write_lock(connection: Connection, name: str) -> None:
    """Wait (up to the lock timeout) for the advisory lock ``name``; it is let go at commit or rollback."""
    connection.execute(_LOCK_STATEMENTS[name])


def raised_by_postgresql(error: sa_exc.DBAPIError) -> bool:
    return type(error.orig).__module__.split(".")[0] in ("psycopg", "psycopg2")


def user_error(error: sa_exc.DBAPIError) -> DatabaseError | None:
    """The Octant error for a PostgreSQL error a user can act on; None for the others (bugs)."""
    sqlstate = getattr(error.orig, "sqlstate", None) or ""
    message = " ".join(str(error.orig).split())  # server messages span several lines
    if sqlstate == _LOCK_NOT_AVAILABLE:
        return DatabaseLockedError(BUSY)
    if sqlstate in _CONCURRENT_CHANGE:
        return ConcurrentChangeError(CONCURRENT_CHANGE)
    if sqlstate == _INSUFFICIENT_PRIVILEGE:
        return DatabaseError(
            f"The PostgreSQL user in the database URL may not change this database ({_server_part(error, message)}); "
            "make that user the database's owner, or use the URL of one it owns."
        )
    if not isinstance(error, sa_exc.OperationalError):
        return None
    if sqlstate.startswith(_CONNECTION_LOST):
        return DatabaseUnreachableError(UNREACHABLE)
    if sqlstate:
        return None
    # A failed connection carries no SQLSTATE: the server's reason, if any, follows "FATAL:".
    reason = message.partition("FATAL:")[2].strip()
    if not reason or _RESTARTING.match(reason):
        return DatabaseUnreachableError(UNREACHABLE)
    missing = re.fullmatch(r'database "(.+)" does not exist', reason)
    if missing:
        return DatabaseError(
            f"The PostgreSQL database {missing.group(1)!r} does not exist; create it (createdb "
            f"{missing.group(1)}) or correct the database URL."
        )
    if re.match(r'role ".+" does not exist|password authentication failed|no pg_hba\.conf entry', reason):
        return DatabaseError(
            f"PostgreSQL refused the login ({reason}); check the user and password in the database URL "
            "with the database administrator."
        )
    return DatabaseError(f"The PostgreSQL server refused the connection ({reason}); try again later.")


def _server_part(error: sa_exc.DBAPIError, message: str) -> str:
    """The server's own words, without the statement it quotes."""
    return getattr(getattr(error.orig, "diag", None), "message_primary", None) or message


def not_an_octant_database() -> DatabaseError:
    return DatabaseError(
        "The PostgreSQL database holds another program's tables, not an Octant project; give Octant "
        "an empty database of its own, or the URL of an Octant one."
    )
