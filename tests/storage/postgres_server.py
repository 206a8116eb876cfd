"""A PostgreSQL server for the storage tests: an existing one, or a throwaway cluster.

``OCTANT_TEST_POSTGRES_URL`` (e.g. ``postgresql+psycopg://octant:secret@dbhost/postgres``) names an
existing server; its user must be allowed to create databases. Without it, a cluster is made with
``initdb`` in a temporary folder, listening only on a unix socket there, and removed at the end.
Either way every test gets a database of its own, dropped afterwards.
"""
from __future__ import annotations

import atexit
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from sqlalchemy.engine import URL, make_url

URL_VARIABLE = "OCTANT_TEST_POSTGRES_URL"
# Debian/Ubuntu keep the server binaries out of PATH; look there too.
SEARCH_DIRS = ("/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin",
               "/usr/lib/postgresql/14/bin", "/usr/lib/postgresql/13/bin")
# Speed over durability: the cluster is thrown away at the end of the session.
THROWAWAY_SETTINGS = {
    "listen_addresses": "''",  # no TCP at all: only the socket in the cluster's own folder
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "'32MB'",
    "max_connections": "60",
}


def connect(url: str | URL):
    """A psycopg connection (autocommit) to a database by its SQLAlchemy URL, for what the tests
    do behind Octant's back: create databases and roles, hold locks, end connections."""
    import psycopg

    # The same URL without SQLAlchemy's driver name is a libpq URI (query options included).
    libpq_uri = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    return psycopg.connect(libpq_uri, autocommit=True)


class Unavailable(Exception):
    """Why PostgreSQL tests cannot run here (the message is the skip reason)."""


def _psycopg_version() -> str:
    try:
        import psycopg
    except ImportError:
        raise Unavailable("psycopg is not installed; install the test extra: pip install -e '.[test]'") from None
    return psycopg.__version__


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for folder in SEARCH_DIRS:
        candidate = Path(folder) / name
        if candidate.is_file():
            return str(candidate)
    return None


class PostgresServer:
    """Creates and drops databases on one server for the tests, through its admin URL."""

    def __init__(self, admin_url: URL, description: str) -> None:
        self.admin_url = admin_url
        self.description = description
        self._names = (f"octant_test_{uuid.uuid4().hex[:8]}_{n}" for n in itertools.count())

    def create_database(self) -> str:
        """A new, empty database; returns its SQLAlchemy URL (psycopg driver)."""
        name = next(self._names)
        with connect(self.admin_url) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.admin_url.set(drivername="postgresql+psycopg", database=name).render_as_string(
            hide_password=False)

    def drop_database(self, url: str) -> None:
        with connect(self.admin_url) as connection:
            # FORCE (PostgreSQL 13+) ends connections a failed test may have left open.
            connection.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')

    def stop(self) -> None:
        """Nothing to stop for a server we did not start."""


class ThrowawayCluster(PostgresServer):
    """``initdb`` + ``pg_ctl start`` in a temporary folder; ``stop`` removes everything."""

    def __init__(self, initdb: str, pg_ctl: str) -> None:
        self._pg_ctl = pg_ctl
        self._run_as = self._server_account()
        self.folder = Path(tempfile.mkdtemp(prefix="octant-pg-"))  # short: socket paths max ~100 bytes
        self.data = self.folder / "data"
        self._started = False
        atexit.register(self.stop)  # also when the session ends without fixture teardown
        try:
            if self._run_as is not None:
                shutil.chown(self.folder, self._run_as, self._run_as)
            self._run(initdb, "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                      "--locale=C", "--no-sync", "--no-instructions")
            settings = {**THROWAWAY_SETTINGS, "unix_socket_directories": f"'{self.folder}'"}
            with open(self.data / "postgresql.conf", "a") as conf:
                conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
            self._run(pg_ctl, "-D", str(self.data), "-l", str(self.folder / "server.log"), "-w", "-t", "60",
                      "start")
            self._started = True
        except BaseException:
            self.stop()
            raise
        super().__init__(URL.create("postgresql+psycopg", username="postgres", database="postgres",
                                    query={"host": str(self.folder)}),
                         f"a throwaway cluster in {self.folder}")

    @staticmethod
    def _server_account() -> str | None:
        """PostgreSQL refuses to run as root: run it as the ``postgres`` account then."""
        if os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise Unavailable("running as root and there is no 'postgres' account to run a test server") from None
        if shutil.which("runuser") is None:
            raise Unavailable("running as root and runuser is missing to start a test server as 'postgres'")
        return "postgres"

    def _run(self, *command: str) -> None:
        if self._run_as is not None:
            command = ("runuser", "-u", self._run_as, "--", *command)
        done = subprocess.run(command, cwd=self.folder, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            log = self.folder / "server.log"
            detail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}{detail}")

    def stop(self) -> None:
        if self._started:
            self._started = False
            try:  # immediate: nothing in it is worth a clean shutdown
                self._run(self._pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop")
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(self.folder, ignore_errors=True)


def start_server() -> PostgresServer:
    """The server named by OCTANT_TEST_POSTGRES_URL, else a throwaway cluster; Unavailable says why not."""
    _psycopg_version()
    given = os.environ.get(URL_VARIABLE)
    if given:
        url = make_url(given)
        return PostgresServer(url, f"{url.render_as_string(hide_password=True)} ({URL_VARIABLE})")
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        raise Unavailable(
            f"no PostgreSQL server: set {URL_VARIABLE} or install the server binaries (initdb, pg_ctl)")
    return ThrowawayCluster(initdb, pg_ctl)
