"""Quitting the real workstation while it pre-segments the queue ahead (the starter networks, on
the demo's photos): the process, a separate one as a user would start it, closes its window and
joins its background work within a second or so of SIGTERM (handled as File → Quit) and exits 0,
with no thread left running (Qt would abort: "QThread: Destroyed while thread ... is running").

The close is timed to the log line the workstation writes once its work is joined; the process
ends later, after Python has torn down torch's modules (seconds on a busy 2-core machine).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]


def workstation_environment(scratch: Path, platform: str = "offscreen") -> dict:
    """The user's settings, log and demo project all under ``scratch``."""
    return {**os.environ, "QT_QPA_PLATFORM": platform, "XDG_CONFIG_HOME": str(scratch / "config"),
            "OCTANT_DATA_DIR": str(scratch / "data"), "OCTANT_DEMO_DIR": str(scratch / "demo"),
            "OCTANT_DEVICE": "cpu"}


def wait_for(condition, timeout_s: float, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"the workstation ended early:\n{process.communicate()[1]}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"gave up waiting:\n{process.communicate()[1]}")
        time.sleep(0.02)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM is not delivered to a process on Windows")
def test_quitting_mid_photo_closes_the_workstation_at_once_and_exits_0(tmp_path):
    predictions = tmp_path / "demo" / "predictions"
    process = subprocess.Popen([sys.executable, "main.py", "gui", "--demo"], cwd=REPOSITORY,
                               env=workstation_environment(tmp_path), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    # Pre-segment-ahead is on by default: the first photo's masks are being written while the
    # second photo is in the networks.
    wait_for(lambda: predictions.is_dir() and any(predictions.iterdir()), 300, process)
    log = tmp_path / "data" / "octant.log"
    process.send_signal(signal.SIGTERM)
    quit_at = time.monotonic()
    wait_for(lambda: log.is_file() and "Quit: background work stopped" in log.read_text(), 30, process)
    seconds = time.monotonic() - quit_at
    _, errors = process.communicate(timeout=60)
    assert process.returncode == 0, errors
    assert "QThread" not in errors
    assert seconds <= 1.5, f"the workstation took {seconds:.1f} s to close and stop its work"
