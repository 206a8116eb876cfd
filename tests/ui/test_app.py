"""An unexpected error is logged and shown; the window stays open."""
from __future__ import annotations

import sys

from PySide6.QtWidgets import QMessageBox

from tests.ui.driving import open_window
from ui.app import data_dir, install_exception_guard


def test_uncaught_error_is_logged_and_shown_and_the_window_stays(qtbot, reading_project,
                                                                 monkeypatch):
    window = open_window(qtbot, reading_project.project, reading_project.readers["Ana"].id)
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # restored after the test
    install_exception_guard()
    try:
        raise RuntimeError("drawing failed")
    except RuntimeError:
        sys.excepthook(*sys.exc_info())
    boxes = [w for w in window.findChildren(QMessageBox) if w.isVisible()]
    assert boxes and "drawing failed" in boxes[0].text()
    assert "RuntimeError: drawing failed" in (data_dir() / "octant.log").read_text()
    assert window.isVisible()
