"""The training panel as its own window."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QMessageBox, QVBoxLayout, QWidget

from storage.project import ProjectHandle
from ui.keyboard_focus import give_keys_back
from ui.training.panel import TrainingPanel

CLOSE_KEYS = ("Ctrl+W", "Esc")   # as the review screen's Ctrl+W; Esc as in a dialog
STOP_QUESTION = "A training is running; closing this window cancels it. Close it?"


class TrainingWindow(QWidget):
    """The panel as its own top-level window; closing it cancels a running training."""

    closed = Signal()          # the keys go back to the workstation (no window manager does it)
    quitRequested = Signal()   # Ctrl+Q: the workstation that opened it quits (and closes it)

    def __init__(self, project: ProjectHandle, parent: QWidget | None = None, reader_id: int | None = None):
        super().__init__(parent, Qt.WindowType.Window)
        self.setWindowTitle(f"Training — {project.settings().name}")
        self.panel = TrainingPanel(project, self, reader_id=reader_id)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.panel)
        self.resize(1280, 860)
        # Without a window manager there was no way out of this window from the keyboard.
        for keys, act in ((CLOSE_KEYS, self.close_from_keyboard), (("Ctrl+Q",), self.quitRequested.emit)):
            for key in keys:
                QShortcut(QKeySequence(key), self).activated.connect(act)

    def close_from_keyboard(self) -> None:
        """Ctrl+W or Esc; a running training is cancelled by closing, so that is asked first."""
        if self.panel.running():
            answer = QMessageBox.question(self, "Training", STOP_QUESTION)
            give_keys_back(self)
            if answer != QMessageBox.StandardButton.Yes:
                return
        self.close()

    def closeEvent(self, event) -> None:
        self.panel.shutdown()
        super().closeEvent(event)
        self.closed.emit()


def open_training_window(project: ProjectHandle, parent: QWidget | None = None,
                         reader_id: int | None = None) -> TrainingWindow:
    """For the signed-in reviewer or admin ``reader_id`` (models' label snapshots are theirs to see)."""
    window = TrainingWindow(project, parent, reader_id)
    window.show()
    window.activateWindow()   # the keys go to it, also where no window manager moves the focus
    return window
