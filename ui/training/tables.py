"""The panel's tables: consensus counts, result metrics, and the trained models' registry."""
from __future__ import annotations

import math

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from ui.training.summary import DataSummary

# Result rows in the papers' order (Son et al. Table 1; Himbitskaya et al. §V); others follow.
METRIC_NAMES = {
    "auroc": "AUROC", "sensitivity": "sensitivity", "specificity": "specificity",
    "threshold": "threshold (best harmonic mean)", "air_tp": "AIR, true positives",
    "air_fn": "AIR, false negatives", "n_tp": "true positives with a cue", "n_fn": "false negatives with a cue",
    "accuracy": "accuracy", "loss": "loss",
}


def _item(text: str, number: float | None = None) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
    if number is not None:
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return item


def _header_tip(table: QTableWidget, column: int, tip: str) -> None:
    header = table.horizontalHeaderItem(column)
    if header is not None:   # made by setHorizontalHeaderLabels
        header.setToolTip(tip)


def _read_only(table: QTableWidget, stretch: int = 0) -> QTableWidget:
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.verticalHeader().setVisible(False)
    table.setAlternatingRowColors(True)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(stretch, QHeaderView.ResizeMode.Stretch)
    table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 8)
    return table


def _wide_enough(table: QTableWidget) -> QTableWidget:
    """The table asks for the width its names and counts need: the panel's left column had cut
    "Retinal pigmentary change" to "Retinal pigmenta…" while the window had room to spare."""
    header = table.horizontalHeader()
    columns = sum(max(table.sizeHintForColumn(c), header.sectionSizeHint(c)) for c in range(table.columnCount()))
    table.setMinimumWidth(columns + 2 * table.frameWidth() + table.verticalScrollBar().sizeHint().width())
    return table


def finding_table(summary: DataSummary) -> QTableWidget:
    """Per finding: present / absent / uncertain / unread in the train split, present / absent in test."""
    columns = ["finding", "present", "absent", "uncertain", "unread", "test +", "test −"]
    table = _read_only(QTableWidget(len(summary.findings), len(columns)))
    table.setObjectName("findingCounts")
    table.setHorizontalHeaderLabels(columns)
    _header_tip(table, 5, "present in the test split")
    _header_tip(table, 6, "absent in the test split")
    for row, (code, splits) in enumerate(summary.findings.items()):
        train, test = splits["train"], splits["test"]
        table.setItem(row, 0, _item(summary.finding_names.get(code, code)))
        for col, value in enumerate((train.present, train.absent, train.uncertain, train.unread,
                                     test.present, test.absent), start=1):
            table.setItem(row, col, _item(str(value), value))
    return _wide_enough(table)


def class_table(summary: DataSummary) -> QTableWidget:
    """Consensus diagnosis counts per split (majority of the gradable reads)."""
    rows = list(summary.classes.items()) + [("no majority / unread", summary.no_diagnosis)]
    table = _read_only(QTableWidget(len(rows), 3))
    table.setObjectName("classCounts")
    table.setHorizontalHeaderLabels(["diagnosis", "train", "test"])
    for row, (name, counts) in enumerate(rows):
        table.setItem(row, 0, _item(name))
        for col, split in enumerate(("train", "test"), start=1):
            table.setItem(row, col, _item(str(counts.get(split, 0)), counts.get(split, 0)))
    return table


def fill_results(table: QTableWidget, metrics: dict) -> None:
    """Rows: metrics; columns: validation (best epoch) and test. Non-numbers are skipped."""
    def split(key: str) -> tuple[str, str] | None:
        for prefix, column in (("val_", "validation"), ("test_", "test")):
            if key.startswith(prefix):
                return key.removeprefix(prefix), column
        return None

    found: dict[str, dict[str, float]] = {}
    per_class: list[str] = []
    for key, value in metrics.items():
        parts = split(key)
        if parts is None:
            continue
        if isinstance(value, (int, float)):
            found.setdefault(parts[0], {})[parts[1]] = float(value)
        elif parts[0] == "per_class_accuracy" and isinstance(value, dict):  # Himbitskaya et al. §V
            for name, accuracy in value.items():
                found.setdefault(f"accuracy, {name}", {})[parts[1]] = float(accuracy)
                per_class += [] if f"accuracy, {name}" in per_class else [f"accuracy, {name}"]
    order = [k for k in METRIC_NAMES if k in found] + per_class
    order += sorted(k for k in found if k not in order)
    table.clear()
    table.setRowCount(len(order))
    table.setColumnCount(3)
    table.setHorizontalHeaderLabels(["metric", "validation", "test"])
    for row, name in enumerate(order):
        table.setItem(row, 0, _item(METRIC_NAMES.get(name, name.replace("_", " "))))
        for col, column in enumerate(("validation", "test"), start=1):
            value = found[name].get(column)
            text = "" if value is None else ("–" if math.isnan(value) else
                                             (f"{value:.0f}" if name.startswith("n_") else f"{value:.3f}"))
            table.setItem(row, col, _item(text, value))


def fill_confusion(table: QTableWidget, metrics: dict) -> None:
    """The validation confusion matrix (rows: consensus diagnosis, columns: predicted); hidden if none."""
    matrix, classes = metrics.get("val_confusion_matrix"), metrics.get("val_classes")
    table.setVisible(bool(matrix and classes))
    if not (matrix and classes):
        return
    table.clear()
    table.setRowCount(len(classes))
    table.setColumnCount(len(classes))
    table.setHorizontalHeaderLabels([f"→ {name}" for name in classes])
    table.setVerticalHeaderLabels(list(classes))
    table.verticalHeader().setVisible(True)
    for r, row in enumerate(matrix):
        for c, count in enumerate(row):
            table.setItem(r, c, _item(str(int(count)), count))


def confusion_table() -> QTableWidget:
    table = _read_only(QTableWidget(0, 0))
    table.setObjectName("confusion")
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.setToolTip("Validation confusion matrix: rows are the consensus diagnosis, columns the prediction")
    table.setVisible(False)
    return table


def results_table() -> QTableWidget:
    table = _read_only(QTableWidget(0, 3))
    table.setObjectName("results")
    table.setHorizontalHeaderLabels(["metric", "validation", "test"])
    return table


def fill_models(table: QTableWidget, models: list) -> None:
    """``storage.predictions.ModelRecord`` rows, newest first; the active ones marked."""
    columns = ["id", "name", "network", "AUROC / accuracy", "trained", "in use"]
    table.clear()
    table.setColumnCount(len(columns))
    table.setHorizontalHeaderLabels(columns)
    table.setRowCount(len(models))
    for row, model in enumerate(sorted(models, key=lambda m: m.id, reverse=True)):
        score = model.metrics.get("val_auroc", model.metrics.get("val_accuracy"))
        cells = [str(model.id), model.name, model.network,
                 "" if score is None else f"{float(score):.3f}",
                 model.created_at.strftime("%Y-%m-%d %H:%M"), "active" if model.active else ""]
        for col, text in enumerate(cells):
            item = _item(text)
            item.setData(Qt.ItemDataRole.UserRole, model.id)
            table.setItem(row, col, item)


def models_table() -> QTableWidget:
    table = _read_only(QTableWidget(0, 6), stretch=1)
    table.setObjectName("models")
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    return table
