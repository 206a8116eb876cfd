"""PySide6 6.12 on CPython 3.11 drops a reference to None on every void Qt call; ui/ guards it.

Both halves run in a fresh interpreter: without ``import ui`` enough void calls to use up None's
references abort the process ("none_dealloc"); with it, the same calls, and as many again, end
normally. The first half shows the calls would kill an unguarded workstation, so the second can fail.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CALLS = """
import sys
{guard}
from PySide6.QtCore import QPointF
from PySide6.QtWidgets import QApplication, QGraphicsSimpleTextItem

app = QApplication([])
item = QGraphicsSimpleTextItem("5")
before = sys.getrefcount(None)
calls = {calls}
for i in range(calls):
    item.setPos(QPointF(i, i))
print(before, before - sys.getrefcount(None), flush=True)
"""


def run(calls: str, guard: bool) -> subprocess.CompletedProcess:
    script = CALLS.format(guard="import ui" if guard else "", calls=calls)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_void_qt_calls_beyond_nones_references_do_not_abort_the_workstation():
    # Twice None's references at start: an unguarded interpreter dies on the way.
    unguarded = run("2 * sys.getrefcount(None)", guard=False)
    if unguarded.returncode == 0:
        before, dropped = map(int, unguarded.stdout.split())
        assert dropped == 0, unguarded.stdout   # no leak here (an immortal None, a fixed PySide6)
        pytest.skip("this interpreter and PySide6 do not leak None; nothing to guard")
    assert "none_dealloc" in unguarded.stderr, unguarded.stderr[-2000:]

    natural = run("0", guard=False)
    references = int(natural.stdout.split()[0])
    guarded = run(str(4 * references), guard=True)
    assert guarded.returncode == 0, guarded.stderr[-2000:]
    _, dropped = map(int, guarded.stdout.split())
    # The leak is still there (more references dropped than None had: unguarded, it would have reached
    # zero); it only can no longer. Not exact: other code may take or drop a reference to None meanwhile.
    assert dropped > references, (dropped, references)
