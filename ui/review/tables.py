"""Read-only tables of numbers for the review screen: NaN shown as "—" with the reason in its
tooltip, reader names shortened with … past NAME_WIDTH (whole in their tooltip)."""
from __future__ import annotations

import math

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHeaderView, QTableWidget, QTableWidgetItem

MISSING = "—"
WHY_NO_KAPPA = ("Undefined: too few images graded by two or more readers, or every reader always "
                "gave the same answer (chance agreement is 1).")
WHY_NO_SENSITIVITY = "Undefined: the consensus never holds this finding present on this reader's images."
WHY_NO_SPECIFICITY = "Undefined: the consensus never holds this finding absent on this reader's images."
NAME_WIDTH = 220   # px: a reader's name and role beyond this is shortened (whole in the tooltip)


def number(value: float, why_missing: str, digits: int = 2) -> QTableWidgetItem:
    """A right-aligned number; NaN as "—" with the reason in its tooltip."""
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    item = QTableWidgetItem(MISSING if missing else f"{value:.{digits}f}")
    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    if missing:
        item.setToolTip(why_missing)
    return item


def text(value) -> QTableWidgetItem:
    item = QTableWidgetItem(str(value))
    if isinstance(value, int):
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return item


def name(value: str) -> QTableWidgetItem:
    """A reader's name (and role): shortened with … when its column is narrower, whole in the tooltip."""
    item = QTableWidgetItem(value)
    item.setToolTip(value)
    return item


def make_table(headers: list[str], name_columns: tuple[int, ...] = ()) -> QTableWidget:
    """A read-only table sized to its contents, except ``name_columns`` (at most NAME_WIDTH wide)."""
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    table.setTextElideMode(Qt.TextElideMode.ElideRight)
    table.setWordWrap(False)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    for column in name_columns:
        header.setSectionResizeMode(column, QHeaderView.ResizeMode.Interactive)
    header.setStretchLastSection(False)
    rows = table.verticalHeader()
    rows.setMinimumSectionSize(1)
    rows.setDefaultSectionSize(table.fontMetrics().height() + 8)   # a line of text, not Qt's 30 px
    table.setProperty("name_columns", list(name_columns))
    return table


def fill(table: QTableWidget, rows: list[list[QTableWidgetItem]]) -> None:
    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, item in enumerate(row):
            table.setItem(r, c, item)
    for column in table.property("name_columns") or ():
        table.resizeColumnToContents(column)
        table.setColumnWidth(column, min(table.columnWidth(column), NAME_WIDTH))
