"""Driving the workstation the way a reader does: keys to the window, clicks on the photo."""
from __future__ import annotations

from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QApplication

from storage.reading import ReaderSession
from tests.ui.conftest import DISC, FOVEA
from ui.main_window import MainWindow
from ui.workstation import build_window


def open_window(qtbot, project, reader_id: int,
                size: tuple[int, int] | None = (1200, 800)) -> MainWindow:
    """The signed-in window, shown, active and with its first photo on screen."""
    window = build_window(project, reader_id)
    qtbot.addWidget(window)
    if size is not None:
        window.resize(*size)
    with qtbot.waitSignal(window.imageShown, timeout=5000):
        window.show()
        QApplication.processEvents()
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=3000)
    return window


def press(qtbot, window: MainWindow, *keys: str) -> None:
    """Keys as a reader types them: 'h', '3', 'Space', 'Ctrl+Z', ..."""
    for key in keys:
        modifiers = Qt.KeyboardModifier.NoModifier
        parts = key.split("+")
        for part in parts[:-1]:
            modifiers |= {"Ctrl": Qt.KeyboardModifier.ControlModifier,
                          "Shift": Qt.KeyboardModifier.ShiftModifier}[part]
        name = parts[-1]
        code = getattr(Qt.Key, f"Key_{name.upper() if len(name) == 1 else name}")
        qtbot.keyClick(window.canvas, code, modifiers)


def click_photo(qtbot, window: MainWindow, x: float, y: float) -> None:
    """A left click on the photo at original pixel (x, y)."""
    canvas = window.canvas
    point = canvas.mapFromScene(QPointF(x, y))
    qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=point)


def next_image(qtbot, window: MainWindow, key: str = "Space") -> None:
    with qtbot.waitSignal(window.imageShown, timeout=5000):
        press(qtbot, window, key)


def landmarks_placed(project, reader_id: int) -> None:
    """The reader's own disc and fovea on every image of their queue, as if placed before: regions
    are refused until an image has both."""
    session = ReaderSession(project.database, reader_id)
    for record in session.queue():
        session.set_landmarks(record.id, DISC, FOVEA)
