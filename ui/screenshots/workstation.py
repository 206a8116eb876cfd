"""``screenshot``: the workstation's main states, the review screen, the training panel and the
admin's readers and sets dialog rendered offscreen to PNG files.

Works on a copy of the database (the photos are read where they are), so a real project is
never changed: the states are reached by the same controller calls a reader's keys make.
"""
from __future__ import annotations

import sqlite3
import tempfile
from contextlib import closing, contextmanager
from pathlib import Path

from PySide6.QtCore import QPointF, QSettings
from PySide6.QtWidgets import QApplication

from annotate.services.demo import create_demo_project
from storage.database import Database, sqlite_url
from storage.images import ImageRecord
from storage.project import open_project
from storage.readers import REVIEW_ROLES, find_reader, list_readers
from storage.snapshot import copy_to_sqlite
from ui.app import make_app
from ui.display_image import ViewAids
from ui.main_window import MainWindow
from ui.screenshots.admin import admin_dialog_screenshots
from ui.screenshots.events import wait_until
from ui.screenshots.review import review_state_screenshot
from ui.screenshots.staging import staged_landmarks
from ui.screenshots.training import render_training_panel_screenshot
from ui.shortcuts import ShortcutSheet
from ui.workstation import build_window


def _demo_with_presegmentation(folder: Path) -> Path:
    """The demo project, pre-segmented (model landmarks, and masks and suggested regions when
    the networks' weights are present) so the screenshots show model assistance."""
    create_demo_project(folder)
    try:
        from models.segmentation.pipeline import load_pipeline_models
        from models.segmentation.presegment import presegment_project
    except ImportError:  # a trimmed install without models/
        return folder
    models, _messages = load_pipeline_models(device="cpu")
    with open_project(folder) as handle:
        presegment_project(handle, None, models)
    return folder


def _copy_database(source: Path, target: Path) -> None:
    """A consistent copy of a live SQLite project (WAL included), so the project is unchanged."""
    with closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as src, \
            closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


def _grab(widget, path: Path) -> Path:
    QApplication.processEvents()
    widget.grab().save(str(path))
    return path


def _show(window: MainWindow, image_id: int) -> None:
    window.controller.open_image(image_id)
    wait_until(lambda: window.canvas.image_id == image_id and
          window.canvas.has_photo())


@contextmanager
def _scratch_settings(folder: Path):
    """The windows read and remember their layout (QSettings) in ``folder`` meanwhile: a screenshot
    neither starts from the reader's remembered layout nor overwrites it (a 50 × 50 run once left
    the docks at 68 pixels for the reader's next session)."""
    from ui.workstation_settings import workstation_settings

    user_folder = Path(workstation_settings().fileName()).parent.parent   # <folder>/Octant/workstation.ini
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    try:
        yield
    finally:
        QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(user_folder))


def render_screenshots(out: Path, project: Path | None = None, reader: str | None = None,
                       size: tuple[int, int] = (1600, 1000), database_url: str | None = None) -> list[Path]:
    """``database_url``: the project's database when it is not the folder's own file (PostgreSQL)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    app = make_app()
    with tempfile.TemporaryDirectory(prefix="octant-shots-") as scratch, \
            _scratch_settings(Path(scratch) / "settings"):
        folder = Path(project) if project else _demo_with_presegmentation(Path(scratch) / "demo")
        database = Path(scratch) / "copy.sqlite"
        if project is not None and database_url is not None:
            source = Database.open(database_url, folder)
            try:
                copy_to_sqlite(source, database)
            finally:
                source.dispose()
        else:
            _copy_database(folder / "octant.sqlite", database)
        handle = open_project(folder, database_url=sqlite_url(database))
        try:
            info = find_reader(handle.database, reader) if reader else \
                [r for r in list_readers(handle.database) if r.role not in REVIEW_ROLES][0]   # one who reads
            # The demo is pre-segmented already: the pass ahead only says so in the status bar.
            window = build_window(handle, info.id, run_ahead=project is None)
            window.resize(*size)
            window.show()
            if window.ahead is not None:
                wait_until(lambda: not window.ahead.running(), 60.0)
            paths = _render_states(window, out)
            window.close()
            window.deleteLater()
            app.processEvents()
            # A real project's screens show only what the signed-in reader may open (docs/roles.md):
            # a plain reader's screenshot must not show every reader's labels. The demo's are public.
            viewer = None if project is None else info
            # 7. The reviewers' screen (ui/review); the demo's other readers answer a few photos.
            paths += review_state_screenshot(handle, out / "7-review.png", stage=project is None, size=size,
                                             viewer=viewer)
            # 8. The training panel: the consensus counts and the papers' settings.
            if viewer is None or viewer.role in REVIEW_ROLES:
                paths.append(render_training_panel_screenshot(handle, out / "8-training.png", size=size,
                                                              reader_id=viewer.id if viewer else None))
            # 9, 10. The admin's File → Readers and sets… (readers; training and test sets).
            paths += admin_dialog_screenshots(handle, out, size=size, viewer=viewer)
        finally:
            handle.close()
    return paths


def _render_states(window: MainWindow, out: Path) -> list[Path]:
    c = window.controller
    ids = c.queue_ids()
    if not ids:   # a reviewer or admin with nothing to read: the window says what they may do instead
        return [_grab(window, out / "1-queue.png"), _shortcut_sheet(window, out)]
    wait_until(lambda: c.image is not None and window.canvas.has_photo())
    paths = []
    # 1. The queue: two images answered (one normal, one with a finding), the third open.
    if len(ids) >= 3:
        _show(window, ids[0])
        c.mark_normal()
        _show(window, ids[1])
        _place(window)
        c.select_finding(c.settings.findings[1].code)
        c.toggle_region(1)
        _show(window, ids[2])
        c.select_finding(None)
    paths.append(_grab(window, out / "1-queue.png"))
    # 2. The same image with its eight regions, one of them under the cursor.
    _place(window)
    canvas = window.canvas
    number = canvas.overlay.numbers[5]
    hover = number.pos() + QPointF(0, 30 / max(canvas.zoom(), 1e-6))  # below the number
    canvas.hover_at(hover)
    paths.append(_grab(window, out / "2-regions.png"))
    canvas.clear_hover()
    # 3. A finding being labelled: haemorrhage in the macula and the superotemporal region.
    c.select_finding(c.settings.findings[0].code)
    for region in (1, 5):
        c.toggle_region(region)
    paths.append(_grab(window, out / "3-finding.png"))
    # 4. View aids: green channel with CLAHE (display only).
    window.aids_panel.set_aids(ViewAids(green_channel=True, clahe=True))
    wait_until(lambda: window.loader.is_rendered(_open_image(window).id))
    paths.append(_grab(window, out / "4-view-aids.png"))
    window.aids_panel.set_aids(ViewAids())
    # 5. The model's masks over the photo, when the pre-segmentation stored any.
    available = [name for name in ("overlay_vessels", "overlay_disc_cup", "overlay_lesions")
                 if window.actions_by_name[name].isEnabled()]
    if available:
        for name in available:
            window.actions_by_name[name].trigger()
        wait_until(window.canvas.has_overlay)
        paths.append(_grab(window, out / "5-model-overlays.png"))
        for name in available:
            window.actions_by_name[name].trigger()
    paths.append(_shortcut_sheet(window, out))
    return paths


def _shortcut_sheet(window: MainWindow, out: Path) -> Path:
    """6. The shortcut sheet (F1)."""
    sheet = ShortcutSheet(window.bindings, window.controller.settings.findings, window)
    sheet.show()
    path = _grab(sheet, out / "6-shortcuts.png")
    sheet.close()
    return path


def _open_image(window: MainWindow) -> ImageRecord:
    """The image on screen: every state from the first on is drawn over one."""
    image = window.controller.image
    if image is None:
        raise RuntimeError("the screenshot window has no image open")
    return image


def _place(window: MainWindow) -> None:
    """Landmarks as a reader would accept or place them: the model's, else staged ones."""
    c = window.controller
    if c.state is not None and c.state.landmarks is not None:
        return
    shown = c.shown_landmarks
    disc, fovea = (shown.disc, shown.fovea) if shown else staged_landmarks(_open_image(window).path)
    c.set_landmarks(disc, fovea, source=shown.source if shown else "manual")
    QApplication.processEvents()
