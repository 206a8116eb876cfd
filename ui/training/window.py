"""The training panel as its own window."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QVBoxLayout, QWidget

from storage.project import ProjectHandle
from ui.training.panel import TrainingPanel


class TrainingWindow(QWidget):
    """The panel as its own top-level window; closing it cancels a running training."""

    def __init__(self, project: ProjectHandle, parent: QWidget | None = None, reader_id: int | None = None):
        super().__init__(parent, Qt.WindowType.Window)
        self.setWindowTitle(f"Training — {project.settings().name}")
        self.panel = TrainingPanel(project, self, reader_id=reader_id)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.panel)
        self.resize(1280, 860)

    def closeEvent(self, event) -> None:
        self.panel.shutdown()
        super().closeEvent(event)


def open_training_window(project: ProjectHandle, parent: QWidget | None = None, reader_id: int | None = None) -> QWidget:
    """For the signed-in reviewer or admin ``reader_id`` (models' label snapshots are theirs to see)."""
    window = TrainingWindow(project, parent, reader_id)
    window.show()
    window.activateWindow()   # the keys go to it, also where no window manager moves the focus
    return window
