"""The reviewers' screen rendered offscreen to a PNG (``python main.py screenshot`` uses it)."""
from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtWidgets import QApplication

from ui.review.queues import DISAGREEMENTS


def _wait(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        QApplication.processEvents()
        time.sleep(0.01)
    QApplication.processEvents()
    return condition()


def render_review_screenshot(project, reader_id: int, out_png: str | Path, size: tuple[int, int] = (1600, 1000),
                             timeout_s: float = 60.0) -> Path:
    """Grab the review window on its first disagreement (else the first image), photo and model shown."""
    if QApplication.instance() is None:  # a running application (the workstation, a test) keeps its set-up
        from ui.app import make_app

        make_app()
    from ui.review.window import ReviewWindow

    window = ReviewWindow(project, reader_id)
    window.resize(*size)
    window.show()
    try:
        _wait(lambda: window.data is not None, timeout_s)
        queues = window.queues
        if window.data is not None and window.data.disagreements():
            queues.queue.setCurrentIndex(queues.queue.findData(DISAGREEMENTS))
        _wait(lambda: window.current is not None and window.current[0] in window.photos, timeout_s)
        _wait(lambda: window.agreement.shown is not None, timeout_s)
        if window.current is not None and window.current[1] in window.models:
            model = window.models[window.current[1]]
            _wait(lambda: window.runner.cached(model.id, window.current[0]) is not None, timeout_s)
        out_png = Path(out_png)
        out_png.parent.mkdir(parents=True, exist_ok=True)
        window.grab().save(str(out_png))
    finally:
        window.close()
        window.deleteLater()
        QApplication.processEvents()
    return out_png
