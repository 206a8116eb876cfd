"""Live training curves drawn with QPainter: loss (per batch and per epoch) and validation metrics.

No plotting library: two small panels, each with its own y range, epochs on the x axis.
"""
from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

# (history key, legend, colour); the first metric found in a row is drawn, in this order.
LOSS_SERIES = (("train_loss", "train loss", "#1f77b4"), ("val_loss", "validation loss", "#d62728"))
METRIC_SERIES = (("val_auroc", "AUROC", "#2ca02c"), ("val_sensitivity", "sensitivity", "#9467bd"),
                 ("val_specificity", "specificity", "#ff7f0e"), ("val_accuracy", "accuracy", "#2ca02c"),
                 ("val_air_tp", "AIR (TP)", "#8c564b"))
BATCH_COLOUR = "#9ecae1"
MARGIN = 48


class TrainingCurves(QWidget):
    """``add_batch(x, loss)`` while an epoch runs; ``set_history(rows)`` after each epoch."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.batches: list[tuple[float, float]] = []      # (fractional epoch, batch loss)
        self.history: list[dict] = []
        self.epochs = 1
        self.setMinimumSize(420, 180)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def clear(self, epochs: int = 1) -> None:
        self.batches, self.history, self.epochs = [], [], max(1, epochs)
        self.update()

    def add_batch(self, epoch_position: float, loss: float) -> None:
        if math.isfinite(loss):
            self.batches.append((epoch_position, loss))
            self.update()

    def set_history(self, rows: list[dict], epochs: int | None = None) -> None:
        self.history = list(rows)
        if epochs:
            self.epochs = max(1, epochs)
        self.update()

    def series(self, key: str) -> list[tuple[float, float]]:
        return [(float(r["epoch"]), float(r[key])) for r in self.history
                if key in r and r[key] is not None and math.isfinite(float(r[key]))]

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), self.palette().base())
        half = self.width() / 2
        loss_area = QRectF(MARGIN, 22, half - MARGIN - 10, self.height() - 22 - MARGIN)
        metric_area = QRectF(half + MARGIN, 22, half - MARGIN - 10, self.height() - 22 - MARGIN)
        batch = [(self.batches, "batch loss", BATCH_COLOUR)] if self.batches else []
        loss = batch + [(self.series(k), name, c) for k, name, c in LOSS_SERIES]
        self._panel(painter, loss_area, "Loss", loss, None)
        metrics = [(self.series(k), name, c) for k, name, c in METRIC_SERIES]
        self._panel(painter, metric_area, "Validation", [m for m in metrics if m[0]], (0.0, 1.0))
        painter.end()

    def _panel(self, painter: QPainter, area: QRectF, title: str, series: list, fixed: tuple | None) -> None:
        text = self.palette().text().color()
        painter.setPen(QPen(text))
        bold = QFont(self.font())
        bold.setBold(True)
        painter.setFont(bold)
        painter.drawText(QPointF(area.left(), area.top() - 6), title)
        painter.setFont(self.font())
        values = [y for points, _, _ in series for _, y in points]
        low, high = fixed if fixed else ((min(values), max(values)) if values else (0.0, 1.0))
        if high - low < 1e-9:
            low, high = low - 0.5, high + 0.5
        grid = QColor(text)
        grid.setAlpha(50)
        painter.setPen(QPen(grid, 1))
        painter.drawRect(area)
        for i in range(5):
            y = area.bottom() - i / 4 * area.height()
            painter.drawLine(QPointF(area.left(), y), QPointF(area.right(), y))
        painter.setPen(QPen(text))
        for value, y in ((high, area.top()), (low, area.bottom())):
            painter.drawText(QRectF(area.left() - MARGIN, y - 8, MARGIN - 3, 16),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, f"{value:.3g}")
        painter.drawText(QRectF(area.left(), area.top() - 20, area.width(), 16),
                         Qt.AlignmentFlag.AlignRight, f"epochs (of {self.epochs})")

        def point(x: float, y: float) -> QPointF:
            return QPointF(area.left() + x / self.epochs * area.width(),
                           area.bottom() - (y - low) / (high - low) * area.height())

        step = max(1, math.ceil(self.epochs / 10))
        for epoch in range(0, self.epochs + 1, step):
            x = point(epoch, low).x()
            painter.drawText(QRectF(x - 15, area.bottom() + 1, 30, 14), Qt.AlignmentFlag.AlignHCenter,
                             str(epoch) if epoch else "")
        # The first series is the one that matters most (AUROC, train loss): drawn last, on top.
        for points, name, colour in reversed(series):
            painter.setPen(QPen(QColor(colour), 2 if name != "batch loss" else 1))
            if len(points) > 1:
                path = QPainterPath(point(*points[0]))
                for p in points[1:]:
                    path.lineTo(point(*p))
                painter.drawPath(path)
            if name != "batch loss":
                for p in points:
                    painter.drawEllipse(point(*p), 2.5, 2.5)
        legend_y, legend_x = area.bottom() + 18, area.left()
        for points, name, colour in series:
            if not points:
                continue
            painter.setPen(QPen(QColor(colour), 2))
            painter.drawLine(QPointF(legend_x, legend_y + 6), QPointF(legend_x + 14, legend_y + 6))
            painter.setPen(QPen(text))
            painter.drawText(QPointF(legend_x + 18, legend_y + 10), name)
            legend_x += 26 + painter.fontMetrics().horizontalAdvance(name)
