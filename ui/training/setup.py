"""The panel's left column: which network and finding, the consensus counts, the hyper-parameter
forms (opened on the papers' defaults), the device, and the run's name and folder.

A run of the chosen name already on disk has its settings loaded into the forms, so Resume
continues it with the settings it was started with (the engine refuses any other).
"""
from __future__ import annotations

import json
import typing
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from models.diagnosis.attention_mask import AttentionConfig, attention_train_config
from models.engine.training import TrainConfig, upgrade_engine
from models.engine.weights import starter_for
from models.findings.guided import ATROUS_RATES, GuidedConfig, guided_train_config
from storage.errors import OctantError
from storage.project import ProjectHandle
from ui.background import Worker, worker_pool
from ui.precision_setting import saved_precision
from ui.training import tables
from ui.training.form import ConfigForm
from ui.training.summary import DataSummary, empty_summary, summarise_training_data

DEVICES = ("auto", "cpu", "cuda", "mps")
GUIDED = "guided"
ATTENTION = "attention-mask"
VALIDATION_SHARE = 0.1   # Son et al. §3.1: 90 % derivation, 10 % validation
# Engine fields the panel sets itself (device and start-from combos) or that only benches use.
HIDDEN_ENGINE_FIELDS = ("device", "log_every", "init_weights")
ENGINE_LABELS = {"lr": "learning rate", "precision": "precision (auto: by the hardware)", "amp": "fp16 on CUDA (AMP)",
                 "max_batches_per_epoch": "max batches per epoch", "time_limit_s": "time limit (s)",
                 "early_stopping_patience": "early stopping patience", "num_workers": "loader processes"}
GUIDED_LABELS = {"input_size": "input size (px)", "width": "width (stem channels)",
                 "guidance_weight": "guidance weight λ (eq. 3)", "epsilon": "ε (eq. 2)",
                 "fov_mask": "activation inside the fundus only",
                 "existence_floor": "existence ignores logits below ε",
                 "existence_intercept": "learnt intercept after pooling",
                 "saturation_hinge": "guidance also pulls saturated cells"}
ATTENTION_LABELS = {"input_size": "input size (px)", "backbone": "EfficientNet (timm name)",
                    "masked": "attention mask (off: the paper's baseline)"}


def available_devices() -> dict[str, bool]:
    """Which device choices ``models.engine.device.pick_device`` accepts on this computer."""
    from models.engine.device import pick_device

    usable = {}
    for name in DEVICES:
        try:
            pick_device(name)
            usable[name] = True
        except OctantError:
            usable[name] = False
    return usable


class TrainingSetup(QWidget):
    """``runChosen`` fires when the network, finding or run name changes (after the forms)."""

    runChosen = Signal()
    summaryReady = Signal()   # the consensus counts are in the tables


    def __init__(self, project: ProjectHandle, parent: QWidget | None = None):
        super().__init__(parent)
        self.project = project
        # Counting the consensus streams every read (seconds for a large project): off the GUI thread.
        self.summary: DataSummary = empty_summary(project)
        self._counting = worker_pool(self, threads=1)   # one at a time: the latest count lands last
        self.counts_pending = 0
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self._choice_box())
        self.tabs = QTabWidget()
        self.tabs.addTab(self._data_page(), "Consensus data")
        self._parameter_pages(self.tabs)
        column.addWidget(self.tabs, 1)
        # No fixed minimum width: the layout's own (the counts tables' names and numbers) is the one to keep.
        self.network.currentIndexChanged.connect(self._network_changed)
        self.finding.currentIndexChanged.connect(self._choice_changed)
        masked = typing.cast(QCheckBox, self.network_forms[ATTENTION].editors["masked"])   # a bool field
        masked.toggled.connect(self._choice_changed)

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
        self.start_from = QComboBox()
        self.start_from.addItem("the starter model (fine-tune)", "starter")
        self.start_from.addItem("random weights (from scratch)", "scratch")
        self.start_from.currentIndexChanged.connect(self._show_start)
        self.start_note = QLabel()
        self.start_note.setWordWrap(True)
        self.device = QComboBox()
        for name, usable in available_devices().items():
            self.device.addItem(name)
            if not usable:  # shown, so the clinic sees the choice exists, but not selectable
                items = typing.cast(QStandardItemModel, self.device.model())   # a combo box's own model
                items.item(self.device.count() - 1).setEnabled(False)
        form.addRow("network", self.network)
        form.addRow("finding", self.finding)
        form.addRow("run name", self.run_name)
        form.addRow("start from", self.start_from)
        form.addRow("", self.start_note)
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
        self.refresh_data()
        return page

    def _parameter_pages(self, tabs: QTabWidget) -> None:
        """Two forms opened on the papers' defaults (models/findings/guided.py, models/diagnosis/attention_mask.py)."""
        self.network_forms = {
            GUIDED: ConfigForm(GuidedConfig(), hidden=("finding",), labels=GUIDED_LABELS,
                               choices={"size_class": tuple(ATROUS_RATES)}),
            ATTENTION: ConfigForm(AttentionConfig(), labels=ATTENTION_LABELS)}
        self.engine_forms = {
            GUIDED: ConfigForm(guided_train_config(), hidden=HIDDEN_ENGINE_FIELDS, labels=ENGINE_LABELS),
            ATTENTION: ConfigForm(attention_train_config(), hidden=HIDDEN_ENGINE_FIELDS, labels=ENGINE_LABELS)}
        for form in self.engine_forms.values():   # the workstation's precision (Model menu) is the default
            form.set_values(precision=saved_precision())
        self.validation_share = QDoubleSpinBox()
        self.validation_share.setRange(0.05, 0.5)
        self.validation_share.setSingleStep(0.05)
        self.validation_share.setValue(VALIDATION_SHARE)
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
            defaults.clicked.connect(self.reset_defaults)
            column.addWidget(scroll, 1)
            column.addWidget(defaults, 0, Qt.AlignmentFlag.AlignRight)
            tabs.addTab(page, title)

    # ---------- the data ----------
    def _describe_data(self) -> None:
        self.data_note.setText(f"Consensus of three readers, present when {self.summary.k} of 3 marked it; "
                               f"{self.summary.images['train']} train and {self.summary.images['test']} test photos.")

    def _finding_label(self, code: str) -> str:
        counts = self.summary.findings[code]["train"]
        return f"{self.summary.finding_names[code]}  ({counts.present} present, {counts.absent} absent)"

    def refresh_data(self) -> None:
        """Recount the consensus off the GUI thread; ``summaryReady`` fires when the tables show it."""
        self.data_note.setText("Counting the readers' consensus…")
        self.counts_pending += 1
        project = self.project
        count = Worker.call(lambda: summarise_training_data(project), name="Counting the consensus",
                            pool=self._counting, owner=self)
        count.returned.connect(self._show_summary)
        count.errored.connect(self.data_note.setText)
        count.finished.connect(self._count_ended)
        count.start()

    def _count_ended(self) -> None:
        self.counts_pending -= 1

    def _show_summary(self, summary: DataSummary) -> None:
        self.summary = summary
        finding_counts, class_counts = tables.finding_table(self.summary), tables.class_table(self.summary)
        for old, new in ((self.finding_counts, finding_counts), (self.class_counts, class_counts)):
            self._data_column.replaceWidget(old, new)
            old.deleteLater()
        self.finding_counts, self.class_counts = finding_counts, class_counts
        for index in range(self.finding.count()):
            self.finding.setItemText(index, self._finding_label(self.finding.itemData(index)))
        self._describe_data()
        self.summaryReady.emit()

    # ---------- the choice ----------
    def network_kind(self) -> str:
        return self.network.currentData()

    def finding_code(self) -> str:
        return self.finding.currentData()

    @property
    def network_form(self) -> ConfigForm:
        return self.network_forms[self.network_kind()]

    @property
    def engine_form(self) -> ConfigForm:
        return self.engine_forms[self.network_kind()]

    def run_dir(self) -> Path:
        return self.project.root / "models" / self.run_name.text().strip()

    def engine_config(self) -> TrainConfig:
        device = self.device.currentText()
        starter = self.starter() if self.start_from.currentData() == "starter" else None
        return self.engine_form.value(device=None if device == "auto" else device,
                                      init_weights=str(starter) if starter else "")

    def starter(self) -> Path | None:
        """The shipped starter of the chosen network; the unmasked baseline shares the masked
        network's, so the two are compared from one start."""
        if self.network_kind() == GUIDED:
            return starter_for(GUIDED, self.finding_code())
        return starter_for(ATTENTION)

    def _show_start(self) -> None:
        starter = self.starter()
        if self.start_from.currentData() == "scratch":
            self.start_note.setText("Every weight starts random (Xavier for the guided network).")
        elif starter is None:
            self.start_note.setText("No starter ships for this choice: the run starts from random weights.")
        else:
            self.start_note.setText(f"Fine-tunes {starter.name}, trained on public IDRiD data "
                                    "(its card: the .md file beside it).")

    def guided_config(self) -> GuidedConfig:
        return self.network_forms[GUIDED].value(finding=self.finding_code())

    def attention_config(self) -> AttentionConfig:
        return self.network_forms[ATTENTION].value()

    def _network_changed(self) -> None:
        self.network_stack.setCurrentWidget(self.network_form)
        self.engine_stack.setCurrentWidget(self.engine_form)
        self.finding.setEnabled(self.network_kind() == GUIDED)
        self._choice_changed()

    def _choice_changed(self, *_signal_args, load_saved: bool = True) -> None:
        if self.network_kind() == GUIDED and self.finding_code():
            spec = self.project.settings().finding(self.finding_code())
            self.network_form.set_values(size_class=spec.size_class)
            self.run_name.setText(f"guided_{spec.code}")
        else:
            self.run_name.setText("dr_grade_attention" if self.attention_config().masked else "dr_grade_baseline")
        if load_saved:
            self.load_saved_settings()
        self._show_start()
        self.runChosen.emit()

    def reset_defaults(self) -> None:
        self.network_form.reset()
        self.engine_form.reset()
        self.validation_share.setValue(VALIDATION_SHARE)
        self._choice_changed(load_saved=False)

    def set_busy(self, busy: bool) -> None:
        for widget in (self.network, self.run_name, self.start_from, self.device, self.network_stack,
                       self.engine_stack, self.validation_share):
            widget.setEnabled(not busy)
        self.finding.setEnabled(not busy and self.network_kind() == GUIDED)

    # ---------- a run on disk ----------
    def saved_rows(self) -> list[dict]:
        return self._read_json("history.json") or []

    def load_saved_settings(self) -> None:
        saved = self._read_json("config.json") or {}
        if saved:
            self.network_form.set_values(**{k: v for k, v in saved.get("task", {}).items() if k != "finding"})
            engine = upgrade_engine(saved.get("engine", {}))
            self.engine_form.set_values(**engine)
            self.device.setCurrentText(engine.get("device") or "auto")

    def _read_json(self, name: str):
        try:
            return json.loads((self.run_dir() / name).read_text())
        except (OSError, ValueError):
            return None
