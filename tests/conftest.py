"""Shared test set-up: Qt renders offscreen; a fresh project folder per test."""
from __future__ import annotations

import os
import tempfile

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# The precision timing and exported networks are cached here, not in the user's cache folder.
os.environ.setdefault("OCTANT_CACHE_DIR", tempfile.mkdtemp(prefix="octant-test-cache-"))
# Tiny test networks run in PyTorch (no ONNX export per test); tests/models/engine/test_fast_cpu.py covers ONNX Runtime.
os.environ.setdefault("OCTANT_BACKEND", "torch")

import sys  # noqa: E402

import pytest  # noqa: E402

from storage.credentials import ScryptCost  # noqa: E402

QUICK_COST = ScryptCost(n=2**4, r=8, p=1)
ADMIN_NAME = "Admin"
ADMIN_PASSPHRASE = "correct horse battery"   # every test project's admin (make_admin)


def make_admin(db):
    """The project's first admin, as ``init --admin`` makes it."""
    from storage.readers import create_first_admin

    return create_first_admin(db, ADMIN_NAME, ADMIN_PASSPHRASE)


def add_reader_as_admin(db, name: str, role="ophthalmologist", pin: str | None = None):
    """Add a reader as the project's admin does (``make_admin`` first when there is none): for
    tests about something else than who may add readers (tests/storage/test_readers.py)."""
    from storage.readers import Role, add_reader, list_readers

    admins = [r for r in list_readers(db) if r.role is Role.ADMIN]
    admin = admins[0] if admins else make_admin(db)
    return add_reader(db, name, role, pin, acting_reader_id=admin.id)


@pytest.fixture(autouse=True)
def no_thread_left_running():
    """A test that leaves a background worker running fails; its workers are then
    cancelled and joined, so the next test (and the interpreter's exit) starts clean."""
    yield
    background = sys.modules.get("ui.background")
    if background is None:
        return
    for worker in background.active_workers():
        worker.wait(500)   # a job whose last signal has arrived is a few instructions from its end
    left = background.running_background_work()
    background.stop_all_background_work()
    assert not left, f"the test left background threads running: {left}"


@pytest.fixture(autouse=True, scope="session")
def user_folders_in_temp(tmp_path_factory):
    """The user's data and cache folders (demo project, log, caches of public sets) in a temporary
    folder for the whole run: tests never write into the home directory."""
    patch = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("user")
    patch.setenv("OCTANT_DATA_DIR", str(root / "data"))
    patch.setenv("OCTANT_CACHE_DIR", str(root / "cache"))
    yield root
    patch.undo()


@pytest.fixture(autouse=True)
def quick_credentials(monkeypatch):
    """PINs and passphrases are hashed at a tiny scrypt cost in tests (the real cost takes ~0.25 s
    a check, on purpose; tests/storage/test_credentials.py checks that cost)."""
    from storage import credentials

    monkeypatch.setattr(credentials, "CURRENT_COST", QUICK_COST)


@pytest.fixture
def tmp_project(tmp_path):
    """A new, empty project (default findings and diagnoses) in a temporary folder."""
    from storage.project import create_project

    project = create_project(tmp_path / "project", name="Test clinic")
    yield project
    project.close()
