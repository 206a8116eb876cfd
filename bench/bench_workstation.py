"""The reading workstation's latency, offscreen, with real 4288 × 2848 IDRiD photos.

Targets (workstation issue), on a 2-core machine:
- next image to clickable ≤ 150 ms median without prefetch, ≤ 30 ms with it. Measured from the
  key's action (ReadingController.next_unfinished) to the photo on screen: the window's
  ``imageShown`` signal plus one synchronous repaint of the canvas.
- a landmark drag redraws the regions in ≤ 16 ms: moving a marker (which re-transforms the
  eight region paths) plus a synchronous repaint of the canvas viewport.
- a click to durable in the database ≤ 10 ms p99: ``FundusCanvas.click_at`` (the mouse-click
  path) until ReaderSession's transaction has committed (SQLite WAL, synchronous=NORMAL).

    python bench/bench_workstation.py [--photos 41] [--size 1600x1000]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtCore import QEvent, QPoint, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QMouseEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from annotate.services.image_files import find_image_files  # noqa: E402
from annotate.services.importer import import_images  # noqa: E402
from storage.assignment import assign_readers  # noqa: E402
from storage.locations import public_data_dir  # noqa: E402
from storage.project import create_project  # noqa: E402
from storage.readers import add_reader, create_first_admin  # noqa: E402
from ui.app import make_app  # noqa: E402
from ui.workstation import build_window  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "bench_workstation.json"
# IDRiD_01's disc and fovea, roughly (original pixels): only to draw the regions.
DISC, FOVEA = (3470.0, 1350.0), (2290.0, 1480.0)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict[str, float]:
    return dict(median=statistics.median(values), p95=percentile(values, 95),
                p99=percentile(values, 99), min=min(values), max=max(values), n=len(values))


def wait_until(condition, timeout_s: float = 10.0, what: str = "the workstation") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not get there in time")
        QApplication.processEvents()
        time.sleep(0.0005)


def build_project(folder: Path, count: int, data: Path):
    originals = data / "IDRiD-segmentation" / "images"
    photos = find_image_files([originals])[:count] if originals.is_dir() else []
    if len(photos) < count:
        raise SystemExit(f"need {count} photos in {originals}; pass --data DIR (the public data sets)")
    project = create_project(folder / "project", name="Workstation bench")
    import_images(project, photos, copy=True)  # copies into the temporary project folder
    admin = create_first_admin(project.database, "Admin", "bench admin passphrase").id
    for name in ("Reader A", "Reader B", "Reader C"):
        add_reader(project.database, name, role="ophthalmologist", acting_reader_id=admin)
    assign_readers(project.database, readers_per_image=3)
    return project


def time_next_image(window, steps: int, prefetch: bool) -> list[float]:
    """Space after looking at each image; with prefetch the next photo decodes meanwhile."""
    loader, controller, canvas = window.loader, window.controller, window.canvas
    loader.prefetch_enabled = prefetch
    if prefetch:
        window._prefetch_upcoming()
    shown: list[int] = []
    window.imageShown.connect(shown.append)
    timings = []
    for _ in range(steps):
        if not prefetch:
            loader.clear()
        else:  # the reader looks at the photo for a moment: the prefetch has finished
            QApplication.processEvents()
            loader.wait(5000)
            QApplication.processEvents()
        shown.clear()
        start = time.perf_counter()
        controller.next_unfinished()
        wait_until(lambda: bool(shown))
        canvas.viewport().repaint()
        timings.append((time.perf_counter() - start) * 1000)
    window.imageShown.disconnect(shown.append)
    return timings


def _mouse(viewport, kind: QEvent.Type, pos: QPoint, buttons: Qt.MouseButton) -> None:
    button = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseMove else Qt.MouseButton.LeftButton
    event = QMouseEvent(kind, QPointF(pos), QPointF(viewport.mapToGlobal(pos)), button, buttons,
                        Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(viewport, event)


def time_drag(window, steps: int) -> tuple[list[float], list[float]]:
    """Drag the fovea marker with mouse events: each move re-transforms the regions; then the
    canvas repaints synchronously (what the screen would show)."""
    canvas = window.canvas
    canvas.set_landmarks(DISC, FOVEA)
    viewport = canvas.viewport()
    viewport.repaint()
    start_at = canvas.mapFromScene(QPointF(*FOVEA))
    _mouse(viewport, QEvent.Type.MouseButtonPress, start_at, Qt.MouseButton.LeftButton)
    update, redraw = [], []
    for i in range(steps):
        pos = start_at + QPoint((i % 41) - 20, (i % 13) - 6)
        start = time.perf_counter()
        _mouse(viewport, QEvent.Type.MouseMove, pos, Qt.MouseButton.LeftButton)
        middle = time.perf_counter()
        viewport.repaint()
        end = time.perf_counter()
        update.append((middle - start) * 1000)
        redraw.append((end - start) * 1000)
    _mouse(viewport, QEvent.Type.MouseButtonRelease, pos, Qt.MouseButton.NoButton)
    if canvas.landmarks()[1] == FOVEA:
        raise RuntimeError("the drag did not move the fovea marker")
    return update, redraw


def time_clicks(window, clicks: int) -> tuple[list[float], list[float]]:
    """Click → committed (ReaderSession's call returned) and click → window updated."""
    controller, canvas = window.controller, window.canvas
    controller.set_landmarks(DISC, FOVEA)
    canvas.set_landmarks(DISC, FOVEA)
    controller.select_finding(controller.settings.findings[0].code)
    macula = QPointF(FOVEA[0] + 200, FOVEA[1] - 100)
    session = controller.session
    toggle = session.toggle_region
    committed: list[float] = []

    def timed_toggle(*args, **kwargs):
        state = toggle(*args, **kwargs)
        committed.append(time.perf_counter())
        return state

    session.toggle_region = timed_toggle
    durable, shown = [], []
    try:
        for _ in range(clicks):
            start = time.perf_counter()
            canvas.click_at(macula)
            end = time.perf_counter()
            durable.append((committed[-1] - start) * 1000)
            shown.append((end - start) * 1000)
    finally:
        del session.toggle_region
    return durable, shown


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=41)
    parser.add_argument("--size", default="1600x1000")
    parser.add_argument("--drags", type=int, default=300)
    parser.add_argument("--clicks", type=int, default=300)
    parser.add_argument("--data", help="folder of the public data sets (default $OCTANT_PUBLIC_DATA)")
    args = parser.parse_args()
    data = public_data_dir(args.data)
    app = make_app()
    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory(prefix="octant-bench-ui-") as scratch:
        project = build_project(Path(scratch), args.photos, data)
        window = build_window(project, reader_id=1)
        window.resize(width, height)
        window.show()
        wait_until(lambda: window.canvas.has_photo())
        steps = (args.photos - 1) // 2
        cold = time_next_image(window, steps, prefetch=False)
        warm = time_next_image(window, steps, prefetch=True)
        update, redraw = time_drag(window, args.drags)
        durable, clicked = time_clicks(window, args.clicks)
        window.close()
        window.deleteLater()
        app.processEvents()
        project.close()
    results = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                   f"Python {platform.python_version()}, Qt offscreen, window {args.size}",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "next_image_ms_no_prefetch": summary(cold),
        "next_image_ms_prefetch": summary(warm),
        "drag_update_ms": summary(update),
        "drag_redraw_ms": summary(redraw),
        "click_to_durable_ms": summary(durable),
        "click_to_window_updated_ms": summary(clicked),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    targets = {"next_image_ms_no_prefetch": ("median", 150), "next_image_ms_prefetch":
               ("median", 30), "drag_redraw_ms": ("median", 16), "click_to_durable_ms": ("p99", 10)}
    print(f"{'measure':32} {'median':>8} {'p95':>8} {'p99':>8} {'max':>8}   target")
    for name, value in results.items():
        if isinstance(value, dict):
            target = targets.get(name)
            goal = f"{target[0]} ≤ {target[1]} ms" if target else ""
            print(f"{name:32} {value['median']:8.1f} {value['p95']:8.1f} {value['p99']:8.1f} "
                  f"{value['max']:8.1f}   {goal}")
    print(f"written to {RESULTS}")
    return 0


if __name__ == "__main__":
    from main import one_line_errors  # no public data named: one line, not a traceback

    with one_line_errors(Path(__file__).name):
        sys.exit(main())
