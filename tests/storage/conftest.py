"""Projects with readers, images and assignments, on SQLite and on PostgreSQL.

Every test that uses ``tmp_project`` (or ``clinic``, ``database_url``, ``new_database_url``) runs
once per backend: ``[sqlite]`` with the project's own file, ``[postgresql]`` with a fresh database
on the session's PostgreSQL server (``postgres_server.py``; skipped, with the reason, when there is
none). Tests about SQLite itself carry ``@pytest.mark.sqlite_only``.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from storage.assignment import assign_readers
from storage.images import NewImage, add_images
from storage.project import ProjectHandle, create_project
from storage.readers import ReaderInfo, Role, add_reader
from tests.conftest import make_admin
from tests.storage.postgres_server import PostgresServer, Unavailable, start_server

REVIEWER_PIN = "246810"

BACKENDS = ("sqlite", "postgresql")


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "sqlite_only: a test of SQLite itself, not run on PostgreSQL")
    config.addinivalue_line("markers", "postgresql_only: a test of PostgreSQL itself, not run on SQLite")


def pytest_generate_tests(metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        backends = BACKENDS
        if metafunc.definition.get_closest_marker("sqlite_only"):
            backends = ("sqlite",)
        elif metafunc.definition.get_closest_marker("postgresql_only"):
            backends = ("postgresql",)
        metafunc.parametrize("backend", backends, indirect=True)


@pytest.fixture
def backend(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One server for the whole session; a skip (the same reason for every test) when there is
    none. A server that is there but fails to start is an error, not a skip."""
    try:
        server = start_server()
    except Unavailable as reason:
        pytest.skip(f"PostgreSQL tests skipped: {reason}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def new_database_url(backend, request) -> Iterator[Callable[[], str | None]]:
    """Makes empty databases for this test: None (a project folder's own SQLite file) or a
    PostgreSQL URL; the PostgreSQL ones are dropped when the test ends."""
    if backend == "sqlite":
        yield lambda: None
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    made: list[str] = []

    def make() -> str:
        made.append(server.create_database())
        return made[-1]

    yield make
    for url in made:
        server.drop_database(url)


@pytest.fixture
def database_url(new_database_url) -> str | None:
    """The database of this test's project: None for SQLite (the folder's file), else a URL."""
    return new_database_url()


@pytest.fixture
def tmp_project(tmp_path, database_url) -> Iterator[ProjectHandle]:
    """A new, empty project (default findings and diagnoses) on this test's backend."""
    project = create_project(tmp_path / "project", name="Test clinic", database_url=database_url)
    yield project
    project.close()


def fake_sha(i: int) -> str:
    return f"{i:064x}"


def add_fake_images(project: ProjectHandle, train: int, test: int = 0) -> list[int]:
    images = [
        NewImage(project.root / f"img{i:04d}.jpg", fake_sha(i + 1), 64, 48,
                 "left" if i % 2 else "right", "train" if i < train else "test")
        for i in range(train + test)
    ]
    return [i for i in add_images(project.database, images) if i is not None]


@dataclass
class Clinic:
    project: ProjectHandle
    ophthalmologists: list[ReaderInfo]
    specialists: list[ReaderInfo]
    reviewer: ReaderInfo
    admin: ReaderInfo
    images: list[int]


@pytest.fixture
def clinic(tmp_project) -> Clinic:
    """An admin (made first, as ``init`` does), 3 ophthalmologists, 3 specialists and a reviewer
    (PIN ``REVIEWER_PIN``); 6 train and 3 test images, assigned."""
    db = tmp_project.database
    admin = make_admin(db)

    def add(name: str, role: Role, pin: str | None = None) -> ReaderInfo:
        return add_reader(db, name, role, pin, acting_reader_id=admin.id)

    ophthalmologists = [add(f"Dr O{i}", Role.OPHTHALMOLOGIST) for i in range(3)]
    specialists = [add("Dr R0", Role.RETINA_SPECIALIST), add("Dr R1", Role.RETINA_SPECIALIST),
                   add("Dr G0", Role.GLAUCOMA_SPECIALIST)]
    reviewer = add("Reviewer", Role.REVIEWER, REVIEWER_PIN)
    images = add_fake_images(tmp_project, train=6, test=3)
    assign_readers(db)
    return Clinic(tmp_project, ophthalmologists, specialists, reviewer, admin, images)
