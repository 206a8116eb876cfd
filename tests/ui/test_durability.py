"""A click is in the database the moment the workstation reports it, even if killed right after."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from storage.project import open_project
from storage.reading import ReaderSession
from tests.ui.conftest import DISC, FOVEA

REPO = Path(__file__).resolve().parents[2]


def test_click_survives_sigkill_right_after(reading_project):
    project, ana = reading_project.project, reading_project.readers["Ana"]
    session = ReaderSession(project.database, ana.id)
    image = session.queue()[0]
    session.set_landmarks(image.id, DISC, FOVEA)
    macula = (FOVEA[0] + 25, FOVEA[1] - 10)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(REPO))
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.ui.click_then_wait", str(reading_project.folder),
         str(ana.id), str(macula[0]), str(macula[1])],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
    assert line.strip() == "clicked", child.stderr.read()
    assert child.returncode == -signal.SIGKILL
    with open_project(reading_project.folder) as reopened:
        state = ReaderSession(reopened.database, ana.id).read(image.id)
    assert state.regions == {"haemorrhage": frozenset({1})}
