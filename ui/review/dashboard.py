"""The dashboard tab: the report's numbers and figures inside the app.

Numbers are ``models.report.project_numbers`` and the figures ``models.report.writer``'s own (one
drawing for the app and for ``main.py report``), both built on a worker thread; only the drawing
onto matplotlib's Qt canvas (``backend_qtagg``, with its zoom/pan toolbar) happens on the GUI thread.
Per finding: prevalence, finding- and region-level kappa, the model's AUROC, average precision,
operating point and AIR; readers against the consensus; ROC and PR curves; diagnosis confusion.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg, NavigationToolbar2QT
from matplotlib.figure import Figure
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QGridLayout,
    QHeaderView,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from models.report.numbers import ReportNumbers
from storage.database import Database

FIGURE_HEIGHT = 360                     # pixels of each plot; the page scrolls
# (figure builder in models.report.writer, spans both columns)
FIGURES = (("prevalence_figure", True), ("kappa_figure", True), ("roc_figure", False), ("pr_figure", False),
           ("readers_figure", True), ("regional_kappa_figure", True), ("diagnoses_figure", True),
           ("regional_confusion_figure", False))
COLUMNS = ["Finding", "Prevalence", "Present", "Absent", "Uncertain", "Fleiss' κ", "Regional κ",
           "AUROC", "AP", "Threshold", "Sens.", "Spec.", "AIR TP", "AIR FN", "Images (model)"]
# What the short headers mean, on hover (docs/review-and-quality.md says it at length).
COLUMN_TIPS = {
    "Prevalence": "Share of the decided images (final label present or absent) where the finding is present",
    "Uncertain": "Images whose consensus is uncertain (too few readers agree either way)",
    "Fleiss' κ": "Agreement of the readers on whether the finding is there, beyond chance (1 perfect, 0 chance)",
    "Regional κ": "Agreement of the readers on where: the finding marked or not in each of the eight regions",
    "AUROC": "Area under the model's ROC curve against the final labels",
    "AP": "Average precision: area under the model's precision–recall curve",
    "Threshold": "The model's operating point: the probability with the best balance of sensitivity and "
                 "specificity (Son et al. §3.1)",
    "Sens.": "The model's sensitivity at the threshold",
    "Spec.": "The model's specificity at the threshold",
    "AIR TP": "Activation in regions, true positives: the share of the model's activation map inside the "
              "final label's regions, on images it rightly called present",
    "AIR FN": "Activation in regions, false negatives: the same share on images with the finding that "
              "the model missed",
    "Images (model)": "Images with a final label and a stored model prediction (screen --project)",
}
MISSING = "—"


@dataclass(frozen=True)
class Dashboard:
    numbers: ReportNumbers
    figures: list[tuple[str, Figure, bool]]     # name, figure, wide


def compute_dashboard(db: Database, reader_id: int) -> Dashboard:
    """Worker thread: the numbers, then every figure (matplotlib's object API, no pyplot)."""
    from models.report import writer
    from models.report.project_numbers import project_numbers

    numbers = project_numbers(db, reader_id)
    figures = []
    for name, wide in FIGURES:
        figure = getattr(writer, name)(numbers)
        for axes in figure.axes:   # long finding names slanted from their bar, not across each other
            if len(axes.get_xticklabels()) > 4 and axes.get_xticklabels()[0].get_rotation():
                for label in axes.get_xticklabels():
                    label.set_rotation(35)
                    label.set_horizontalalignment("right")
                    label.set_rotation_mode("anchor")
        if figure.get_layout_engine() is None:
            # Labels stay inside whatever size the canvas gets ("constrained" cannot be set after a
            # colorbar was added: matplotlib then divides by zero when drawing).
            figure.set_layout_engine("tight")
        figures.append((name.removesuffix("_figure"), figure, wide))
    return Dashboard(numbers, figures)


def _cell(value, digits: int = 2) -> QTableWidgetItem:
    if isinstance(value, str):
        return QTableWidgetItem(value)
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    item = QTableWidgetItem(MISSING if missing else (str(value) if isinstance(value, int) else f"{value:.{digits}f}"))
    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    if missing:
        item.setToolTip("Undefined here: too few images, a single class, or no stored model predictions.")
    return item


def finding_rows(numbers: ReportNumbers) -> list[list]:
    """One row per finding, in ``COLUMNS`` order (the table and the tests read the same)."""
    rows = []
    for f in numbers.findings:
        m = f.model
        model = [m.auroc, m.average_precision, m.operating_point.threshold, m.operating_point.sensitivity,
                 m.operating_point.specificity, m.air_tp, m.air_fn, m.images] if m else [None] * 7 + [0]
        rows.append([f.name, f.prevalence, f.present, f.absent, f.uncertain, f.kappa, f.regional_kappa, *model])
    return rows


class DashboardView(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.status = QLabel("The dashboard is computed when this tab is first opened.")
        self.status.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        for index, name in enumerate(COLUMNS):
            header = self.table.horizontalHeaderItem(index)
            if header is not None and name in COLUMN_TIPS:
                header.setToolTip(COLUMN_TIPS[name])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.setSizeAdjustPolicy(QTableWidget.SizeAdjustPolicy.AdjustToContents)
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.grid = QGridLayout()
        self.grid.setColumnStretch(0, 1)
        self.grid.setColumnStretch(1, 1)
        page = QWidget()
        column = QVBoxLayout(page)
        column.addWidget(self.summary)
        column.addWidget(self.table)
        column.addLayout(self.grid)
        column.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(page)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.status)
        layout.addWidget(scroll, 1)
        self.shown: Dashboard | None = None
        self.canvases: dict[str, FigureCanvasQTAgg] = {}

    def show_pending(self, message: str = "Computing the dashboard…") -> None:
        self.status.setText(message)
        self.status.setVisible(True)

    def show_dashboard(self, dashboard: Dashboard) -> None:
        self.shown = dashboard
        numbers = dashboard.numbers
        self.status.setVisible(False)
        self.summary.setText(
            f"<b>{numbers.images} images</b> with a finished read or an adjudication; "
            f"{numbers.kappa_items} read by two or more readers · Fleiss' κ pooled: finding level "
            f"{_text(numbers.kappa_overall)}, region level {_text(numbers.regional_kappa_overall)} · "
            f"{numbers.predicted_images} images with stored model predictions.<br>" + " ".join(numbers.notes))
        rows = finding_rows(numbers)
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                self.table.setItem(r, c, _cell(value, 3 if c in (7, 8) else 2))
        for canvas in self.canvases.values():
            self.grid.removeWidget(canvas.parentWidget())
            canvas.parentWidget().deleteLater()
        self.canvases = {}
        grid_row = column = 0
        for name, figure, wide in dashboard.figures:
            holder = _PlotHolder(figure)
            self.canvases[name] = holder.canvas
            if wide and column:
                grid_row, column = grid_row + 1, 0
            self.grid.addWidget(holder, grid_row, column, 1, 2 if wide else 1)
            grid_row, column = (grid_row + 1, 0) if wide or column else (grid_row, 1)


class _Canvas(FigureCanvasQTAgg):
    def draw(self) -> None:
        # Qt may size a canvas to nothing before the layout settles; constrained layout divides by it.
        if self.width() >= 40 and self.height() >= 40:
            super().draw()


class _PlotHolder(QWidget):
    """A matplotlib canvas with its toolbar (zoom, pan, save)."""

    def __init__(self, figure: Figure):
        super().__init__()
        self.canvas = _Canvas(figure)
        self.canvas.setMinimumHeight(FIGURE_HEIGHT)
        self.canvas.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.canvas.setFixedHeight(FIGURE_HEIGHT)
        toolbar = NavigationToolbar2QT(self.canvas, self)
        toolbar.setIconSize(toolbar.iconSize() * 0.8)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(toolbar)
        layout.addWidget(self.canvas)


def _text(value: float) -> str:
    return MISSING if value is None or math.isnan(value) else f"{value:.2f}"
