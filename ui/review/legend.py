"""Legends for what the review screen draws over a photo: each entry a small swatch drawn the way the
canvas or the still pictures draw it (fill, hatch, dashed outline, landmark cross, heat map), and
one line of text saying what it means."""
from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QBrush, QColor, QLinearGradient, QPainter, QPen
from PySide6.QtWidgets import QGridLayout, QLabel, QSizePolicy, QWidget

from ui.canvas_items import DISC_COLOUR, FILL_ALPHA, FOVEA_COLOUR, OUTLINE

FILL, HATCH, DASHED, OUTLINED, DISC, FOVEA, HEAT = "fill", "hatch", "dashed", "outline", "disc", "fovea", "heat"
SWATCH = QSize(34, 18)
COLUMNS = 3


@dataclass(frozen=True)
class LegendEntry:
    kind: str          # FILL, HATCH, DASHED, OUTLINED, DISC, FOVEA or HEAT
    text: str
    colour: QColor = field(default_factory=lambda: QColor("white"))


class Swatch(QWidget):
    """A small sample of one kind of mark, on the canvas's dark background."""

    def __init__(self, entry: LegendEntry, parent: QWidget | None = None):
        super().__init__(parent)
        self.entry = entry
        self.setFixedSize(SWATCH)

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), QColor(18, 18, 20))
        box = QRectF(self.rect()).adjusted(3, 3, -3, -3)
        kind, colour = self.entry.kind, self.entry.colour
        if kind == FILL:
            painter.setBrush(QColor(colour.red(), colour.green(), colour.blue(), FILL_ALPHA))
            painter.setPen(QPen(colour, 2.5))
            painter.drawRect(box)
        elif kind == HATCH:
            painter.setBrush(QBrush(colour, Qt.BrushStyle.BDiagPattern))
            painter.setPen(QPen(colour, 1.5, Qt.PenStyle.DashLine))
            painter.drawRect(box)
        elif kind == DASHED:
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.setPen(QPen(colour, 2.0, Qt.PenStyle.DashLine))
            painter.drawRect(box)
        elif kind == OUTLINED:
            painter.setPen(QPen(OUTLINE, 1.0))
            painter.drawRect(box)
        elif kind in (DISC, FOVEA):
            centre, s = box.center(), 6.0
            for pen in (QPen(QColor(20, 20, 20), 3.5), QPen(DISC_COLOUR if kind == DISC else FOVEA_COLOUR, 1.8)):
                painter.setPen(pen)
                painter.drawLine(centre - QPointF(s, 0), centre + QPointF(s, 0))
                painter.drawLine(centre - QPointF(0, s), centre + QPointF(0, s))
        elif kind == HEAT:  # cv2's JET colour map, low to high
            gradient = QLinearGradient(box.topLeft(), box.topRight())
            for stop, name in ((0.0, "#00007f"), (0.35, "#00ffff"), (0.65, "#ffff00"), (1.0, "#7f0000")):
                gradient.setColorAt(stop, QColor(name))
            painter.fillRect(box, gradient)
        painter.end()


class Legend(QWidget):
    """Entries in a grid of ``COLUMNS`` columns, each text wrapping in its own cell."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(4, 2, 4, 2)
        self.grid.setHorizontalSpacing(8)
        self.grid.setVerticalSpacing(2)
        for column in range(COLUMNS):
            self.grid.setColumnStretch(2 * column + 1, 1)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        self.entries: list[LegendEntry] = []
        self._rows: list[tuple[Swatch, QLabel]] = []

    def set_entries(self, entries: list[LegendEntry]) -> None:
        """Show ``entries``; the swatches and labels are reused (a view switch stays a repaint)."""
        if entries == self.entries:
            return
        self.entries = list(entries)
        while len(self._rows) < len(entries):
            n = len(self._rows)
            row, column = divmod(n, COLUMNS)
            swatch, label = Swatch(entries[n]), QLabel()
            label.setWordWrap(True)
            self.grid.addWidget(swatch, row, 2 * column, Qt.AlignmentFlag.AlignTop)
            self.grid.addWidget(label, row, 2 * column + 1, Qt.AlignmentFlag.AlignTop)
            self._rows.append((swatch, label))
        for n, (swatch, label) in enumerate(self._rows):
            shown = n < len(entries)
            swatch.setVisible(shown)
            label.setVisible(shown)
            if shown:
                swatch.entry = entries[n]
                swatch.update()
                label.setText(entries[n].text)

    def texts(self) -> list[str]:
        return [entry.text for entry in self.entries]

    def kinds(self) -> list[str]:
        return [entry.kind for entry in self.entries]


def landmark_entries(whose: str) -> list[LegendEntry]:
    return [LegendEntry(OUTLINED, "Region outlines, numbered 1–8"),
            LegendEntry(DISC, f"Optic disc centre ({whose})"),
            LegendEntry(FOVEA, f"Fovea ({whose})")]
