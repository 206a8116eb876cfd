"""Shared test set-up: Qt renders offscreen; a fresh project folder per test."""
from __future__ import annotations

import os
import tempfile

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# The precision timing and exported networks are cached here, not in the user's cache folder.
os.environ.setdefault("OCTANT_CACHE_DIR", tempfile.mkdtemp(prefix="octant-test-cache-"))
# Tiny test networks run in PyTorch (no ONNX export per test); tests/models/test_fast_cpu.py covers ONNX Runtime.
os.environ.setdefault("OCTANT_BACKEND", "torch")

import pytest  # noqa: E402


@pytest.fixture
def tmp_project(tmp_path):
    """A new, empty project (default findings and diagnoses) in a temporary folder."""
    from storage.project import create_project

    project = create_project(tmp_path / "project", name="Test clinic")
    yield project
    project.close()
