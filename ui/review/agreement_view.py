"""Agreement statistics (``annotate.agreement``) on two tabs. Finding level: Fleiss' kappa per
finding, Cohen's kappa per pair of readers, each reader against the consensus. Region level
(``regional_agreement``, ``ui/review/regional_agreement_view.py``): Fleiss' kappa over regions per
finding and per region, each reader's regional sensitivity and specificity against the consensus
union, and the regional confusion between readers. Reader names too long for their column are
shortened with … and given whole in their tooltip."""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtWidgets import QLabel, QTabWidget, QVBoxLayout, QWidget

from annotate.agreement import (
    AgreementReport,
    KappaResult,
    RegionalAgreement,
    fleiss_by_finding,
    pairwise_cohen_kappa,
    readers_against_consensus,
    regional_agreement,
)
from annotate.consensus import ProjectConsensus
from ui.review.regional_agreement_view import RegionalAgreementView
from ui.review.tables import (
    WHY_NO_KAPPA,
    WHY_NO_SENSITIVITY,
    WHY_NO_SPECIFICITY,
    fill,
    make_table,
    name,
    number,
    text,
)


@dataclass(frozen=True)
class Agreement:
    """The report for the whole project, with pairs and readers for one finding (None: pooled)."""

    report: AgreementReport
    finding: str | None
    regional: RegionalAgreement


def compute_agreement(consensus: ProjectConsensus, finding: str | None = None) -> Agreement:
    """Plain numpy (``annotate.agreement``); the window runs it on a worker thread."""
    per_finding, overall = fleiss_by_finding(consensus)
    report = AgreementReport(per_finding, overall, pairwise_cohen_kappa(consensus, finding),
                             readers_against_consensus(consensus, finding))
    return Agreement(report, finding, regional_agreement(consensus))


class AgreementView(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.status = QLabel("Computing agreement…")
        self.status.setWordWrap(True)
        self.fleiss = make_table(["Finding", "Fleiss' κ", "Images"])
        self.pairs = make_table(["Reader A", "Reader B", "Items", "Agreement", "Cohen's κ"], name_columns=(0, 1))
        self.readers = make_table(["Reader", "Sensitivity", "Specificity", "TP", "FN", "TN", "FP"], name_columns=(0,))
        self.pairs_title = QLabel()
        self.readers_title = QLabel()
        findings = QWidget()
        column = QVBoxLayout(findings)
        column.addWidget(QLabel("<b>Fleiss' kappa</b> (finding marked or not, gradable done reads)"))
        column.addWidget(self.fleiss, 3)
        column.addWidget(self.pairs_title)
        column.addWidget(self.pairs, 2)
        column.addWidget(self.readers_title)
        column.addWidget(self.readers, 2)
        self.regions = RegionalAgreementView()
        self.levels = QTabWidget()
        self.levels.addTab(findings, "Finding level")
        self.levels.addTab(self.regions, "Region level")
        layout = QVBoxLayout(self)
        layout.addWidget(self.status)
        layout.addWidget(self.levels)
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
        fill(self.fleiss, rows)
        scope = finding_names.get(agreement.finding, agreement.finding) if agreement.finding else "all findings pooled"
        self.pairs_title.setText(f"<b>Cohen's kappa per pair of readers</b> ({scope}; items = image × finding)")
        called = lambda reader_id: name(reader_names.get(reader_id, f"reader {reader_id}"))  # noqa: E731
        fill(self.pairs, [[called(p.reader_a), called(p.reader_b), text(p.items),
                            number(p.observed_agreement, WHY_NO_KAPPA), number(p.kappa, WHY_NO_KAPPA)]
                           for p in report.pairs])
        self.readers_title.setText(f"<b>Each reader against the consensus</b> ({scope}; "
                                   "uncertain consensus left out; the reader's own vote is part of it)")
        fill(self.readers, [[called(r.reader_id), number(r.sensitivity, WHY_NO_SENSITIVITY),
                              number(r.specificity, WHY_NO_SPECIFICITY), text(r.true_positive),
                              text(r.false_negative), text(r.true_negative), text(r.false_positive)]
                            for r in report.readers])
        self.regions.show_regional(agreement.regional, agreement.finding, scope, reader_names, finding_names)
