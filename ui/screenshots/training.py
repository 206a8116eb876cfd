"""The training panel rendered offscreen to a PNG (``screenshot``'s 8-training.png and the tests),
optionally after a tiny run on the CPU."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QApplication

from storage.project import ProjectHandle
from ui.app import make_app
from ui.screenshots.events import wait_until
from ui.training.panel import TrainingPanel
from ui.training.setup import GUIDED
from ui.training.window import TrainingWindow


def tiny_settings(panel: TrainingPanel, finding: str, epochs: int = 2) -> None:
    """Settings small enough for a test or a screenshot on a laptop CPU (not for real use)."""
    setup = panel.setup
    setup.network.setCurrentIndex(setup.network.findData(GUIDED))
    setup.finding.setCurrentIndex(setup.finding.findData(finding))
    setup.network_form.set_values(input_size=32)   # the starter's width: the run fine-tunes it
    setup.engine_form.set_values(epochs=epochs, batch_size=4, early_stopping_patience=0)
    setup.device.setCurrentText("cpu")


def render_training_panel_screenshot(project: ProjectHandle, out_png: str | Path, size: tuple[int, int] = (1280, 860),
                                     train_finding: str | None = None, timeout_s: float = 120.0,
                                     reader_id: int | None = None) -> Path:
    """Grab the panel offscreen to ``out_png`` (as reviewer or admin ``reader_id`` when given); with
    ``train_finding``, after a tiny run of it."""
    if QApplication.instance() is None:  # a running application (the workstation, a test) keeps its set-up
        make_app()
    window = TrainingWindow(project, reader_id=reader_id)
    window.resize(*size)
    window.show()
    panel = window.panel
    wait_until(lambda: not panel.setup.counts_pending, timeout_s)  # the counts arrive off-thread
    if train_finding is not None:
        tiny_settings(panel, train_finding)
        panel.start(resume=False)
        wait_until(lambda: panel.outcome is not None or panel.last_error is not None, timeout_s)
        panel.tabs.setCurrentWidget(panel.gallery)
    QApplication.processEvents()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(out_png))
    window.close()
    window.deleteLater()
    QApplication.processEvents()
    return out_png
