"""The Qt application: HiDPI, style, the exception guard, and opening the workstation."""
from __future__ import annotations

import logging
import os
import sys
import traceback
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from storage.errors import OctantError
from storage.locations import user_data_folder

log = logging.getLogger("octant.ui")

STYLE = """
QFrame#findingRow { border-radius: 5px; }
QFrame#findingRow:hover { background: rgba(127, 127, 127, 40); }
QFrame#findingRow[current="true"] { background: palette(highlight); }
QFrame#findingRow[current="true"] QLabel { color: palette(highlighted-text); }
QLabel#keycap { border: 1px solid rgba(127, 127, 127, 150); border-radius: 4px;
                font-family: monospace; font-weight: 600; padding: 0px 2px; }
QLabel#regions { font-family: monospace; font-weight: 600; }
QLabel#suggested { font-family: monospace; color: #8a8f98; }
QLabel#savedLabel { padding: 0 8px; }
"""


def data_dir() -> Path:
    """Where the workstation keeps its log: the user's data folder (``storage.locations``)."""
    return user_data_folder()


def use_offscreen_without_display() -> None:
    """Headless machines (CI, screenshots): render offscreen instead of failing to connect."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                 or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def make_app() -> QApplication:
    app = QApplication.instance()
    if app is None:
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
            Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        app = QApplication([sys.argv[0]])
    app.setApplicationName("Octant")
    app.setOrganizationName("Octant")
    app.setStyle("Fusion")
    app.setStyleSheet(STYLE)
    install_exception_guard()
    return app


def install_exception_guard() -> None:
    """Log any uncaught error and show it; the window stays open and nothing saved is lost.

    Every action is saved in its own transaction before the window changes, so an error in
    drawing or in a slot cannot lose work; the reader is told and can go on.
    """
    log_file = data_dir() / "octant.log"

    def guard(kind, error, tb) -> None:
        text = "".join(traceback.format_exception(kind, error, tb))
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            with open(log_file, "a", encoding="utf-8") as handle:
                handle.write(text + "\n")
        except OSError:
            pass
        log.error("%s", text)
        if isinstance(error, KeyboardInterrupt):
            QApplication.quit()
            return
        message = (str(error) if isinstance(error, OctantError) else
                   f"Something went wrong ({kind.__name__}: {error}). Everything saved so far "
                   f"is kept; details are in {log_file}.")
        show_message(message)

    sys.excepthook = guard


def show_message(message: str, parent: QWidget | None = None) -> None:
    """A non-blocking warning box (never exec(): a modal loop would stall tests and workers)."""
    parent = parent or QApplication.activeWindow()
    box = QMessageBox(QMessageBox.Icon.Warning, "Octant", message, QMessageBox.StandardButton.Ok,
                      parent)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
