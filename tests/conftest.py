"""Shared test set-up: Qt renders offscreen; a fresh project folder per test."""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402


@pytest.fixture
def tmp_project(tmp_path):
    """A new, empty project (default findings and diagnoses) in a temporary folder."""
    from storage.project import create_project

    project = create_project(tmp_path / "project", name="Test clinic")
    yield project
    project.close()
