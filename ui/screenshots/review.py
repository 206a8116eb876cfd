"""The reviewers' screen rendered offscreen to a PNG (``python main.py screenshot`` uses it)."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QApplication

from models.segmentation.stored_names import SCREENING_RED_FREE_NOTE
from storage.project import ProjectHandle
from storage.readers import REVIEW_ROLES, ReaderInfo, list_readers
from ui.app import make_app
from ui.review.queues import DISAGREEMENTS
from ui.review.window import ReviewWindow
from ui.screenshots.events import wait_until
from ui.screenshots.staging import stage_adjudication, stage_readers_answers

REVIEW_VIEWS = ("", "-model", "-side-by-side", "-dashboard", "-agreement", "-agreement-regions")   # file name suffixes, in order


def render_review_screenshots(project: ProjectHandle, reader_id: int, out_png: str | Path, size: tuple[int, int] = (1600, 1000),
                              timeout_s: float = 60.0) -> list[Path]:
    """The review window on its first disagreement (else the first image): ``out_png`` with reader 1
    enlarged and the adjudication draft, then beside it the model enlarged (``-model``), the five side by
    side (``-side-by-side``), the dashboard (``-dashboard``) and the Agreement tab at finding level
    (``-agreement``) and at region level (``-agreement-regions``)."""
    if QApplication.instance() is None:  # a running application (the workstation, a test) keeps its set-up
        make_app()
    window = ReviewWindow(project, reader_id)
    window.resize(*size)
    window.show()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    paths = [out_png.with_name(out_png.stem + suffix + out_png.suffix) for suffix in REVIEW_VIEWS]
    try:
        wait_until(lambda: window.data is not None, timeout_s)
        queues = window.queues
        if window.data is not None and window.data.disagreements():
            queues.queue.setCurrentIndex(queues.queue.findData(DISAGREEMENTS))
        wait_until(lambda: window.current is not None and window.enlarged.canvas.has_photo(), timeout_s)
        window.show_source("reader1")
        window.grab().save(str(paths[0]))
        model = window.models.get(window.current[1]) if window.current is not None else None
        window.show_source("model")
        if model is not None:   # its map, or for a red-free photo the sentence saying why there is none
            wait_until(lambda: window.enlarged.canvas.has_overlay()
                       or SCREENING_RED_FREE_NOTE in window.enlarged.details.text(), timeout_s)
        window.grab().save(str(paths[1]))
        window.tabs.setCurrentWidget(window.side_by_side)
        wait_until(lambda: window.current is not None and window.current[0] in window.photos, timeout_s)
        wait_until(lambda: window.agreement.shown is not None, timeout_s)
        window.grab().save(str(paths[2]))
        window.tabs.setCurrentWidget(window.dashboard)
        wait_until(lambda: window.dashboard.shown is not None, timeout_s)
        window.grab().save(str(paths[3]))
        window.tabs.setCurrentWidget(window.agreement)
        for level, path in enumerate(paths[4:6]):
            window.agreement.levels.setCurrentIndex(level)
            QApplication.processEvents()
            window.grab().save(str(path))
    finally:
        window.close()
        window.deleteLater()
        QApplication.processEvents()
    return paths


def render_review_screenshot(project: ProjectHandle, reader_id: int, out_png: str | Path, size: tuple[int, int] = (1600, 1000),
                             timeout_s: float = 60.0) -> Path:
    """``render_review_screenshots``'s first picture (and its siblings beside it)."""
    return render_review_screenshots(project, reader_id, out_png, size, timeout_s)[0]


def review_state_screenshot(project: ProjectHandle, out_png: str | Path, stage: bool = False,
                            size: tuple[int, int] = (1600, 1000), viewer: ReaderInfo | None = None) -> list[Path]:
    """``screenshot``'s 7-review*.png (``render_review_screenshots``): as ``viewer`` when given (none unless
    they are a reviewer or admin), else as the project's first reviewer or admin, when there is something to
    compare (an image with two finished reads; ``stage`` first answers a few photos on the copy)."""
    from storage.review import iter_all_reads

    reviewer = viewer or next((r for r in list_readers(project.database) if r.role in REVIEW_ROLES), None)
    if reviewer is None or reviewer.role not in REVIEW_ROLES:
        return []
    if stage:
        stage_readers_answers(project.database)
        stage_adjudication(project.database, reviewer.id)
    done: dict[int, int] = {}
    for image_id, _reader, state in iter_all_reads(project.database):
        done[image_id] = done.get(image_id, 0) + state.done
    if max(done.values(), default=0) < 2:
        return []
    return render_review_screenshots(project, reviewer.id, out_png, size)
