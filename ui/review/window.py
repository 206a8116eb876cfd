"""The reviewers' screen: queues on the left; in the centre one reader, the consensus or the model
enlarged over the whole canvas (keys 1, 2, 3, C, M; zoom and pan as in the workstation), the five
side by side, and the agreement statistics. Every key is in ``ui.review.keys``. Reviewers and
admins only (``storage.review.ReviewSession`` refuses everyone else before anything is shown)."""
from __future__ import annotations

import functools
from collections.abc import Callable

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QKeySequence, QShortcut
from PySide6.QtWidgets import QLabel, QSplitter, QTabWidget, QVBoxLayout, QWidget

from annotate.adjudication import review_queue
from models.segmentation.stored_names import SCREENING_RED_FREE_NOTE
from storage.adjudication import adjudicated_answers, record_adjudication
from storage.errors import OctantError
from storage.images import ImageRecord
from storage.project import ProjectHandle
from storage.review import ReviewSession
from ui.background import Worker, worker_pool
from ui.colours import finding_colours
from ui.display_image import DisplayImage, decode_for_display
from ui.image_loader import ImageLoader
from ui.review.adjudication import AdjudicationPanel
from ui.review.agreement_view import AgreementView, compute_agreement
from ui.review.dashboard import DashboardView, compute_dashboard
from ui.review.data import ReviewData, load_review_data
from ui.review.enlarged import MODEL, SOURCES, EnlargedView
from ui.review.keys import BINDINGS, keys_line
from ui.review.model_view import GuidedRunner, ModelView, guided_models, model_disagreements, model_threshold
from ui.review.queue_marks import EVERYTHING, queue_mark
from ui.review.queues import ALL_IMAGES, DISAGREEMENTS, MODEL_VS_CONSENSUS, QueuePanel
from ui.review.side_by_side import SideBySide, role_text

PHOTO_LONG_SIDE = 900      # side-by-side copies: enough for a third of a screen
PHOTOS_KEPT = 32
QUEUE_MIN_WIDTH = 260      # file names and reasons stay readable (two lines per entry)
DIAGNOSIS = ""             # a queue entry's "finding" when the readers' diagnoses differ
QueueRow = tuple[int, str | None, str, str, bool]   # image id, finding, the entry's text, its tooltip, adjudicated


class ReviewWindow(QWidget):
    quitRequested = Signal()   # Ctrl+Q: the workstation that opened this screen quits (and closes it)
    closed = Signal()          # Ctrl+W: the keys go back to the workstation (no window manager does it)

    def __init__(self, project: ProjectHandle, reader_id: int, parent: QWidget | None = None):
        super().__init__(parent, Qt.WindowType.Window)
        self.review = ReviewSession(project.database, reader_id)   # AccessDeniedError for readers
        self.project = project
        settings = project.settings()
        self.finding_names = {spec.code: spec.name for spec in settings.findings}
        self.colours = finding_colours(settings.findings)
        self.setWindowTitle(f"Review — {settings.name} — {self.review.reader.name}")
        self.data: ReviewData | None = None
        self.models = guided_models(project.database, self.finding_names)
        self.runner = GuidedRunner()
        self.model_queue: dict[int, dict[str, str]] | None = None
        self.photos: dict[int, DisplayImage] = {}
        self.photo_errors: dict[int, str] = {}
        self._pending_photos: set[int] = set()
        self.current: tuple[int, str] | None = None
        self.decisions_here = 0   # recorded from this screen: a reload of the answers begun before one is dropped
        self.jobs = worker_pool(self, threads=2)
        self.workers: set[Worker] = set()
        self._build()
        self._redraw = QTimer(self, singleShot=True, interval=150)   # pictures follow a resize
        self._redraw.timeout.connect(self._show_current)   # nothing to redraw before a selection
        self._submit(("data",), lambda: load_review_data(self.review))
        self.resize(1500, 950)

    def _build(self) -> None:
        self.queues = QueuePanel(self.finding_names)
        self.queues.setMinimumWidth(QUEUE_MIN_WIDTH)
        self.enlarged = EnlargedView()
        self.side_by_side = SideBySide()
        self.agreement = AgreementView()
        self.tabs = QTabWidget()
        self.tabs.addTab(self.enlarged, "Enlarged")
        self.tabs.addTab(self.side_by_side, "Side by side")
        self.tabs.addTab(self.agreement, "Agreement")
        self.dashboard = DashboardView()
        self.tabs.addTab(self.dashboard, "Dashboard")
        self._dashboard_stale = True
        self.tabs.currentChanged.connect(self._on_tab)
        self.adjudication = AdjudicationPanel(self.project.settings().diagnosis_classes)
        self.adjudication.draft_changed.connect(self.enlarged.set_draft)
        self.adjudication.record_requested.connect(self.record_decision)
        self.enlarged.regionClicked.connect(self.adjudication.toggle_region)
        self.status = QLabel("Loading every reader's answers…")
        self.status.setWordWrap(True)
        self.keys = QLabel(keys_line())
        self.keys.setWordWrap(True)
        self.keys.setToolTip("\n".join(f"{' / '.join(b.keys)}: {b.text}" for b in BINDINGS.values()))
        left = QWidget()
        column = QVBoxLayout(left)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.queues, 1)
        column.addWidget(self.keys)
        left.setMinimumWidth(QUEUE_MIN_WIDTH)
        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(self.tabs)
        splitter.addWidget(self.adjudication)
        splitter.setChildrenCollapsible(False)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([300, 1000, 280])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.status)
        self.queues.queue_changed.connect(lambda _: self._refresh_queue())
        self.queues.finding_changed.connect(self._on_finding_filter)
        self.queues.selected.connect(self._on_selected)
        self.loader = ImageLoader(self)   # the enlarged canvas's photos: fit copies, full detail on zoom
        self.loader.ready.connect(self._on_enlarged_photo)
        self.loader.failed.connect(lambda image_id, message: self.enlarged.canvas.show_message(image_id, message))
        self.loader.detailReady.connect(self.enlarged.canvas.set_detail)
        self.enlarged.canvas.detailWanted.connect(self.loader.request_detail)
        self.enlarged.canvas.resized.connect(lambda: setattr(self.loader, "fit_size", self.enlarged.canvas.fit_size()))
        self._bind_keys()

    def _bind_keys(self) -> None:
        canvas = self.enlarged.canvas
        actions: dict[str, Callable[[], object]] = {
            **{name: functools.partial(self.show_source, name) for name in SOURCES},
            "side_by_side": self._toggle_side_by_side,
            "next": lambda: self.queues.step(1),
            "previous": lambda: self.queues.step(-1),
            "fit": canvas.fit,
            "actual_size": canvas.actual_size,
            "zoom_in": lambda: canvas.zoom_by(1.25),
            "zoom_out": lambda: canvas.zoom_by(0.8),
            "present": lambda: self.adjudication.set_present(True),
            "absent": lambda: self.adjudication.set_present(False),
            "reason": self.adjudication.focus_reason,
            "record": self.record_decision,
            "leave_reason": self._keys_to_photo,
            "close": self.close,
            "quit": self.quit_application,
        }
        self.shortcuts: dict[str, list[QShortcut]] = {}
        for name, act in actions.items():
            for key in BINDINGS[name].keys:
                shortcut = QShortcut(QKeySequence(key), self)
                shortcut.activated.connect(act)
                self.shortcuts.setdefault(name, []).append(shortcut)

    def _on_tab(self, _index: int) -> None:
        shown = self.tabs.currentWidget()
        self.adjudication.setVisible(shown in (self.enlarged, self.side_by_side))
        if shown is self.dashboard:
            self.request_dashboard()
        elif self.current:
            self._show_current()

    def request_dashboard(self) -> None:
        """Numbers and figures on a worker; again after a decision (``_dashboard_stale``)."""
        if not self._dashboard_stale:
            return
        self._dashboard_stale = False
        self.dashboard.show_pending()
        db, reader_id = self.project.database, self.review.reader.id
        self._submit(("dashboard",), lambda: compute_dashboard(db, reader_id))

    def show_source(self, name: str) -> None:
        """Reader 1–3, consensus or model on the enlarged canvas (keys 1, 2, 3, C, M)."""
        self.tabs.setCurrentWidget(self.enlarged)
        self.enlarged.show_source(name)
        if name == MODEL and self.current and self.data is not None:
            self._show_model(*self.current)

    def _toggle_side_by_side(self) -> None:
        self.tabs.setCurrentWidget(self.enlarged if self.tabs.currentWidget() is self.side_by_side
                                   else self.side_by_side)

    # Jobs ---------------------------------------------------------------------------------------
    def _submit(self, tag: tuple, work, takes_cancel: bool = False) -> None:
        """``work()`` (``work(cancel)`` with ``takes_cancel``: a pass over every photo) off the GUI
        thread; its result comes to ``_on_done(tag, result)``. Closing the window cancels it."""
        job = (lambda _report, cancel: work(cancel)) if takes_cancel else (lambda _report, _cancel: work())
        worker = Worker(job, name="Review", pool=self.jobs, owner=self)
        worker.returned.connect(lambda result: self._on_done(tag, result))
        worker.errored.connect(lambda message: self._on_failed(tag, message))
        self.workers = {running for running in self.workers if not running.has_ended}
        self.workers.add(worker)
        worker.start()

    def _on_done(self, tag: tuple, result) -> None:
        kind = tag[0]
        if kind == "data":
            self.data = result
            answering = len({reader for reads in result.reads.values() for reader in reads})
            self.status.setText(f"{len(result.images)} images, {answering} readers assigned; "
                                f"consensus needs {result.consensus.k} of 3 readers.")
            queues = [ALL_IMAGES, DISAGREEMENTS] + ([MODEL_VS_CONSENSUS] if self.models else [])
            self.queues.set_queues(queues)
            self._refresh_queue()
            self._request_agreement()
            if self.models:
                skipped: list[str] = []   # why photos were left out (unreadable, changed since import): with its run
                self._submit(("model_queue", skipped),
                             lambda cancel: model_disagreements(result, self.models, self.runner, cancel, skipped),
                             takes_cancel=True)
        elif kind == "agreement" and tag[1] == self.queues.current_finding() and self.data is not None:
            names = {i: f"{r.name} ({role_text(r.role)})" for i, r in self.data.readers.items()}
            self.agreement.show_agreement(result, names, self.finding_names)
        elif kind == "photo":
            self._pending_photos.discard(tag[1])
            self.photos[tag[1]] = result
            while len(self.photos) > PHOTOS_KEPT:
                self.photos.pop(next(iter(self.photos)))
            if self.current and self.current[0] == tag[1]:
                self._show_current()
        elif kind == "model" and self.current == (tag[2], tag[3]):
            self._show_model_view(result)
        elif kind == "dashboard":
            self.dashboard.show_dashboard(result)
        elif kind == "answers":
            if self.data is not None and tag[1] == self.decisions_here and result.in_force != self.data.answers.in_force:
                self.data.answers = result
                self._refresh_queue(quiet=True)
        elif kind == "model_queue":
            self.model_queue = result
            skipped = tag[1]
            if skipped:   # photos the model could not be run on: the rest have their calls
                count = len(skipped)
                self.status.setText(f"The model vs consensus queue leaves out {count} photo{'s' if count != 1 else ''}: "
                                    + " ".join(skipped))
            if self.queues.current_queue() == MODEL_VS_CONSENSUS:
                self._refresh_queue()

    def _on_failed(self, tag: tuple, message: str) -> None:
        kind = tag[0]
        if kind == "photo":
            self._pending_photos.discard(tag[1])
            self.photo_errors[tag[1]] = message
            if self.current and self.current[0] == tag[1]:
                self._show_current()
        elif kind == "model":
            if self.current == (tag[2], tag[3]):
                self.side_by_side.show_model("Model", [message], None, message)
                self.enlarged.set_model("Model", [message])
        elif kind == "agreement":
            self.agreement.show_pending(message)
        elif kind == "dashboard":
            self._dashboard_stale = True
            self.dashboard.show_pending(message)
        else:
            self.model_queue = {} if kind == "model_queue" else self.model_queue
            self.status.setText(message)

    def _request_agreement(self) -> None:
        if self.data is None:
            return
        finding = self.queues.current_finding()
        self.agreement.show_pending()
        consensus = self.data.consensus
        self._submit(("agreement", finding), lambda: compute_agreement(consensus, finding))

    # Queues -------------------------------------------------------------------------------------
    def _on_finding_filter(self, _finding) -> None:
        if self.data is None:
            return
        self._refresh_queue()
        self._request_agreement()

    def reload_answers(self) -> None:
        """Decisions other reviewers recorded since the screen loaded, read off the GUI thread; the
        queue's marks follow, the entry on screen and its draft stay (the screen comes to the front)."""
        if self.data is not None:
            db, recorded = self.project.database, self.decisions_here
            self._submit(("answers", recorded), lambda: adjudicated_answers(db))

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.ActivationChange and self.isActiveWindow():
            self.reload_answers()

    def _refresh_queue(self, quiet: bool = False) -> None:
        """The chosen queue, each entry marked with what reviewers decided on it (``queue_marks``);
        "Hide adjudicated" leaves the open ones (and the one on screen). ``quiet``: the entry on
        screen is not opened again (its draft stays)."""
        if self.data is None:
            return
        queue, finding = self.queues.current_queue(), self.queues.current_finding()
        if queue == ALL_IMAGES:
            rows = self._all_images(self.data, finding)
        elif queue == DISAGREEMENTS:
            rows = self._disagreements(self.data, finding)
        elif self.model_queue is None:
            self.queues.show_items([], "The model is reading every photo…")
            return
        else:
            rows = self._model_calls(self.data, self.model_queue, finding)
        settled = sum(done for *_, done in rows)
        if queue == ALL_IMAGES:
            note = f"{len(rows)} image{'s' if len(rows) != 1 else ''}: {settled} adjudicated, {len(rows) - settled} not"
        else:
            note = f"{len(rows) - settled} to adjudicate, {settled} adjudicated"
        if self.queues.hide_settled.isChecked():
            on_screen = self.queues.current() if quiet else None
            rows = [row for row in rows if not row[4] or (row[0], row[1]) == on_screen]
            note += " (adjudicated hidden)" if settled else ""
        self.queues.show_items([(image_id, code, text) for image_id, code, text, _, _ in rows], note,
                               [tip for *_, tip, _ in rows], quiet)

    def _who(self, reviewer_id: int) -> str:
        if reviewer_id == self.review.reader.id:
            return "you"
        info = self.data.readers.get(reviewer_id) if self.data is not None else None
        return info.name if info is not None else f"reviewer {reviewer_id}"

    def _all_images(self, data: ReviewData, finding: str | None) -> list[QueueRow]:
        """Every image in id order, with whatever reviewers decided on it (on ``finding`` if chosen)."""
        rows: list[QueueRow] = []
        for record in data.images:
            mark = queue_mark(data.answers, record.id, finding or EVERYTHING, self.finding_names, self._who)
            text = f"{record.path.name} (image {record.id})\n{mark}" if mark else f"{record.path.name}\nimage {record.id}"
            rows.append((record.id, finding, text, text.replace("\n", " — "), bool(mark)))
        return rows

    def _disagreements(self, data: ReviewData, finding: str | None) -> list[QueueRow]:
        """Not yet adjudicated first (``annotate.adjudication.review_queue``), then the settled ones."""
        names = self.finding_names
        entries = review_queue(data.consensus, data.answers.settled, finding,
                               [record.id for record in data.images])
        rows: list[QueueRow] = []
        for entry in entries:
            name = f"{data.image(entry.image_id).path.name} (image {entry.image_id})"
            for settled, reasons in ((False, entry.pending), (True, entry.settled)):
                for code, why in reasons.items():
                    what = names.get(code, code) if code is not None else "Diagnosis"
                    line = queue_mark(data.answers, entry.image_id, code, names, self._who) if settled else ""
                    text = f"{name}\n{line or f'{what}: {why}'}"
                    tip = f"{name} — {line}; the readers: {why}" if settled else text.replace("\n", " — ")
                    rows.append((entry.image_id, DIAGNOSIS if code is None else code, text, tip, settled))
        return rows

    def _model_calls(self, data: ReviewData, model_queue: dict[int, dict[str, str]],
                     finding: str | None) -> list[QueueRow]:
        """The model's calls against the consensus, the ones no reviewer has decided first."""
        rows: list[QueueRow] = []
        for image_id, calls in model_queue.items():
            for code, why in calls.items():
                if finding not in (None, code):
                    continue
                mark = queue_mark(data.answers, image_id, code, self.finding_names, self._who)
                call = f"{self.finding_names.get(code, code)}: {why}"
                name = f"{data.image(image_id).path.name} (image {image_id})"
                tip = f"{name} — {mark}; {call}" if mark else f"{name} — {call}"
                rows.append((image_id, code, f"{name}\n{mark or call}", tip, bool(mark)))
        rows.sort(key=lambda row: row[4])   # stable: the model's order within each group
        return rows

    # The side-by-side ---------------------------------------------------------------------------
    def _on_selected(self, image_id: int, finding: str | None) -> None:
        if self.data is None:   # the queues list nothing before the data is in
            return
        target = None if finding == DIAGNOSIS else (finding or self._likely_finding(image_id))
        finding = target or self._likely_finding(image_id)
        self.current = (image_id, finding)
        answers = self.data.answers
        latest = answers.finding(image_id, target) if target is not None else None
        self.adjudication.set_target(image_id, target, self.finding_names.get(finding, finding),
                                     self.data.consensus_state(image_id, finding), latest,
                                     self.data.image(image_id).path.name, answers.diagnoses.get(image_id))
        self._show_current()

    def record_decision(self) -> None:
        """Ctrl+Enter / Record: the draft becomes the answer in force (an audited row of its own)."""
        draft = self.adjudication.draft()
        if self.data is None or draft["image_id"] is None:
            return
        try:
            entry = record_adjudication(self.project.database, self.review.reader.id, **draft)
        except OctantError as error:
            self.adjudication.show_message(str(error))
            return
        self._dashboard_stale = True
        self.decisions_here += 1
        try:   # other reviewers' decisions since the screen opened get their marks too
            self.data.answers = adjudicated_answers(self.project.database)
        except OctantError:
            self.data.answers.add(entry)
        following = self.queues.neighbour(1)
        self._refresh_queue()
        if following is not None:
            self.queues.select(following)
        self.adjudication.show_message(f"Recorded: {self.data.image(entry.image_id).path.name}.")
        self.enlarged.canvas.setFocus()

    def _likely_finding(self, image_id: int) -> str:
        """Without a finding chosen: the first one any reader marked, else the first finding."""
        for state in (self.data.reads.get(image_id, {}) if self.data else {}).values():
            for code in self.finding_names:
                if state.regions.get(code):
                    return code
        return next(iter(self.finding_names))

    def _show_current(self) -> None:
        data = self.data
        if self.current is None or data is None:
            return
        image_id, finding = self.current
        record = data.image(image_id)
        colour = self.colours.get(finding, QColor("white"))
        if self.tabs.currentWidget() is self.side_by_side:
            photo = self.photos.get(image_id)
            if photo is None and image_id not in self.photo_errors and image_id not in self._pending_photos:
                self._pending_photos.add(image_id)
                size = (record.width, record.height)
                self._submit(("photo", image_id), lambda: _photo_as_imported(record, size))
            self.side_by_side.show_image(data, image_id, finding, colour, photo)
            if image_id in self.photo_errors:
                for panel in self.side_by_side.readers + [self.side_by_side.consensus]:
                    panel.picture.set_image(None, self.photo_errors[image_id])
        else:
            new_image = self.enlarged.canvas.image_id != image_id
            self.enlarged.show_image(data, image_id, finding, colour)
            if new_image:
                self.loader.fit_size = self.enlarged.canvas.fit_size()
                self.loader.request(image_id, record.path, (record.width, record.height), record.sha256)
                self._prefetch_next()
        # The activation map costs a full-resolution decode and a forward pass: only when it is shown,
        # so that moving through the queue does not wait behind it on a small CPU.
        if self.tabs.currentWidget() is self.side_by_side or self.enlarged.source == MODEL:
            self._show_model(image_id, finding)

    def _prefetch_next(self) -> None:
        following = self.queues.neighbour(1)
        if following is None or self.current is None or self.data is None:
            return
        if following[0] != self.current[0]:
            record = self.data.image(following[0])
            self.loader.prefetch(record.id, record.path, (record.width, record.height), record.sha256)

    def _on_enlarged_photo(self, image_id: int, display, shown) -> None:
        self.enlarged.set_photo(image_id, display, shown)

    def _show_model(self, image_id: int, finding: str) -> None:
        name = self.finding_names.get(finding, finding)
        model = self.models.get(finding)
        if model is None:
            message = f"No active model for {name.lower()} — train one in File → Train models…"
            self.side_by_side.show_model("Model", [message], None, message)
            self.enlarged.set_model("Model", [message])
            return
        cached = self.runner.cached(model.id, image_id)
        if cached is not None:
            self._show_model_view(cached)
            return
        self.side_by_side.show_model(f"Model · {model.name}", ["Computing the activation map…"], None,
                                     "Computing the activation map…")
        self.enlarged.set_model(f"Model · {model.name}", ["Computing the activation map…"])
        if self.data is None:
            return
        record = self.data.image(image_id)
        self._submit(("model", model.id, image_id, finding), lambda: self.runner.view(model, record))

    def _show_model_view(self, view: ModelView) -> None:
        if self.current is None or self.data is None:
            return
        finding = self.current[1]
        model = self.models[finding]
        found = self.data.consensus_state(view.image_id, finding)
        consensus = f"Consensus: {found.state if found else 'not yet'}"
        if view.probability is None:   # a red-free photo, as `main.py screen` says
            self.side_by_side.show_model(f"Model · {model.name}", [SCREENING_RED_FREE_NOTE, consensus], None,
                                         SCREENING_RED_FREE_NOTE)
            self.enlarged.set_model(f"Model · {model.name}", [SCREENING_RED_FREE_NOTE, consensus])
            return
        threshold = model_threshold(model)
        call = "present" if view.probability >= threshold else "absent"
        lines = [f"<b>p = {view.probability:.2f}</b> (threshold {threshold:.2f}) → {call}", consensus,
                 "Activation map (Son et al., Fig. 3) over the photo cropped to its field of view."]
        self.side_by_side.show_model(f"Model · {model.name}", lines, view.overlay)
        self.enlarged.set_model(f"Model · {model.name}", lines[:2], view)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._redraw.start()

    def _keys_to_photo(self) -> None:
        """Esc: out of the reason field, where 1, 2, C… were typed into the reason instead."""
        canvas = self.enlarged.canvas
        (canvas if canvas.isVisible() else self).setFocus(Qt.FocusReason.ShortcutFocusReason)

    def quit_application(self) -> None:
        """Ctrl+Q quits here as in the workstation (whose close closes this screen too): without a
        window manager there was no way out of this window from the keyboard."""
        self.quitRequested.emit()
        self.close()

    def closeEvent(self, event) -> None:
        self.loader.shutdown(1000)
        for worker in list(self.workers):   # queued ones dropped; running ones joined at quit (ui.background)
            worker.cancel()
        super().closeEvent(event)
        self.closed.emit()


def open_review_window(project: ProjectHandle, reader_id: int, parent: QWidget | None = None) -> ReviewWindow:
    """Open and show the reviewers' screen (AccessDeniedError for a reader who is not a reviewer)."""
    window = ReviewWindow(project, reader_id, parent)
    window.show()
    window.activateWindow()   # the keys go to it, also where no window manager moves the focus
    return window


def _photo_as_imported(record: ImageRecord, size: tuple[int, int]) -> DisplayImage:
    """The side-by-side photo, refused when its file holds another photograph than the one imported
    (checked after decoding, so that damage keeps its own sentence), as the workstation refuses it."""
    return decode_for_display(record.path, size, long_side=PHOTO_LONG_SIDE, sha256=record.sha256)
