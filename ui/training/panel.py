"""The in-clinic training panel: choose a network and finding, see what the consensus offers,
edit the papers' hyper-parameters, pick a device, start / cancel / resume, watch the curves and
the ETA, read the results, look at the activation maps, and promote a model for pre-screening.

Training runs on a QThread (``ui.training.worker``); the window stays responsive. Runs live in
``<project>/models/<name>/`` (checkpoints and ``history.json`` from ``models.training``), so a
run cancelled today resumes tomorrow from its last finished epoch.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QHBoxLayout,
                               QLabel, QLineEdit, QProgressBar, QPushButton, QScrollArea,
                               QSplitter, QStackedWidget, QTabWidget, QVBoxLayout, QWidget)

from models.attention_mask import AttentionConfig, attention_train_config
from models.guided import ATROUS_RATES, GuidedConfig, guided_train_config
from models.training import ProgressEvent, TrainConfig
from storage.errors import OctantError
from ui.training import tables
from ui.training.curves import TrainingCurves
from ui.training.form import ConfigForm
from ui.training.gallery import ActivationGallery
from ui.training.runner import AttentionRequest, GuidedRequest, RunOutcome, run_attention, run_guided
from ui.training.summary import DataSummary, summarise_training_data
from ui.training.worker import TrainingThread

DEVICES = ("auto", "cpu", "cuda", "mps")
GUIDED = "guided"
ATTENTION = "attention-mask"
# Engine fields the panel sets itself (device combo) or that only benches use.
HIDDEN_ENGINE_FIELDS = ("device", "log_every")
ENGINE_LABELS = {"lr": "learning rate", "cpu_bf16": "bf16 on the CPU", "amp": "fp16 on CUDA (AMP)",
                 "max_batches_per_epoch": "max batches per epoch", "time_limit_s": "time limit (s)",
                 "early_stopping_patience": "early stopping patience", "num_workers": "loader processes"}
GUIDED_LABELS = {"input_size": "input size (px)", "width": "width (stem channels)",
                 "guidance_weight": "guidance weight λ (eq. 3)", "epsilon": "ε (eq. 2)"}
ATTENTION_LABELS = {"input_size": "input size (px)", "backbone": "EfficientNet (timm name)",
                    "masked": "attention mask (off: the paper's baseline)"}


def available_devices() -> dict[str, bool]:
    """Which device choices ``models.device.pick_device`` accepts on this computer."""
    from models.device import pick_device

    usable = {}
    for name in DEVICES:
        try:
            pick_device(name)
            usable[name] = True
        except OctantError:
            usable[name] = False
    return usable


def format_eta(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "ETA –"
    return f"ETA {dt.timedelta(seconds=int(round(seconds)))}"


class TrainingPanel(QWidget):
    """Everything about training for one open project (``storage.project.ProjectHandle``)."""

    runStarting = Signal(object)   # TrainingThread, before its thread starts
    runFinished = Signal(object)   # RunOutcome (cancelled or not)
    runFailed = Signal(str)

    def __init__(self, project, parent: QWidget | None = None):
        super().__init__(parent)
        self.project = project
        self.run: TrainingThread | None = None
        self.outcome: RunOutcome | None = None
        self.last_error: str | None = None
        self.history: list[dict] = []
        self.summary: DataSummary = summarise_training_data(project)
        self._build()
        self._network_changed()

    # ---------- layout ----------
    def _build(self) -> None:
        left = QWidget()
        column = QVBoxLayout(left)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self._choice_box())
        self.setup_tabs = QTabWidget()
        self.setup_tabs.addTab(self._data_page(), "Consensus data")
        self._parameter_pages(self.setup_tabs)
        column.addWidget(self.setup_tabs, 1)
        left.setMinimumWidth(470)

        right = QWidget()
        rcol = QVBoxLayout(right)
        rcol.setContentsMargins(0, 0, 0, 0)
        rcol.addLayout(self._controls())
        self.curves = TrainingCurves()
        self.tabs = QTabWidget()
        self.results = tables.results_table()
        self.confusion = tables.confusion_table()
        results = QSplitter(Qt.Orientation.Horizontal)
        results.addWidget(self.results)
        results.addWidget(self.confusion)
        self.gallery = ActivationGallery()
        self.tabs.addTab(results, "Results")
        self.tabs.addTab(self.gallery, "Activation maps")
        self.tabs.addTab(self._models_page(), "Models")
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.curves)
        split.addWidget(self.tabs)
        split.setSizes([300, 360])
        rcol.addWidget(split, 1)

        outer = QSplitter(Qt.Orientation.Horizontal)
        outer.addWidget(left)
        outer.addWidget(right)
        outer.setStretchFactor(1, 1)
        outer.setSizes([480, 800])
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addWidget(outer)

    def _choice_box(self) -> QGroupBox:
        box = QGroupBox("Network")
        form = QFormLayout(box)
        self.network = QComboBox()
        self.network.addItem("Guided network, one finding (Son et al.)", GUIDED)
        self.network.addItem("Attention-mask classifier, diagnosis (Himbitskaya et al.)", ATTENTION)
        self.finding = QComboBox()
        for spec in self.project.settings().findings:
            self.finding.addItem(self._finding_label(spec.code), spec.code)
        self.run_name = QLineEdit()
        self.device = QComboBox()
        for name, usable in available_devices().items():
            self.device.addItem(name)
            if not usable:
                self.device.model().item(self.device.count() - 1).setEnabled(False)
        self.network.currentIndexChanged.connect(self._network_changed)
        self.finding.currentIndexChanged.connect(self._finding_changed)
        self.run_name.textChanged.connect(self._refresh_buttons)
        form.addRow("network", self.network)
        form.addRow("finding", self.finding)
        form.addRow("run name", self.run_name)
        form.addRow("device", self.device)
        return box

    def _data_page(self) -> QWidget:
        page = QWidget()
        column = QVBoxLayout(page)
        self.data_note = QLabel()
        self.data_note.setWordWrap(True)
        refresh = QPushButton("Refresh")
        refresh.setToolTip("Count again: readers may have finished more photos since the panel opened")
        refresh.clicked.connect(self.refresh_data)
        row = QHBoxLayout()
        row.addWidget(self.data_note, 1)
        row.addWidget(refresh)
        self.finding_counts = tables.finding_table(self.summary)
        self.class_counts = tables.class_table(self.summary)
        self._data_column = column
        column.addLayout(row)
        column.addWidget(self.finding_counts, 3)
        column.addWidget(self.class_counts, 2)
        self._describe_data()
        return page

    def _describe_data(self) -> None:
        self.data_note.setText(f"Consensus of three readers, present when {self.summary.k} of 3 marked it; "
                               f"{self.summary.images['train']} train and {self.summary.images['test']} test photos.")

    def refresh_data(self) -> None:
        """Recount the consensus and update the tables and the finding list's counts."""
        self.summary = summarise_training_data(self.project)
        for old, build in ((self.finding_counts, tables.finding_table), (self.class_counts, tables.class_table)):
            new = build(self.summary)
            self._data_column.replaceWidget(old, new)
            old.deleteLater()
            if old is self.finding_counts:
                self.finding_counts = new
            else:
                self.class_counts = new
        for index in range(self.finding.count()):
            self.finding.setItemText(index, self._finding_label(self.finding.itemData(index)))
        self._describe_data()

    def _finding_label(self, code: str) -> str:
        counts = self.summary.findings[code]["train"]
        return f"{self.summary.finding_names[code]}  ({counts.present} present, {counts.absent} absent)"

    def _parameter_pages(self, tabs: QTabWidget) -> None:
        """Two forms opened on the papers' defaults (Son et al. §2.2–3.1; models/guided.py)."""
        self.network_forms = {
            GUIDED: ConfigForm(GuidedConfig(), hidden=("finding",), labels=GUIDED_LABELS,
                               choices={"size_class": tuple(ATROUS_RATES)}),
            ATTENTION: ConfigForm(AttentionConfig(), labels=ATTENTION_LABELS)}
        self.engine_forms = {GUIDED: ConfigForm(guided_train_config(), hidden=HIDDEN_ENGINE_FIELDS, labels=ENGINE_LABELS),
                             ATTENTION: ConfigForm(attention_train_config(), hidden=HIDDEN_ENGINE_FIELDS,
                                                   labels=ENGINE_LABELS)}
        self.validation_share = QDoubleSpinBox()
        self.validation_share.setRange(0.05, 0.5)
        self.validation_share.setSingleStep(0.05)
        self.validation_share.setValue(0.1)
        self.network_forms[ATTENTION].editors["masked"].toggled.connect(self._finding_changed)
        self.network_stack, self.engine_stack = QStackedWidget(), QStackedWidget()
        for kind in (GUIDED, ATTENTION):
            self.network_stack.addWidget(self.network_forms[kind])
            self.engine_stack.addWidget(self.engine_forms[kind])
        share = QFormLayout()
        share.addRow("validation share", self.validation_share)
        for stack, title in ((self.network_stack, "Network settings"), (self.engine_stack, "Training settings")):
            page = QWidget()
            column = QVBoxLayout(page)
            if stack is self.engine_stack:
                column.addLayout(share)
            scroll = QScrollArea()
            scroll.setWidgetResizable(True)
            scroll.setFrameShape(QScrollArea.Shape.NoFrame)
            scroll.setWidget(stack)
            defaults = QPushButton("Papers' defaults")
            defaults.setToolTip("Put every setting back to the papers' values")
            defaults.clicked.connect(self._reset_defaults)
            column.addWidget(scroll, 1)
            column.addWidget(defaults, 0, Qt.AlignmentFlag.AlignRight)
            tabs.addTab(page, title)

    def _controls(self) -> QVBoxLayout:
        column = QVBoxLayout()
        row = QHBoxLayout()
        self.start_button = QPushButton("Start")
        self.resume_button = QPushButton("Resume")
        self.cancel_button = QPushButton("Cancel")
        self.start_button.setToolTip("Train from scratch (an earlier run of this name is replaced)")
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
        self.status = QLabel("")
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
        self.models.itemSelectionChanged.connect(self._refresh_buttons)
        column.addWidget(self.models)
        column.addWidget(self.promote_button, 0, Qt.AlignmentFlag.AlignRight)
        self._refresh_models()
        return page

    # ---------- choices ----------
    def network_kind(self) -> str:
        return self.network.currentData()

    @property
    def network_form(self) -> ConfigForm:
        return self.network_forms[self.network_kind()]

    @property
    def engine_form(self) -> ConfigForm:
        return self.engine_forms[self.network_kind()]

    def finding_code(self) -> str:
        return self.finding.currentData()

    def run_dir(self) -> Path:
        return self.project.root / "models" / self.run_name.text().strip()

    def _network_changed(self) -> None:
        self.network_stack.setCurrentWidget(self.network_form)
        self.engine_stack.setCurrentWidget(self.engine_form)
        self._finding_changed()

    def _finding_changed(self, *_signal_args, load_saved: bool = True) -> None:
        if self.network_kind() == GUIDED and self.finding_code():
            spec = self.project.settings().finding(self.finding_code())
            self.network_form.set_values(size_class=spec.size_class)
            self.run_name.setText(f"guided_{spec.code}")
        else:
            masked = self.network_form.value().masked
            self.run_name.setText("dr_grade_attention" if masked else "dr_grade_baseline")
        self._show_saved_history(load_saved)

    def _reset_defaults(self) -> None:
        self.network_form.reset()
        self.engine_form.reset()
        self.validation_share.setValue(0.1)
        self._finding_changed(load_saved=False)

    def _show_saved_history(self, load_settings: bool = True) -> None:
        """A run of this name already on disk: load its settings (so Resume matches) and curves."""
        rows = self._saved_rows()
        saved = self._saved_config() if load_settings else {}
        if saved:
            self.network_form.set_values(**{k: v for k, v in saved.get("task", {}).items() if k != "finding"})
            engine = saved.get("engine", {})
            self.engine_form.set_values(**engine)
            self.device.setCurrentText(engine.get("device") or "auto")
        self.history = rows
        self.curves.clear(self.engine_form.value().epochs)
        self.curves.set_history(rows)
        if rows and not self.running():
            self.status.setText(f"{len(rows)} epoch(s) of '{self.run_name.text()}' are saved with their settings; "
                                "Resume continues them, Start begins again.")
        self._refresh_buttons()

    def _saved_config(self) -> dict:
        try:
            return json.loads((self.run_dir() / "config.json").read_text())
        except (OSError, ValueError):
            return {}

    def running(self) -> bool:
        return self.run is not None and self.run.running()

    def _refresh_buttons(self) -> None:
        busy = self.running()
        can_resume = (self.run_dir() / "last.pt").is_file() if self.run_name.text().strip() else False
        for widget in (self.network, self.run_name, self.device, self.network_stack, self.engine_stack,
                       self.validation_share):
            widget.setEnabled(not busy)
        self.finding.setEnabled(not busy and self.network_kind() == GUIDED)
        self.start_button.setEnabled(not busy and bool(self.run_name.text().strip()))
        self.resume_button.setEnabled(not busy and can_resume)
        self.cancel_button.setEnabled(busy)
        self.promote_button.setEnabled(bool(self.models.selectedItems()))

    # ---------- running ----------
    def engine_config(self) -> TrainConfig:
        device = self.device.currentText()
        return self.engine_form.value(device=None if device == "auto" else device)

    def guided_config(self) -> GuidedConfig:
        return self.network_forms[GUIDED].value(finding=self.finding_code())

    def start(self, resume: bool = False) -> None:
        if self.running():
            return
        engine = self.engine_config()
        self.history = self._saved_rows() if resume else []
        self.curves.clear(engine.epochs)
        self.curves.set_history(self.history)
        self.outcome, self.last_error = None, None
        self.progress.setValue(0)
        self.eta.setText("ETA –")
        self.status.setText("Preparing the photos…" if not resume else "Resuming…")
        job = self._guided_job(engine, resume) if self.network_kind() == GUIDED else self._attention_job(engine, resume)
        self.run = TrainingThread(job, self._on_progress, self._on_finished, self._on_failed)
        self.runStarting.emit(self.run)
        self.run.start()
        self._refresh_buttons()

    def _saved_rows(self) -> list[dict]:
        try:
            return json.loads((self.run_dir() / "history.json").read_text())
        except (OSError, ValueError):
            return []

    def _guided_job(self, engine: TrainConfig, resume: bool):
        request = GuidedRequest(self.guided_config(), engine, self.run_dir(), self.run_name.text().strip(),
                                self.validation_share.value(), resume)
        project = self.project
        return lambda progress, cancel: run_guided(project, request, progress, cancel)

    def _attention_job(self, engine: TrainConfig, resume: bool):
        request = AttentionRequest(self.network_form.value(), engine, self.run_dir(), self.run_name.text().strip(),
                                   self.validation_share.value(), resume)
        project = self.project
        return lambda progress, cancel: run_attention(project, request, progress, cancel)

    def cancel(self) -> None:
        if self.running():
            self.run.cancel()
            self.status.setText("Cancelling after this batch…")
            self.cancel_button.setEnabled(False)

    def _on_progress(self, event: ProgressEvent) -> None:
        batches = max(1, event.batches)
        if event.kind == "batch":
            done = (event.epoch - 1 + event.batch / batches) / max(1, event.epochs)
            self.progress.setValue(int(1000 * done))
            self.eta.setText(format_eta(event.eta_s))
            self.curves.add_batch(event.epoch - 1 + event.batch / batches, event.loss)
            self.status.setText(f"Epoch {event.epoch} of {event.epochs}, batch {event.batch} of {event.batches}: "
                                f"loss {event.loss:.4f}")
        elif event.kind == "epoch":
            self.history = [r for r in self.history if r.get("epoch", 0) < event.epoch]
            self.history.append({"epoch": event.epoch, "train_loss": event.loss, **event.metrics})
            self.curves.set_history(self.history)
            self.progress.setValue(int(1000 * event.epoch / max(1, event.epochs)))
            self.eta.setText(format_eta(event.eta_s))
            shown = ", ".join(f"{k.removeprefix('val_')} {v:.3f}" for k, v in event.metrics.items()
                              if k in ("val_loss", "val_auroc", "val_accuracy"))
            self.status.setText(f"Epoch {event.epoch} of {event.epochs} done: {shown}")
        elif event.kind == "done":
            self.progress.setValue(1000)
            self.eta.setText(format_eta(0.0))

    def _on_finished(self, outcome: RunOutcome) -> None:
        self.outcome = outcome
        self._wait_for_thread()
        result = outcome.result
        if result.cancelled or outcome.training is None:
            self.status.setText(f"Cancelled; {len(result.history)} finished epoch(s) are saved, Resume continues.")
        else:
            training = outcome.training
            tables.fill_results(self.results, training.metrics)
            tables.fill_confusion(self.confusion, training.metrics)
            self.gallery.show_items(outcome.gallery)
            how = " (stopped early)" if result.stopped_early else (" (time limit)" if result.timed_out else "")
            self.status.setText(f"Finished{how}: best of {len(result.history)} epoch(s) saved to "
                                f"{training.weights_path.name} and registered as model {training.model_id}.")
            self._refresh_models()
        self.history = list(result.history) or self.history
        self.curves.set_history(self.history)
        self._refresh_buttons()
        self.runFinished.emit(outcome)

    def _on_failed(self, message: str) -> None:
        self._wait_for_thread()
        self.last_error = message
        self.status.setText(message)
        self.progress.setValue(0)
        self.eta.setText("ETA –")
        self._refresh_buttons()
        self.runFailed.emit(message)

    def _wait_for_thread(self) -> None:
        if self.run is not None:
            self.run.wait()

    def shutdown(self, timeout_ms: int = 60_000) -> None:
        """Closing the window: cancel a running training and wait for its epoch to be dropped."""
        if self.running():
            self.run.cancel()
            self.run.wait(timeout_ms)

    # ---------- models ----------
    def _refresh_models(self) -> None:
        from storage.predictions import list_models

        tables.fill_models(self.models, list_models(self.project.database))
        if hasattr(self, "start_button"):  # the models page is built before the controls
            self._refresh_buttons()

    def selected_model_id(self) -> int | None:
        items = self.models.selectedItems()
        return items[0].data(Qt.ItemDataRole.UserRole) if items else None

    def promote(self, model_id: int) -> None:
        """Make ``model_id`` the active model of its network (pre-screening and review use it)."""
        from storage.predictions import activate_model

        try:
            activate_model(self.project.database, model_id)
        except OctantError as error:
            self.status.setText(str(error))
            return
        self.status.setText(f"Model {model_id} is now used for pre-screening and review.")
        self._refresh_models()

    def promote_selected(self) -> None:
        model_id = self.selected_model_id()
        if model_id is not None:
            self.promote(model_id)


class TrainingWindow(QWidget):
    """The panel as its own top-level window; closing it cancels a running training."""

    def __init__(self, project, parent: QWidget | None = None):
        super().__init__(parent, Qt.WindowType.Window)
        self.setWindowTitle(f"Training — {project.settings().name}")
        self.panel = TrainingPanel(project, self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.panel)
        self.resize(1280, 860)

    def closeEvent(self, event) -> None:
        self.panel.shutdown()
        super().closeEvent(event)


def open_training_window(project, parent: QWidget | None = None) -> QWidget:
    window = TrainingWindow(project, parent)
    window.show()
    return window


def tiny_settings(panel: TrainingPanel, finding: str, epochs: int = 2) -> None:
    """Settings small enough for a test or a screenshot on a laptop CPU (not for real use)."""
    panel.network.setCurrentIndex(panel.network.findData(GUIDED))
    panel.finding.setCurrentIndex(panel.finding.findData(finding))
    panel.network_form.set_values(input_size=32, width=4, atrous_channels=4)
    panel.engine_form.set_values(epochs=epochs, batch_size=4, early_stopping_patience=0)
    panel.device.setCurrentText("cpu")


def render_training_panel_screenshot(project, out_png: str | Path, size: tuple[int, int] = (1280, 860),
                                     train_finding: str | None = None, timeout_s: float = 120.0) -> Path:
    """Grab the panel offscreen to ``out_png``; with ``train_finding``, after a tiny run of it."""
    import time

    from PySide6.QtWidgets import QApplication

    from ui.app import make_app

    make_app()
    window = TrainingWindow(project)
    window.resize(*size)
    window.show()
    panel = window.panel
    if train_finding is not None:
        tiny_settings(panel, train_finding)
        panel.start(resume=False)
        deadline = time.monotonic() + timeout_s
        while panel.outcome is None and panel.last_error is None and time.monotonic() < deadline:
            QApplication.processEvents()
            time.sleep(0.01)
        panel.tabs.setCurrentWidget(panel.gallery)
    QApplication.processEvents()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(out_png))
    window.close()
    window.deleteLater()
    QApplication.processEvents()
    return out_png
