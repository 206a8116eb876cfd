"""The in-clinic training panel: choose a network and finding, see what the consensus offers,
edit the papers' hyper-parameters, pick a device, start / cancel / resume, watch the curves and
the ETA, read the results, look at the activation maps, and promote a model for pre-screening.

Training runs on a ``ui.background.Worker``; the window stays responsive. Runs live in
``<project>/models/<name>/`` (checkpoints and ``history.json`` from ``models.engine.training``), so a
run cancelled today resumes tomorrow from its last finished epoch.
"""
from __future__ import annotations

import datetime as dt
import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from models.engine.training import ProgressEvent, TrainConfig
from models.findings.training import TrainingOutcome, saved_model_gallery, train_attention, train_guided
from storage.errors import OctantError
from storage.project import ProjectHandle
from ui.background import Worker
from ui.training import tables
from ui.training.curves import TrainingCurves
from ui.training.gallery import ActivationGallery
from ui.training.setup import GUIDED, TrainingSetup

GALLERY_SIZE = 8             # validation photos whose activation maps are shown after a run
# Before any run: what the empty curves and tables are for (they looked like a broken screen).
IDLE_NOTE = ("Start trains the chosen network on the consensus data at the left: the curves above fill in as "
             "it runs, the Results tab when it ends. A model chosen in the Models tab shows its figures there.")


def format_eta(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "ETA –"
    return f"ETA {dt.timedelta(seconds=int(round(seconds)))}"


class TrainingPanel(QWidget):
    """Everything about training for one open project (``storage.project.ProjectHandle``)."""

    runStarting = Signal(object)   # the ui.background.Worker, before it starts
    runFinished = Signal(object)   # models.findings.training.TrainingOutcome (cancelled or not)
    runFailed = Signal(str)
    galleryShown = Signal(int)     # number of activation maps on show

    def __init__(self, project: ProjectHandle, parent: QWidget | None = None, *, reader_id: int | None = None):
        super().__init__(parent)
        self.project = project
        self.reader_id = reader_id   # the reviewer or admin: models' label snapshots (storage.predictions)
        self.run: Worker | None = None
        self.gallery_run: Worker | None = None
        self.outcome: TrainingOutcome | None = None
        self.last_error: str | None = None
        self.history: list[dict] = []
        self.setup = TrainingSetup(project)
        self._build()
        self.setup.runChosen.connect(self._show_saved_run)
        self.setup.run_name.textChanged.connect(self._refresh_buttons)
        self.setup._network_changed()

    def _build(self) -> None:
        right = QWidget()
        column = QVBoxLayout(right)
        column.setContentsMargins(0, 0, 0, 0)
        column.addLayout(self._controls())
        self.curves = TrainingCurves()
        self.results = tables.results_table()
        self.confusion = tables.confusion_table()
        results = QSplitter(Qt.Orientation.Horizontal)
        results.addWidget(self.results)
        results.addWidget(self.confusion)
        self.gallery = ActivationGallery()
        self.tabs = QTabWidget()
        self.tabs.addTab(results, "Results")
        self.tabs.addTab(self.gallery, "Activation maps")
        self.tabs.addTab(self._models_page(), "Models")
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.curves)
        split.addWidget(self.tabs)
        split.setSizes([300, 360])
        column.addWidget(split, 1)
        outer = QSplitter(Qt.Orientation.Horizontal)
        outer.addWidget(self.setup)
        outer.addWidget(right)
        outer.setStretchFactor(1, 1)
        outer.setSizes([480, 800])
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addWidget(outer)

    def _controls(self) -> QVBoxLayout:
        column = QVBoxLayout()
        row = QHBoxLayout()
        self.start_button = QPushButton("Start")
        self.resume_button = QPushButton("Resume")
        self.cancel_button = QPushButton("Cancel")
        self.start_button.setToolTip("Start a new run (an earlier run of this name is replaced)")
        self.resume_button.setToolTip("Continue the run of this name from its last finished epoch")
        self.start_button.clicked.connect(lambda: self.start(resume=False))
        self.resume_button.clicked.connect(lambda: self.start(resume=True))
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setFormat("%p%")
        self.eta = QLabel("ETA –")
        for widget in (self.start_button, self.resume_button, self.cancel_button):
            row.addWidget(widget)
        row.addWidget(self.progress, 1)
        row.addWidget(self.eta)
        self.status = QLabel(IDLE_NOTE)
        self.status.setWordWrap(True)
        self.status.setObjectName("trainingStatus")
        column.addLayout(row)
        column.addWidget(self.status)
        return column

    def _models_page(self) -> QWidget:
        page = QWidget()
        column = QVBoxLayout(page)
        self.models = tables.models_table()
        self.promote_button = QPushButton("Use for pre-screening and review")
        self.promote_button.setToolTip("Make the selected model the active one for its network")
        self.promote_button.clicked.connect(self.promote_selected)
        self.maps_button = QPushButton("Activation maps")
        self.maps_button.setToolTip("The selected guided model's maps on the validation photos it was measured on")
        self.maps_button.clicked.connect(self.show_selected_maps)
        self.models.itemSelectionChanged.connect(self._show_selected_model)
        column.addWidget(self.models)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.maps_button)
        row.addWidget(self.promote_button)
        column.addLayout(row)
        self._refresh_models()
        return page

    def run_dir(self):
        return self.setup.run_dir()

    def _show_saved_run(self) -> None:
        """A run of this name already on disk: show its curves and offer to resume it."""
        rows = self.setup.saved_rows()
        self.history = rows
        epochs = self.setup.engine_form.value().epochs
        self.curves.clear(epochs)
        self.curves.set_history(rows)
        if not self.running():
            self.progress.setValue(int(1000 * min(1.0, len(rows) / max(1, epochs))))
            self._say(f"{len(rows)} epoch(s) of '{self.setup.run_name.text()}' are saved with their settings; "
                      "Resume continues them, Start begins again." if rows else IDLE_NOTE)
        self._refresh_buttons()

    def running(self) -> bool:
        """A run whose outcome has not arrived yet, unless ``shutdown`` has joined it."""
        return self._running_worker() is not None

    def _running_worker(self) -> Worker | None:
        run = self.run
        return run if run is not None and run.is_running and not run.has_ended else None

    def _say(self, text: str, problem: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color: #b00020; font-weight: 600;" if problem else "")

    def _refresh_buttons(self) -> None:
        busy = self.running()
        named = bool(self.setup.run_name.text().strip())
        self.setup.set_busy(busy)
        self.start_button.setEnabled(not busy and named)
        self.resume_button.setEnabled(not busy and named and (self.run_dir() / "last.pt").is_file())
        self.cancel_button.setEnabled(busy)

    # ---------- running ----------
    def start(self, resume: bool = False) -> None:
        if self.running():
            return
        engine = self.setup.engine_config()
        self.history = self.setup.saved_rows() if resume else []
        self.curves.clear(engine.epochs)
        self.curves.set_history(self.history)
        self.outcome, self.last_error = None, None
        self.progress.setValue(0)
        self.eta.setText("ETA –")
        self._say("Preparing the photos…" if not resume else "Resuming…")
        self.run = Worker(self._job(engine, resume), name="Training", owner=self)
        self.run.yielded.connect(self._on_progress)
        self.run.returned.connect(self._on_finished)
        self.run.errored.connect(self._on_failed)
        self.run.aborted.connect(self._on_failed)
        self.runStarting.emit(self.run)
        self.run.start()
        self._refresh_buttons()

    def _job(self, engine: TrainConfig, resume: bool):
        setup, project = self.setup, self.project
        name, share = setup.run_name.text().strip(), setup.validation_share.value()
        run_dir = setup.run_dir()
        if setup.network_kind() == GUIDED:
            guided = setup.guided_config()
            return lambda progress, cancel: train_guided(
                project, guided, engine, run_dir, name, validation_fraction=share, resume=resume,
                progress=progress, cancel=cancel, gallery_size=GALLERY_SIZE)
        attention = setup.attention_config()
        return lambda progress, cancel: train_attention(
            project, attention, engine, run_dir, name, validation_fraction=share, resume=resume,
            progress=progress, cancel=cancel)

    def cancel(self) -> None:
        run = self._running_worker()
        if run is not None:
            run.cancel()
            self._say("Cancelling after this batch…")
            self.cancel_button.setEnabled(False)

    def _on_progress(self, event: ProgressEvent) -> None:
        batches = max(1, event.batches)
        if event.kind == "batch":
            done = (event.epoch - 1 + event.batch / batches) / max(1, event.epochs)
            self.progress.setValue(int(1000 * done))
            self.eta.setText(format_eta(event.eta_s))
            self.curves.add_batch(event.epoch - 1 + event.batch / batches, event.loss)
            self._say(f"Epoch {event.epoch} of {event.epochs}, batch {event.batch} of {event.batches}: "
                      f"loss {event.loss:.4f}")
        elif event.kind == "epoch":
            self.history = [r for r in self.history if r.get("epoch", 0) < event.epoch]
            self.history.append({"epoch": event.epoch, "train_loss": event.loss, **event.metrics})
            self.curves.set_history(self.history)
            self.progress.setValue(int(1000 * event.epoch / max(1, event.epochs)))
            self.eta.setText(format_eta(event.eta_s))
            shown = ", ".join(f"{k.removeprefix('val_')} {v:.3f}" for k, v in event.metrics.items()
                              if k in ("val_loss", "val_auroc", "val_accuracy"))
            self._say(f"Epoch {event.epoch} of {event.epochs} done: {shown}")
        elif event.kind == "done":
            self.progress.setValue(1000)
            self.eta.setText(format_eta(0.0))

    def _on_finished(self, outcome: TrainingOutcome) -> None:
        self.outcome = outcome
        result = outcome.result
        weights = outcome.weights_path   # None: not finished
        if result.cancelled or weights is None:
            self._say(f"Cancelled; {len(result.history)} finished epoch(s) are saved, Resume continues."
                      if result.history else "Cancelled before the first epoch ended; nothing was saved.")
        else:
            tables.fill_results(self.results, outcome.metrics)
            tables.fill_confusion(self.confusion, outcome.metrics)
            self.gallery.show_items(outcome.gallery)
            self.galleryShown.emit(len(outcome.gallery))
            how = " (stopped early)" if result.stopped_early else (" (time limit)" if result.timed_out else "")
            left_out = (f" {len(outcome.skipped)} photo(s) left out: {' '.join(outcome.skipped)}"
                        if outcome.skipped else "")
            self._say(f"Finished{how}: best of {len(result.history)} epoch(s) saved to "
                      f"{weights.name} and registered as model {outcome.model_id}.{left_out}")
            self._refresh_models()
        self.history = list(result.history) or self.history
        self.curves.set_history(self.history)
        self._refresh_buttons()
        self.runFinished.emit(outcome)

    def _on_failed(self, message: str) -> None:
        self.last_error = message
        self._say(message, problem=True)
        self.progress.setValue(0)
        self.eta.setText("ETA –")
        self._refresh_buttons()
        self.runFailed.emit(message)

    def shutdown(self, timeout_ms: int = 1000) -> None:
        """Closing the window: cancel a running training; the engine stops after the current batch
        (photo decoding before the first batch cannot be interrupted). What has not stopped within
        ``timeout_ms`` is joined when the application quits (``ui.background``)."""
        run = self._running_worker()
        if run is not None:
            run.cancel()
            run.wait(timeout_ms)

    # ---------- models ----------
    def _refresh_models(self) -> None:
        from storage.predictions import list_models

        tables.fill_models(self.models, list_models(self.project.database, reader_id=self.reader_id))
        self._show_selected_model()

    def _show_selected_model(self) -> None:
        """A registered model's metrics (from the registry) in the results tables."""
        from storage.predictions import list_models

        model_id = self.selected_model_id()
        chosen = [m for m in list_models(self.project.database, reader_id=self.reader_id) if m.id == model_id]
        self.promote_button.setEnabled(bool(chosen))
        self.maps_button.setEnabled(bool(chosen) and chosen[0].network.startswith("guided:"))
        if chosen:
            tables.fill_results(self.results, chosen[0].metrics)
            tables.fill_confusion(self.confusion, chosen[0].metrics)

    def selected_model_id(self) -> int | None:
        items = self.models.selectedItems()
        return items[0].data(Qt.ItemDataRole.UserRole) if items else None

    def promote(self, model_id: int) -> None:
        """Make ``model_id`` the active model of its network (pre-screening and review use it)."""
        from storage.predictions import activate_model

        try:
            activate_model(self.project.database, model_id)
        except OctantError as error:
            self._say(str(error), problem=True)
            return
        self._say(f"Model {model_id} is now used for pre-screening and review.")
        self._refresh_models()

    def show_selected_maps(self) -> None:
        """Compute the selected model's activation maps off the GUI thread (photos are decoded)."""
        from storage.predictions import list_models

        model_id = self.selected_model_id()
        chosen = [m for m in list_models(self.project.database, reader_id=self.reader_id) if m.id == model_id]
        if not chosen or (self.gallery_run is not None and self.gallery_run.is_running):
            return
        project, model = self.project, chosen[0]
        self.maps_button.setEnabled(False)
        self._say(f"Computing the activation maps of model {model.id}…")
        self.gallery_run = Worker.call(lambda: saved_model_gallery(project, model), name="Activation maps",
                                       owner=self)
        self.gallery_run.returned.connect(self._on_gallery)
        self.gallery_run.errored.connect(self._on_gallery_failed)
        self.gallery_run.aborted.connect(self._on_gallery_failed)
        self.gallery_run.start()

    def _on_gallery(self, items: list) -> None:
        self.gallery.show_items(items)
        self.tabs.setCurrentWidget(self.gallery)
        self._say(f"{len(items)} activation map(s) of the selected model on its validation photos.")
        self._show_selected_model()
        self.galleryShown.emit(len(items))

    def _on_gallery_failed(self, message: str) -> None:
        self._say(message, problem=True)
        self._show_selected_model()

    def promote_selected(self) -> None:
        model_id = self.selected_model_id()
        if model_id is not None:
            self.promote(model_id)
