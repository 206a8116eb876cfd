"""The training panel as its own window, and its offscreen screenshot."""
from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QVBoxLayout, QWidget

from ui.training.panel import TrainingPanel
from ui.training.setup import GUIDED


class TrainingWindow(QWidget):
    """The panel as its own top-level window; closing it cancels a running training."""

    def __init__(self, project, parent: QWidget | None = None):
        super().__init__(parent, Qt.WindowType.Window)
        self.setWindowTitle(f"Training — {project.settings().name}")
        self.panel = TrainingPanel(project, self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.panel)
        self.resize(1280, 860)

    def closeEvent(self, event) -> None:
        self.panel.shutdown()
        super().closeEvent(event)


def open_training_window(project, parent: QWidget | None = None) -> QWidget:
    window = TrainingWindow(project, parent)
    window.show()
    return window


def tiny_settings(panel: TrainingPanel, finding: str, epochs: int = 2) -> None:
    """Settings small enough for a test or a screenshot on a laptop CPU (not for real use)."""
    setup = panel.setup
    setup.network.setCurrentIndex(setup.network.findData(GUIDED))
    setup.finding.setCurrentIndex(setup.finding.findData(finding))
    setup.network_form.set_values(input_size=32)   # the starter's width: the run fine-tunes it
    setup.engine_form.set_values(epochs=epochs, batch_size=4, early_stopping_patience=0)
    setup.device.setCurrentText("cpu")


def render_training_panel_screenshot(project, out_png: str | Path, size: tuple[int, int] = (1280, 860),
                                     train_finding: str | None = None, timeout_s: float = 120.0) -> Path:
    """Grab the panel offscreen to ``out_png``; with ``train_finding``, after a tiny run of it."""
    if QApplication.instance() is None:  # a running application (the workstation, a test) keeps its set-up
        from ui.app import make_app

        make_app()
    window = TrainingWindow(project)
    window.resize(*size)
    window.show()
    panel = window.panel
    deadline = time.monotonic() + timeout_s
    while panel.setup.counts_pending and time.monotonic() < deadline:  # the counts arrive off-thread
        QApplication.processEvents()
        time.sleep(0.01)
    if train_finding is not None:
        tiny_settings(panel, train_finding)
        panel.start(resume=False)
        deadline = time.monotonic() + timeout_s
        while panel.outcome is None and panel.last_error is None and time.monotonic() < deadline:
            QApplication.processEvents()
            time.sleep(0.01)
        panel.tabs.setCurrentWidget(panel.gallery)
    QApplication.processEvents()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(out_png))
    window.close()
    window.deleteLater()
    QApplication.processEvents()
    return out_png
