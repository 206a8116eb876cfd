"""The reviewers' screen rendered offscreen to a PNG (``python main.py screenshot`` uses it)."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QApplication

from ui.app import make_app
from ui.review.queues import DISAGREEMENTS
from ui.review.window import ReviewWindow
from ui.screenshots.events import wait_until
from ui.screenshots.staging import stage_readers_answers


def render_review_screenshot(project, reader_id: int, out_png: str | Path, size: tuple[int, int] = (1600, 1000),
                             timeout_s: float = 60.0) -> Path:
    """Grab the review window on its first disagreement (else the first image), photo and model shown."""
    if QApplication.instance() is None:  # a running application (the workstation, a test) keeps its set-up
        make_app()
    window = ReviewWindow(project, reader_id)
    window.resize(*size)
    window.show()
    try:
        wait_until(lambda: window.data is not None, timeout_s)
        queues = window.queues
        if window.data is not None and window.data.disagreements():
            queues.queue.setCurrentIndex(queues.queue.findData(DISAGREEMENTS))
        wait_until(lambda: window.current is not None and window.current[0] in window.photos, timeout_s)
        wait_until(lambda: window.agreement.shown is not None, timeout_s)
        if window.current is not None and window.current[1] in window.models:
            model = window.models[window.current[1]]
            wait_until(lambda: window.runner.cached(model.id, window.current[0]) is not None, timeout_s)
        out_png = Path(out_png)
        out_png.parent.mkdir(parents=True, exist_ok=True)
        window.grab().save(str(out_png))
    finally:
        window.close()
        window.deleteLater()
        QApplication.processEvents()
    return out_png


def review_state_screenshot(project, out_png: str | Path, stage: bool = False,
                            size: tuple[int, int] = (1600, 1000)) -> Path | None:
    """``screenshot``'s 7-review.png: when the project has a reviewer or admin and something to
    compare (an image with two finished reads; ``stage`` first answers a few photos on the copy)."""
    from storage.readers import REVIEW_ROLES, list_readers
    from storage.review import iter_all_reads

    reviewer = next((r for r in list_readers(project.database) if r.role in REVIEW_ROLES), None)
    if reviewer is None:
        return None
    if stage:
        stage_readers_answers(project.database)
    done: dict[int, int] = {}
    for image_id, _reader, state in iter_all_reads(project.database):
        done[image_id] = done.get(image_id, 0) + state.done
    if max(done.values(), default=0) < 2:
        return None
    return render_review_screenshot(project, reviewer.id, out_png, size)
