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


# Staged answers for a project nobody has finished reading yet (the demo): per photo, each
# assigned reader's regions for the first finding (None: normal). Photo 1 agreed, photo 2 the
# readers disagree on the regions, photo 3 a single vote (uncertain consensus).
STAGED_REGIONS = (({1, 5}, {1, 5}, {1, 5}), ({1, 5}, {1}, None), ({5}, None, None))


def stage_readers_answers(db) -> None:
    """Answer the first photos as their assigned readers would, on a copy of the database only."""
    from storage.reading import ReaderSession
    from storage.readers import REVIEW_ROLES, list_readers
    from storage.project import project_settings
    from storage.review import iter_all_reads
    from ui.screenshots import staged_landmarks

    finding = project_settings(db).findings[0].code
    slots: dict[int, int] = {}
    for image_id, _reader, _state in iter_all_reads(db):
        slots.setdefault(image_id, 0)
    readers = [r for r in list_readers(db) if r.role not in REVIEW_ROLES]
    for reader in readers:
        session = ReaderSession(db, reader.id)
        for record in session.queue():
            n = sorted(slots).index(record.id) if record.id in slots else len(STAGED_REGIONS)
            if n >= len(STAGED_REGIONS) or session.read(record.id).done:
                continue
            slot = slots[record.id]
            slots[record.id] += 1
            shown = session.model_landmarks(record.id)
            disc, fovea = (shown.disc, shown.fovea) if shown else staged_landmarks(record.path)
            session.set_landmarks(record.id, disc=disc, fovea=fovea, source="model" if shown else "manual")
            regions = STAGED_REGIONS[n][slot % 3]
            if regions is None:
                session.mark_normal(record.id)
            else:
                session.set_regions(record.id, finding, regions)
            session.mark_done(record.id)


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
