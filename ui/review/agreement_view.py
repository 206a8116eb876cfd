"""Agreement statistics (``annotate.agreement``) as three tables: Fleiss' kappa per finding,
Cohen's kappa per pair of readers, and each reader against the consensus."""
from __future__ import annotations

import math
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHeaderView, QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from annotate.agreement import (
    AgreementReport,
    KappaResult,
    fleiss_by_finding,
    pairwise_cohen_kappa,
    readers_against_consensus,
)
from annotate.consensus import ProjectConsensus

MISSING = "—"
WHY_NO_KAPPA = ("Undefined: too few images graded by two or more readers, or every reader always "
                "gave the same answer (chance agreement is 1).")
WHY_NO_SENSITIVITY = "Undefined: the consensus never holds this finding present on this reader's images."
WHY_NO_SPECIFICITY = "Undefined: the consensus never holds this finding absent on this reader's images."


@dataclass(frozen=True)
class Agreement:
    """The report for the whole project, with pairs and readers for one finding (None: pooled)."""

    report: AgreementReport
    finding: str | None


def compute_agreement(consensus: ProjectConsensus, finding: str | None = None) -> Agreement:
    """Plain numpy (``annotate.agreement``); the window runs it on a worker thread."""
    per_finding, overall = fleiss_by_finding(consensus)
    report = AgreementReport(per_finding, overall, pairwise_cohen_kappa(consensus, finding),
                             readers_against_consensus(consensus, finding))
    return Agreement(report, finding)


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


def _table(headers: list[str]) -> QTableWidget:
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(False)
    return table


def _fill(table: QTableWidget, rows: list[list[QTableWidgetItem]]) -> None:
    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, item in enumerate(row):
            table.setItem(r, c, item)


class AgreementView(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.status = QLabel("Computing agreement…")
        self.status.setWordWrap(True)
        self.fleiss = _table(["Finding", "Fleiss' κ", "Images"])
        self.pairs = _table(["Reader A", "Reader B", "Items", "Agreement", "Cohen's κ"])
        self.readers = _table(["Reader", "Sensitivity", "Specificity", "TP", "FN", "TN", "FP"])
        self.pairs_title = QLabel()
        self.readers_title = QLabel()
        layout = QVBoxLayout(self)
        layout.addWidget(self.status)
        layout.addWidget(QLabel("<b>Fleiss' kappa</b> (finding marked or not, gradable done reads)"))
        layout.addWidget(self.fleiss, 3)
        layout.addWidget(self.pairs_title)
        layout.addWidget(self.pairs, 2)
        layout.addWidget(self.readers_title)
        layout.addWidget(self.readers, 2)
        self.shown: Agreement | None = None

    def show_pending(self, message: str = "Computing agreement…") -> None:
        self.status.setText(message)
        self.status.setVisible(True)

    def show_agreement(self, agreement: Agreement, reader_names: dict[int, str],
                       finding_names: dict[str, str]) -> None:
        self.shown = agreement
        report = agreement.report
        self.status.setVisible(False)
        rows = [[text(finding_names.get(code, code)), number(result.kappa, WHY_NO_KAPPA), text(result.items)]
                for code, result in report.fleiss_by_finding.items()]
        overall: KappaResult = report.fleiss_overall
        rows.append([text("Overall (all findings pooled)"), number(overall.kappa, WHY_NO_KAPPA), text(overall.items)])
        _fill(self.fleiss, rows)
        scope = finding_names.get(agreement.finding, agreement.finding) if agreement.finding else "all findings pooled"
        self.pairs_title.setText(f"<b>Cohen's kappa per pair of readers</b> ({scope}; items = image × finding)")
        name = lambda reader_id: reader_names.get(reader_id, f"reader {reader_id}")  # noqa: E731
        _fill(self.pairs, [[text(name(p.reader_a)), text(name(p.reader_b)), text(p.items),
                            number(p.observed_agreement, WHY_NO_KAPPA), number(p.kappa, WHY_NO_KAPPA)]
                           for p in report.pairs])
        self.readers_title.setText(f"<b>Each reader against the consensus</b> ({scope}; "
                                   "uncertain consensus left out; the reader's own vote is part of it)")
        _fill(self.readers, [[text(name(r.reader_id)), number(r.sensitivity, WHY_NO_SENSITIVITY),
                              number(r.specificity, WHY_NO_SPECIFICITY), text(r.true_positive),
                              text(r.false_negative), text(r.true_negative), text(r.false_positive)]
                             for r in report.readers])
