"""The reading workstation: queue on the left, the photo in the centre, the answer on the right.

The window holds no labelling logic: keys, clicks and buttons call the ReadingController, and
the window redraws from what the controller reports back (each state it shows is the saved one).
"""
from __future__ import annotations

import time
from pathlib import Path

import qtawesome as qta
from PySide6.QtCore import QByteArray, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QColor, QKeySequence
from PySide6.QtWidgets import QDockWidget, QFrame, QLabel, QMainWindow, QMessageBox, QScrollArea, QWidget

from annotate.geometry import RegionGeometry
from storage.click_recovery import recovery_folder
from storage.errors import CancelledError, GeometryError, OctantError
from storage.images import ImageRecord
from storage.labels import Landmarks, ReadState
from storage.readers import Role
from ui.admin_guard import Prompts
from ui.app import ending_on_signal, show_message
from ui.assist import OVERLAYS, overlay_layers
from ui.background import Worker
from ui.canvas import FundusCanvas
from ui.display_image import DisplayImage, ViewAids
from ui.elided_label import ElidedLabel
from ui.image_loader import ImageLoader
from ui.keyboard_focus import give_keys_back
from ui.panels import AnswerPanel, QueuePanel
from ui.presegment_ahead import PresegmentAhead
from ui.reading_controller import KEPT_CLICKS_HINT, ReadingController
from ui.shortcuts import ShortcutSheet, resolve_bindings
from ui.view_aids_panel import BRIGHTNESS_STEP, CONTRAST_STEP, ViewAidsPanel
from ui.window_actions import add_action, build_toolbar_and_menus
from ui.workstation_settings import workstation_settings

ZOOM_STEP = 1.25
LAST_TRY_MS = 2000   # on a logout, the kept clicks' last try before they go to the recovery file
CLOSE_KEEPING_CLICKS = "Close; save them at my next sign-in"
# Docks never narrower than this (pixels): reader name, progress and finding names stay whole.
DOCK_MIN_WIDTH = {"queue": 190, "answer": 250}
# Below this a remembered window is not restored as it was: the canvas and the docks' names would
# be too small to read (a window left at 635 × 431 came back that size without a window manager).
LEGIBLE_WINDOW = (1024, 640)
DEFAULT_WINDOW = (1440, 900)
NORMAL_QUESTION = "This image has findings"   # how N's question over marked findings begins
MODEL_PLACED_NOTE = "Disc and fovea placed by the model: drag them if they are off."
# The actions that answer or move through the queue (with every finding's and region's key).
ANSWERING = ("next_unfinished", "previous", "next", "normal", "ungradable", "undo", "redo", "clear_finding",
             "accept_suggestions")
ORDERING_NOTE = "Ordering your queue: the images the model is least sure of first…"


class MainWindow(QMainWindow, Prompts):
    imageShown = Signal(int)  # the photo of this image is on screen and clickable
    signOutRequested = Signal()
    projectRestored = Signal(str)   # a backup was restored into the project (the sentence): reopen it

    def __init__(self, controller: ReadingController, loader: ImageLoader | None = None):
        super().__init__()
        self.controller = controller
        self.loader = loader or ImageLoader(self)
        self._normal_asked_for: int | None = None   # the image whose findings N asked about once
        settings = controller.settings
        self.setWindowTitle(f"Octant — {settings.name} — {controller.reader.name}")
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks)
        self.canvas = FundusCanvas(self)
        self.setCentralWidget(self.canvas)
        self.queue_panel = QueuePanel()
        self.answer_panel = AnswerPanel(settings.findings, settings.diagnosis_classes)
        self.docks: dict[str, QDockWidget] = {}
        self._dock("queue", "Queue", self.queue_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        self._dock("answer", "This image", self.answer_panel,
                   Qt.DockWidgetArea.RightDockWidgetArea)
        self.aids_panel = ViewAidsPanel()
        self.bindings = resolve_bindings(settings.findings)
        self.actions_by_name: dict[str, QAction] = {}
        self.answer_actions: list[QAction] = []   # off while there is no image to answer
        self._build_actions()
        build_toolbar_and_menus(self)
        self._build_status_bar()
        self._connect()
        self._requested_at = 0.0
        self.last_open_ms = 0.0
        self._overlays: set[str] = set()
        self._closing = False
        self._display_size: tuple[int, int] | None = None
        self.training_window: QWidget | None = None   # kept alive while shown
        self.review_window: QWidget | None = None
        self.admin_dialog: QWidget | None = None      # File → Readers and sets… (admins)
        self.ahead: PresegmentAhead | None = None   # pre-segmentation of the queue, when running
        self.ordering: Worker | None = None   # the sign-in's first ordering of the queue, while it runs
        self._close_with_kept_clicks = False   # the reader chose to close: kept clicks go to the recovery file
        self._restore_layout()

    # --- construction -------------------------------------------------------------------------
    def _dock(self, name: str, title: str, widget, area) -> None:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{name}")
        scroll = QScrollArea()  # small screens: the panel scrolls instead of forcing the height
        scroll.setWidget(widget)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # A remembered layout cannot squeeze a dock below what keeps its names legible.
        scroll.setMinimumWidth(DOCK_MIN_WIDTH[name])
        dock.setWidget(scroll)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(area, dock)
        self.docks[name] = dock

    def _build_actions(self) -> None:
        c, canvas, aids = self.controller, self.canvas, self.aids_panel
        slots = {
            "next_unfinished": c.next_unfinished, "normal": self.normal_and_next,
            "ungradable": lambda: c.set_ungradable(not (c.state and c.state.ungradable)),
            "clear_finding": self.back_to_photo,
            "previous": lambda: c.go(-1), "next": lambda: c.go(1),
            "undo": c.undo, "redo": c.redo, "accept_suggestions": self.accept_suggestions,
            "fit": canvas.fit, "actual_size": canvas.actual_size,
            "zoom_in": lambda: canvas.zoom_by(ZOOM_STEP),
            "zoom_out": lambda: canvas.zoom_by(1 / ZOOM_STEP),
            "regions": lambda on: canvas.set_regions_visible(on),
            "green": lambda: aids.adjust(green_channel=True),
            "clahe": lambda: aids.adjust(clahe=True),
            "brighter": lambda: aids.adjust(brightness=BRIGHTNESS_STEP),
            "darker": lambda: aids.adjust(brightness=-BRIGHTNESS_STEP),
            "more_contrast": lambda: aids.adjust(contrast=CONTRAST_STEP),
            "less_contrast": lambda: aids.adjust(contrast=-CONTRAST_STEP),
            "reset_aids": lambda: aids.set_aids(ViewAids()),
            "overlay_vessels": lambda on: self._toggle_overlay("vessels", on),
            "overlay_disc_cup": lambda on: self._toggle_overlay("disc_cup", on),
            "overlay_lesions": lambda on: self._toggle_overlay("lesions", on),
            "shortcuts": self.show_shortcuts,
        }
        for name, binding in self.bindings.items():
            if name in slots:
                add_action(self, binding, slots[name])
        self.actions_by_name["regions"].setChecked(True)
        self.ahead_action = QAction(qta.icon("mdi6.run-fast"), "Pre-segment my queue ahead of me", self)
        self.ahead_action.setCheckable(True)
        self.ahead_action.setStatusTip("Find disc, fovea, vessels and lesions on the coming images in the "
                                       "background (stored for every reader; shown where the project allows)")
        self.ahead_action.triggered.connect(self.run_ahead)
        for spec in self.controller.settings.findings:
            action = QAction(spec.name, self)
            action.setShortcut(QKeySequence(spec.key.upper()))
            # The key always chooses (Esc is "no finding"): the current finding stays from one image
            # to the next, so a toggle made "H 1" on the next image deselect H and drop the region.
            action.triggered.connect(lambda _=False, code=spec.code: self.controller.select_finding(code))
            self.addAction(action)
            self.answer_actions.append(action)
        for code in range(1, 9):
            action = QAction(f"Region {code}", self)
            action.setShortcuts([QKeySequence(str(code)),  # the number row and the keypad
                                 QKeySequence(Qt.KeyboardModifier.KeypadModifier
                                              | getattr(Qt.Key, f"Key_{code}"))])
            action.triggered.connect(lambda _=False, code=code: self.controller.toggle_region(code))
            self.addAction(action)
            self.answer_actions.append(action)
        self.answer_actions += [self.actions_by_name[name] for name in ANSWERING if name in self.actions_by_name]

    def _build_status_bar(self) -> None:
        self.saved_label = QLabel("")
        self.saved_label.setObjectName("savedLabel")
        self.hint_label = ElidedLabel("")
        self.ahead_label = QLabel("")
        self.ahead_label.setObjectName("aheadLabel")
        self.ahead_label.setContentsMargins(12, 0, 0, 0)  # a gap after the (shortened) hint
        self.statusBar().addWidget(self.hint_label, 1)
        self.statusBar().addPermanentWidget(self.ahead_label)
        self.statusBar().addPermanentWidget(self.saved_label)

    def _connect(self) -> None:
        c = self.controller
        c.imageOpened.connect(self._on_image_opened)
        c.stateChanged.connect(self._on_state)
        c.saved.connect(self._on_saved)
        c.problem.connect(self.show_problem)
        c.stale.connect(lambda text: self.show_problem(text, box=False))
        c.refused.connect(lambda text: self.show_problem(text, box=False))
        c.hint.connect(self.show_hint)
        c.suggestionChanged.connect(self._on_suggestion)
        c.landmarksShown.connect(self._on_model_landmarks)
        c.progressChanged.connect(self.queue_panel.set_progress)
        c.readSaved.connect(lambda image_id, state: self.queue_panel.set_done(image_id, state.done))
        c.findingChanged.connect(self._on_finding)
        c.leaving.connect(self.answer_panel.flush_comment)
        c.queueGrew.connect(self._list_queue)
        c.queueFinished.connect(lambda: self.show_hint(
            "Every image in your queue is done. Thank you! Use the queue to revisit any image."))
        self.loader.ready.connect(self._on_image_ready)
        self.loader.overlayReady.connect(self._on_overlay_ready)
        self.loader.detailReady.connect(self.canvas.set_detail)
        self.canvas.detailWanted.connect(self.loader.request_detail)
        self.loader.failed.connect(self._on_image_failed)
        self.aids_panel.changed.connect(self._on_aids)
        self.canvas.resized.connect(self._on_canvas_resized)
        self.canvas.regionClicked.connect(c.toggle_region)
        self.canvas.landmarksChanged.connect(self._on_landmarks_moved)
        self.canvas.placingChanged.connect(self._on_placing)
        self.queue_panel.imageChosen.connect(self._open_chosen)
        p = self.answer_panel
        p.findingChosen.connect(self.choose_finding)
        p.normalClicked.connect(self.normal_and_next)
        p.ungradableToggled.connect(c.set_ungradable)
        p.diagnosisChosen.connect(c.set_diagnosis)
        p.commentEdited.connect(c.set_comment)

    # --- starting -----------------------------------------------------------------------------
    def start(self) -> None:
        """Show the queue and open the first unfinished image. In the model's reading order the
        first ordering of a session scores every open image (seconds at clinic scale): it runs off
        the GUI thread, the window saying so, and the queue opens when it is ready."""
        c = self.controller
        self.queue_panel.set_reader(c.reader.name, c.reader.role.value)
        if c.session.orders_by_model():
            self._order_queue_in_background()
        else:
            self._show_queue(c.queue_status())

    def _show_queue(self, status: list[tuple[ImageRecord, bool]]) -> None:
        c = self.controller
        self._list_queue(status)
        self._allow_answering(bool(status))
        c.start()
        if not status:
            self.show_hint(self._empty_queue_hint(c.reader.role))

    def _list_queue(self, status: list[tuple[ImageRecord, bool]]) -> None:
        """The queue panel's list: every image of the queue with its done mark."""
        self.queue_panel.set_queue([record for record, _ in status], {record.id: done for record, done in status})

    def _allow_answering(self, allowed: bool) -> None:
        """Nothing to answer (an empty queue, or one still being ordered): the answer panel and the
        answer and queue keys are off, so a finding key (H…) does not replace the hint with "press
        1–8 or click the regions" over an empty canvas, the panel's buttons looking as if they did
        something. The other keys (zoom, the key sheet, quit) stay on."""
        self.answer_panel.setEnabled(allowed)
        for action in self.answer_actions:
            action.setEnabled(allowed)

    def _order_queue_in_background(self) -> None:
        session = self.controller.session   # only this job uses its kept order until it ends

        def order(report, cancel) -> list[tuple[ImageRecord, bool]]:
            def checkpoint(scored: int, total: int) -> None:
                if cancel.is_set():
                    raise CancelledError("Ordering the queue was cancelled.")
                report((scored, total))
            return session.queue_status(checkpoint=checkpoint)

        self.controller.queue_pending = True
        self._allow_answering(False)
        self.queue_panel.show_waiting(ORDERING_NOTE)
        self.show_hint(ORDERING_NOTE)
        self.ordering = Worker(order, name="Ordering the queue", owner=self)
        self.ordering.yielded.connect(self._on_ordering_progress)
        self.ordering.returned.connect(self._on_queue_ordered)
        self.ordering.errored.connect(self._on_ordering_failed)
        self.ordering.start()

    def _on_ordering_progress(self, step: tuple[int, int]) -> None:
        scored, total = step
        if total and not self._closing:
            self.show_hint(f"{ORDERING_NOTE} {100 * scored // total} %")

    def _on_queue_ordered(self, status: list[tuple[ImageRecord, bool]]) -> None:
        self.ordering = None
        if self._closing:
            return
        self.show_hint("")
        self._show_queue(self.controller.take_queue(status))
        if self.ahead_action.isChecked():   # asked for at sign-in, when there was no queue yet
            self.run_ahead(True, remember=False)

    def _on_ordering_failed(self, message: str) -> None:
        self.ordering = None
        self.controller.queue_pending = False
        self.queue_panel.show_waiting("Your queue could not be ordered.")
        self.show_problem(message)

    @staticmethod
    def _empty_queue_hint(role: Role) -> str:
        """What to do with an empty queue: readers wait for the admin; admins assign, reviewers review."""
        if role is Role.ADMIN:
            return ("No images are assigned to you to read; assign readers with `python main.py assign`, "
                    "and manage readers and sets in File → Readers and sets….")
        if role is Role.REVIEWER:
            return "No images are assigned to you to read; File → Review… shows the readers' answers."
        return ("No images are assigned to you yet; ask the project lead to assign "
                "readers (`python main.py assign`).")

    # --- reactions ----------------------------------------------------------------------------
    def _on_image_opened(self, record: ImageRecord, state: ReadState,
                         shown: Landmarks | None) -> None:
        self._requested_at = time.perf_counter()
        self._normal_asked_for = None
        self.canvas.setFocus()
        self.canvas.begin_image(record.id, (record.width, record.height), record.fov)
        self.canvas.set_landmarks(shown.disc if shown else None, shown.fovea if shown else None)
        self.answer_panel.reset_comment(state.comment)
        self._on_state(state)
        self.queue_panel.set_current(record.id)
        # Forgotten before asking for the photo: a prefetched one is answered at once, inside
        # request(), with the size the overlays need.
        self._display_size = None  # known when the photo is decoded; overlays wait for it
        self.canvas.set_overlay(None)
        self.loader.request(record.id, record.path, (record.width, record.height), record.sha256)
        ids = self.controller.queue_ids()
        number = ids.index(record.id) + 1 if record.id in ids else 0
        self.setWindowTitle(f"Octant — {Path(record.path).name} ({number} of {len(ids)}) — "
                            f"{self.controller.reader.name}")
        self._request_overlays()
        self._show_notes()

    def _show_notes(self) -> None:
        """What the model did for this image, in the status bar."""
        c, notes = self.controller, []
        if c.shown_landmarks is not None and c.shown_landmarks.source == "model" \
                and c.state is not None and c.state.landmarks is None:
            notes.append(MODEL_PLACED_NOTE)
        if c.suggestion is not None and c.suggestion.finding_regions:
            names = ", ".join(f"{c.findings[code].name} {' '.join(map(str, sorted(regions)))}"
                              for code, regions in c.suggestion.finding_regions.items()
                              if code in c.findings)
            notes.append(f"Model suggests: {names} (Shift+A accepts).")
        if c.suggestion is not None and c.suggestion.note:
            notes.append(c.suggestion.note)
        if notes:
            self.show_hint("  ".join(notes))

    def _on_suggestion(self, _suggestion) -> None:
        if self.controller.state is not None:
            self._on_state(self.controller.state)
        self._request_overlays()
        self._show_notes()

    def _on_image_ready(self, image_id: int, display: DisplayImage, shown) -> None:
        if self.controller.image is None or image_id != self.controller.image.id:
            return
        self.canvas.show_image(image_id, display, shown)
        if (display.bgr.shape[1], display.bgr.shape[0]) != self._display_size:
            self._display_size = (display.bgr.shape[1], display.bgr.shape[0])
        if self._requested_at:
            self._request_overlays()
            self.last_open_ms = (time.perf_counter() - self._requested_at) * 1000
            self._requested_at = 0.0
            self.imageShown.emit(image_id)
            QTimer.singleShot(0, self, self._prefetch_upcoming)  # after this photo is painted

    def _on_canvas_resized(self) -> None:
        self.loader.fit_size = self.canvas.fit_size()  # the worker pre-shrinks to this

    def _on_image_failed(self, image_id: int, message: str) -> None:
        """An unreadable photo: said on the canvas and in the status bar, without a box, so the
        reader can go on with the keyboard (ungradable and a comment can still be given; normal
        and findings cannot, ``ReadingController.photo_not_shown``)."""
        self.controller.photo_not_shown(image_id, message)
        self.canvas.show_message(image_id, message)
        self.show_problem(message, box=False)

    def _prefetch_upcoming(self) -> None:
        if self._closing or not self.loader.prefetch_enabled:
            return
        try:
            upcoming = self.controller.upcoming()
            record = self.controller.record(upcoming) if upcoming is not None else None
        except OctantError:
            return  # prefetch is only a head start; the open image is unaffected
        if record is not None:
            self.loader.prefetch(record.id, record.path, (record.width, record.height), record.sha256)

    def _on_state(self, state: ReadState) -> None:
        self._withdraw_normal_question()
        shown = self.controller.shown_landmarks  # after undo/redo the canvas follows the answer
        on_canvas = self.canvas.landmarks()
        if shown is None and on_canvas is not None:
            self.canvas.set_landmarks(None, None)
        elif shown is not None and on_canvas != (shown.disc, shown.fovea):
            self.canvas.set_landmarks(shown.disc, shown.fovea)
        suggestion = self.controller.suggestion
        self.answer_panel.show_state(state, suggestion.finding_regions if suggestion else None)
        self._refresh_fills()
        if self.controller.image is not None:
            self.queue_panel.set_done(self.controller.image.id, state.done)
        self.actions_by_name["ungradable"].setChecked(state.ungradable)

    def _withdraw_normal_question(self) -> None:
        """Anything the reader does after N asked (a region, a finding, Esc, undo, U) withdraws
        the question: only N twice in a row clears marked findings, never a later stray N."""
        if self._normal_asked_for is None:
            return
        self._normal_asked_for = None
        if self.hint_label.text().startswith(NORMAL_QUESTION):
            self.show_hint("")

    def _on_finding(self, code: str | None) -> None:
        self._withdraw_normal_question()
        self.answer_panel.set_current_finding(code)
        self._refresh_fills()
        if code is not None:
            name = self.controller.findings[code].name
            self.show_hint(f"{name}: press 1–8 or click the regions where you see it.")

    def _refresh_fills(self) -> None:
        c = self.controller
        if c.state is None or c.finding is None:
            self.canvas.set_fills({})
            self.canvas.overlay.set_suggested(set(), QColor("white"))
            return
        colour = self.answer_panel.colours[c.finding]
        self.canvas.set_fills({code: colour for code in c.state.regions.get(c.finding, ())})
        suggested = c.suggestion.finding_regions.get(c.finding, ()) if c.suggestion else ()
        self.canvas.overlay.set_suggested(set(suggested), colour)

    def _on_saved(self, text: str) -> None:
        self.saved_label.setText(text)
        self.saved_label.setStyleSheet("color:#2e9d58;" if text.startswith("Saved") else "")
        if text.startswith("Saved") and self.hint_label.text().startswith(KEPT_CLICKS_HINT):
            self.show_hint("")   # it said to wait for this: it stayed, as if still unsaved

    def _on_aids(self, aids: ViewAids) -> None:
        self.actions_by_name["green"].setChecked(aids.green_channel)
        self.actions_by_name["clahe"].setChecked(aids.clahe)
        self.loader.set_aids(aids)

    def _on_placing(self, placing: str) -> None:
        if not placing and self.hint_label.text().startswith(("Click the centre", "Now click")):
            self.show_hint("")
        if placing == "disc":
            self.show_hint("Click the centre of the optic disc.")
        elif placing == "fovea":
            self.show_hint("Now click the fovea (centre of the macula).")

    def _on_landmarks_moved(self, disc: tuple[float, float], fovea: tuple[float, float]) -> None:
        c = self.controller
        if c.image is None:
            return
        try:
            RegionGeometry.from_landmarks(disc, fovea, (c.image.height, c.image.width))
        except GeometryError as error:
            self.show_problem(str(error), box=False)
            shown = c.state.landmarks if c.state else None
            self.canvas.set_landmarks(shown.disc if shown else disc, shown.fovea if shown else None)
            return
        c.set_landmarks(disc, fovea, source="manual")
        if self.hint_label.text().startswith(MODEL_PLACED_NOTE):   # no longer so: the reader moved them
            self.show_hint("")
            self._show_notes()   # what else the model said (its suggestions), if anything

    # --- commands -----------------------------------------------------------------------------
    def choose_finding(self, code: str) -> None:
        """A click on a finding's row in the panel: chooses it, or a second click on it lets go."""
        c = self.controller
        c.select_finding(None if c.finding == code else code)

    def _open_chosen(self, image_id: int) -> None:
        """A row of the queue chosen: opened, or (kept clicks hold the reader here) the open
        image's row selected again, so the list never shows another image as the open one."""
        self.controller.open_image(image_id)
        if self.controller.image is not None:
            self.queue_panel.set_current(self.controller.image.id)

    def back_to_photo(self) -> None:
        """Esc: no current finding, and the keys go to the photo again (e.g. from the comment)."""
        self.controller.select_finding(None)
        self.canvas.setFocus()

    def normal_and_next(self) -> None:
        """N: one key for a normal eye: saved as normal, then the next unfinished image. Where the
        reader has marked findings, the first N only asks: one stray key must not clear them."""
        state, image = self.controller.state, self.controller.image
        if state is not None and image is not None and state.regions and self._normal_asked_for != image.id:
            self._normal_asked_for = image.id
            marked = "; ".join(f"{code.replace('_', ' ')} {' '.join(map(str, sorted(regions)))}"
                               for code, regions in sorted(state.regions.items()))
            self.show_hint(f"{NORMAL_QUESTION} ({marked}): press N again to mark it normal and clear them.")
            return
        self._normal_asked_for = None
        if self.controller.state is not None and not self.controller.state.normal \
                and not self.controller.mark_normal():
            return   # refused (e.g. a photo that could not be shown): the reader stays to see why
        self.controller.next_unfinished()

    def accept_suggestions(self) -> None:
        self.controller.accept_suggestions()

    # --- model overlays -----------------------------------------------------------------------
    def _toggle_overlay(self, overlay: str, on: bool) -> None:
        self._overlays = (self._overlays | {overlay}) if on else (self._overlays - {overlay})
        self._request_overlays()

    def _request_overlays(self) -> None:
        """Ask the worker for the active overlays of the open image (none: clear them)."""
        c, suggestion = self.controller, self.controller.suggestion
        for overlay in OVERLAYS:
            action = self.actions_by_name[f"overlay_{overlay}"]
            available = suggestion is not None and suggestion.has_overlay(overlay)
            action.setEnabled(available)
            action.setToolTip(action.statusTip() + ("" if available else
                              " — run `python main.py presegment --project DIR` first"))
        layers = []
        if suggestion is not None and c.image is not None:
            for overlay in sorted(self._overlays):
                layers += overlay_layers(overlay, suggestion)
        if not layers or self._display_size is None or c.image is None:   # layers need the image
            self.canvas.set_overlay(None)
            return
        key = ",".join(sorted(self._overlays))
        self.loader.request_overlay(c.image.id, key, layers, self._display_size)

    def _on_overlay_ready(self, image_id: int, key: str, image) -> None:
        c, wanted = self.controller, ",".join(sorted(self._overlays))
        if c.image is not None and image_id == c.image.id and key == wanted:
            self.canvas.set_overlay(image)

    def open_training(self) -> None:
        """The training panel (ui/training), for reviewers and admins."""
        from ui.training import open_training_window

        self.training_window = open_training_window(self.controller.project, reader_id=self.controller.reader.id)
        self.training_window.closed.connect(self._keys_back_unless_closing)
        self.training_window.quitRequested.connect(self.close)   # Ctrl+Q there: File → Quit here

    def open_review(self) -> None:
        """The reviewers' screen (ui/review): readers, consensus and model side by side."""
        from ui.review import open_review_window

        self.review_window = open_review_window(self.controller.project, self.controller.reader.id)
        self.review_window.quitRequested.connect(self.close)   # Ctrl+Q there: File → Quit here
        self.review_window.closed.connect(self._keys_back_unless_closing)

    def _keys_back_unless_closing(self) -> None:
        if not self._closing:
            give_keys_back(self)

    def show_shortcuts(self) -> None:
        sheet = ShortcutSheet(self.bindings, self.controller.settings.findings, self)
        sheet.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        sheet.finished.connect(lambda _result: self.activateWindow())   # keys back here (no window manager)
        sheet.open()

    def show_hint(self, text: str) -> None:
        self.hint_label.setStyleSheet("")
        self.hint_label.setText(text)

    def show_problem(self, text: str, box: bool = True) -> None:
        """Storage and file problems: in red in the status bar and, unless one is already open,
        in a non-blocking message box; the window stays and nothing saved is lost."""
        self.hint_label.setStyleSheet("color:#c0392b;")
        self.hint_label.setText(text)
        if box and not any(b.isVisible() for b in self.findChildren(QMessageBox)):
            show_message(text, self)

    # --- layout memory ------------------------------------------------------------------------
    def _restore_layout(self) -> None:
        settings = workstation_settings()
        geometry = settings.value("window/geometry")
        remembered = isinstance(geometry, QByteArray) and not geometry.isEmpty()
        if remembered:
            self.restoreGeometry(geometry)
        if not remembered or not self._restored_size_is_legible():
            self.resize(*DEFAULT_WINDOW)
            self.resizeDocks([self.docks["queue"], self.docks["answer"]], [230, 290], Qt.Orientation.Horizontal)
        state = settings.value("window/state")
        if isinstance(state, QByteArray) and not state.isEmpty():
            self.restoreState(state)

    def _restored_size_is_legible(self) -> bool:
        """Whether the window is at least the legible size, or nearly fills a screen smaller than that
        (restoring clamps a window to the screen, less its frame)."""
        available = self.screen().availableGeometry().size()
        return (self.width() >= min(LEGIBLE_WINDOW[0], int(available.width() * 0.9))
                and self.height() >= min(LEGIBLE_WINDOW[1], int(available.height() * 0.9)))

    # --- pre-segmentation ahead of the reader ---------------------------------------------------
    def run_ahead(self, on: bool, remember: bool = True) -> None:
        """Start (or stop) pre-segmenting the reader's queue from the open image on, so the model's
        disc, fovea, suggestions and overlays are ready when they get there (Model menu)."""
        self.ahead_action.setChecked(on)
        if remember:
            workstation_settings().setValue("model/presegment_ahead", on)
        if not on:
            if self.ahead is not None:
                self.ahead.cancel()
            return
        if self.ahead is None:
            from ui.precision_setting import show_networks_line

            self.ahead = PresegmentAhead(self.controller.project, self)
            self.ahead.imageReady.connect(self.controller.model_output_arrived)
            self.ahead.status.connect(self.ahead_label.setText)
            self.ahead.networks.connect(lambda text: show_networks_line(self, text))   # Model → Precision
            self.ahead.stopped.connect(lambda: self.ahead_action.setChecked(False))
        self.ahead.start(self.controller.queue_from_here())

    def _on_model_landmarks(self, shown: Landmarks) -> None:
        if not self.canvas.disc_marker.isVisible():   # never over a disc the reader is placing
            self.canvas.set_landmarks(shown.disc, shown.fovea)
            self._show_notes()

    def close_side_windows(self) -> None:
        """The training and review windows this window opened."""
        for other in (self.training_window, self.review_window):
            if other is not None and other.isVisible():
                other.close()

    def close_keeping_clicks_for_next_sign_in(self) -> bool:
        """Close even with clicks not saved: they go to the project's recovery file, saved at the
        reader's next sign-in (``storage.click_recovery``), and the log names them. The reader
        chose it, or the project was restored from a backup. Where the file cannot be written the
        window stays open and goes on saving them (False)."""
        self._close_with_kept_clicks = True
        return self.close()

    def _ask_about_kept_clicks(self) -> None:
        """Closing with clicks not saved yet: said, and the reader chooses (never a silent loss)."""
        if any(box.objectName() == "keptClicksQuestion" and box.isVisible() for box in self.findChildren(QMessageBox)):
            return   # asked already
        kept = self.controller.kept_clicks()
        clicks = "Your last click is" if kept == 1 else f"Your last {kept} clicks are"
        them = "it is" if kept == 1 else "they are"
        box = QMessageBox(QMessageBox.Icon.Warning, "Octant",
                          f"{clicks} not saved yet: the project database is busy in another program or out of reach. "
                          "Octant keeps trying; close again once the status bar says Saved ✓, or close now: "
                          f"{them} kept in {recovery_folder(self.controller.project.root)} and saved when "
                          "you next sign in.", QMessageBox.StandardButton.NoButton, self)
        box.setObjectName("keptClicksQuestion")
        box.addButton("Keep waiting", QMessageBox.ButtonRole.RejectRole)
        close_now = box.addButton(CLOSE_KEEPING_CLICKS, QMessageBox.ButtonRole.AcceptRole)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda _result: self.close_keeping_clicks_for_next_sign_in()
                             if box.clickedButton() is close_now else self.activateWindow())
        box.open()

    def _kept_clicks_written(self) -> bool:
        """The reader closes with clicks kept: the writer stops and what it has not saved goes to
        the recovery file. Where that file cannot be written (a full disk) the writer goes on, the
        window stays and says so, and nothing is lost (False)."""
        saves = self.controller.saves
        if not saves.stop() or saves.recovery_file is not None:
            return True
        saves.resume()
        self._close_with_kept_clicks = False
        self.show_problem(f"Your clicks not saved yet could not be kept for your next sign-in "
                          f"({saves.recovery_problem}): the window stays open and Octant keeps trying to save "
                          "them; close once the status bar says Saved ✓.")
        return False

    def closeEvent(self, event) -> None:
        self.controller.finish()   # the open image's done mark (kept too, if the database is busy)
        ending = ending_on_signal()   # a logout: nobody to ask, the kept clicks go to the recovery file
        if self.controller.kept_clicks() and not ending:
            if not self._close_with_kept_clicks:
                event.ignore()
                self._ask_about_kept_clicks()
                return
            if not self._kept_clicks_written():   # they could not be kept for the next sign-in: it stays
                event.ignore()
                return
        self._closing = True
        # The training and review windows it opened work on its project, which closes with it (quit,
        # sign-out, restore): left open, Quit would not end the application, and after a sign-out the
        # next person would see the review screen's labels of every reader.
        self.close_side_windows()
        if self.ahead is not None:
            self.ahead.shutdown()
        if self.ordering is not None:   # joined before the project closes (sign-out, restore)
            self.ordering.cancel()
            self.ordering.wait()
        # Clicks still kept get a last try on a logout, then go to the recovery file, saved at the reader's
        # next sign-in; the log names them (ui/save_queue.py).
        self.controller.saves.stop(last_try_ms=LAST_TRY_MS if ending else 0)
        settings = workstation_settings()
        settings.setValue("window/geometry", self.saveGeometry())
        settings.setValue("window/state", self.saveState())
        self.loader.shutdown(3000)
        super().closeEvent(event)
