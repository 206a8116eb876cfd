"""The Agreement tab's region level (``annotate.agreement.regional_agreement``), as three tables:

- Fleiss' kappa over regions, a row per finding: its image × region items pooled, then each region;
- each reader against the consensus union, region by region: sensitivity and specificity pooled
  over the regions, then "sensitivity / specificity" per region (counts in the tooltip);
- the regional confusion between readers: over ordered pairs of reads of an image, one reader's
  region (row) against the other's (column), "none" where the finding was not marked; shaded by
  count so that the cells off the diagonal that matter stand out.

Readers and confusion follow the finding chosen in the queue panel (all findings pooled without
one), as the finding level's pairs and readers do; the Fleiss table shows every finding.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import QHBoxLayout, QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from annotate.agreement import REGIONS, ReaderAccuracy, RegionalAgreement
from annotate.geometry import REGION_NAMES
from ui.review.tables import (
    MISSING,
    WHY_NO_KAPPA,
    WHY_NO_SENSITIVITY,
    WHY_NO_SPECIFICITY,
    fill,
    make_table,
    name,
    number,
    text,
)

REGION_CODES = range(1, REGIONS + 1)
SHADE = QColor(66, 133, 244)      # the confusion cells' tint at the largest count
NOT_MARKED = "none"


def region_title(code: int) -> str:
    """"5 superotemporal": the region's code and its name (docs/geometry.md)."""
    return f"{code} {REGION_NAMES[code].replace('_', ' ')}"


REGION_LEGEND = "Regions: " + " · ".join(region_title(code) for code in REGION_CODES) + " (docs/geometry.md)."


def _region_headers(table: QTableWidget, first: int, rows_too: bool = False) -> None:
    """Region columns (and rows) headed by their code, the name in the header's tooltip."""
    for offset, code in enumerate(REGION_CODES):
        headers = [table.horizontalHeaderItem(first + offset)]
        if rows_too:
            headers.append(table.verticalHeaderItem(first + offset))
        for header in headers:
            if header is not None:
                header.setToolTip(region_title(code))


def sensitivity_specificity(accuracy: ReaderAccuracy, where: str) -> QTableWidgetItem:
    """"0.83 / 0.95" with the counts (and why a side is missing) in the tooltip."""
    sides = [accuracy.sensitivity, accuracy.specificity]
    shown = [MISSING if np.isnan(value) else f"{value:.2f}" for value in sides]
    item = QTableWidgetItem(" / ".join(shown))
    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
    tip = [f"{where}: TP {accuracy.true_positive}, FN {accuracy.false_negative}, "
           f"TN {accuracy.true_negative}, FP {accuracy.false_positive}"]
    tip += [why for value, why in zip(sides, (WHY_NO_SENSITIVITY, WHY_NO_SPECIFICITY), strict=True)
            if np.isnan(value)]
    item.setToolTip("\n".join(tip))
    return item


def confusion_cell(count: int, largest: int, diagonal: bool, shaded: bool = True) -> QTableWidgetItem:
    item = text(int(count))
    if largest and shaded:
        shade = QColor(SHADE)
        shade.setAlpha(int(150 * count / largest))
        item.setBackground(QBrush(shade))
    if diagonal:
        font = QFont()
        font.setBold(True)
        item.setFont(font)
    return item


class RegionalAgreementView(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        codes = [str(code) for code in REGION_CODES]
        self.fleiss = make_table(["Finding", "All regions", *codes])
        _region_headers(self.fleiss, 2)
        self.readers = make_table(["Reader", "Sensitivity", "Specificity", *codes], name_columns=(0,))
        _region_headers(self.readers, 3)
        self.confusion = make_table([NOT_MARKED, *codes])
        self.confusion.verticalHeader().setVisible(True)
        self.confusion.setRowCount(REGIONS + 1)
        self.confusion.setVerticalHeaderLabels([NOT_MARKED, *codes])
        _region_headers(self.confusion, 1, rows_too=True)
        self.fleiss_title = QLabel()
        self.readers_title = QLabel()
        self.confusion_title = QLabel()
        legend = QLabel(REGION_LEGEND)
        legend.setWordWrap(True)
        # Kappa and confusion side by side (each about 500 and 300 px wide), readers across below.
        top = QHBoxLayout()
        for title, table, stretch in ((self.fleiss_title, self.fleiss, 3), (self.confusion_title, self.confusion, 2)):
            title.setWordWrap(True)
            column = QVBoxLayout()
            column.addWidget(title)
            column.addWidget(table, 1)
            top.addLayout(column, stretch)
        self.readers_title.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(legend)
        layout.addLayout(top, 3)
        layout.addWidget(self.readers_title)
        layout.addWidget(self.readers, 2)
        self.shown: RegionalAgreement | None = None

    def show_regional(self, regional: RegionalAgreement, finding: str | None, scope: str,
                      reader_names: dict[int, str], finding_names: dict[str, str]) -> None:
        self.shown = regional
        self.fleiss_title.setText(
            f"<b>Fleiss' kappa over regions</b> ({regional.items} images with two or more gradable reads; "
            "a rating is “finding marked in this region”, so readers must agree on where, not only whether)")
        rows = [[text(finding_names.get(code, code)), number(regional.fleiss_by_finding[f], WHY_NO_KAPPA),
                 *(number(regional.fleiss[f, r], WHY_NO_KAPPA) for r in range(REGIONS))]
                for f, code in enumerate(regional.finding_codes)]
        rows.append([text("Overall (all findings pooled)"), number(regional.fleiss_overall, WHY_NO_KAPPA),
                     *(text("") for _ in range(REGIONS))])
        fill(self.fleiss, rows)
        self.readers_title.setText(
            f"<b>Each reader against the consensus union, region by region</b> ({scope}; "
            "sensitivity / specificity; a region is in when the consensus holds the finding there)")
        fill(self.readers, [self._reader_row(regional, int(reader), finding, reader_names)
                            for reader in regional.reader_ids])
        self.confusion_title.setText(
            f"<b>Regional confusion between readers</b> ({scope}; pairs of reads of an image: one "
            f"reader's region (row) against another's (column); “{NOT_MARKED}”: finding not marked)")
        matrix = self.confusion_matrix(regional, finding)
        # "Neither marked it" outnumbers everything and says nothing about regions: left unshaded,
        # it would otherwise pale every cell that matters.
        regions_met = matrix.copy()
        regions_met[0, 0] = 0
        largest = int(regions_met.max())
        fill(self.confusion, [[confusion_cell(matrix[i, j], largest, i == j and i > 0, (i, j) != (0, 0))
                               for j in range(REGIONS + 1)] for i in range(REGIONS + 1)])

    @staticmethod
    def confusion_matrix(regional: RegionalAgreement, finding: str | None) -> np.ndarray:
        """[9, 9] for one finding, or summed over findings."""
        if finding is None:
            return regional.confusion.sum(axis=0)
        return regional.confusion[regional.finding_codes.index(finding)]

    @staticmethod
    def _reader_row(regional: RegionalAgreement, reader: int, finding: str | None,
                    reader_names: dict[int, str]) -> list[QTableWidgetItem]:
        pooled = regional.reader_accuracy(reader, finding)
        return [name(reader_names.get(reader, f"reader {reader}")),
                number(pooled.sensitivity, WHY_NO_SENSITIVITY), number(pooled.specificity, WHY_NO_SPECIFICITY),
                *(sensitivity_specificity(regional.reader_accuracy(reader, finding, code), f"Region {region_title(code)}")
                  for code in REGION_CODES)]
