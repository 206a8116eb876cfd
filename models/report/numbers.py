"""Every number of the dashboard and the report, from arrays only (no files, no Qt, no database).

Per finding: prevalence among images whose final label is present or absent; Fleiss' kappa of the
readers at finding and at region level (``annotate.agreement``); the model's ROC and precision–recall
curves with AUROC and average precision, the operating point with the best harmonic mean of
sensitivity and specificity (Son et al. §3.1) and AIR on true positives and false negatives at it.
The model is measured on the images with a final label (consensus, or adjudicated where the
project says so) and a stored prediction (``storage.predictions.FINDINGS_PREDICTION``); AIR uses
the prediction's activation mass per region and the final label's regions as the cue; a red-free
photo's prediction (``main.py screen`` withholds its calls) counts as none, and a note says how many.
Per reader: sensitivity, specificity and Cohen's kappa against the consensus, finding- and
region-level; with the audit's read events (``annotate.analytics``), seconds per image and per
action, agreement per week or per 100 images, and drift warnings. Diagnoses: readers against the
consensus, and the model against the final diagnosis.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from annotate.agreement import (
    RegionalAgreement,
    cohen_kappa_from_table,
    fleiss_by_finding,
    readers_against_consensus,
    region_marks,
    regional_agreement,
)
from annotate.analytics import (
    DriftWarning,
    PeriodAgreement,
    ReaderTiming,
    ReadEvent,
    agreement_over_time,
    completion_times,
    drift_warnings,
    reading_times,
)
from annotate.consensus import ABSENT, PRESENT
from annotate.quality import GoldScore, RepeatScore
from annotate.services.final_labels import FinalLabels
from models.metrics.classification import OperatingPoint
from models.metrics.curves import (
    PrecisionRecallCurve,
    RocCurve,
    area_under_roc,
    average_precision,
    precision_recall_curve,
    roc_curve,
)

ALL = "all"   # the reader rows pooled over findings


@dataclass(frozen=True)
class ModelNumbers:
    images: int
    positives: int
    auroc: float
    average_precision: float
    roc: RocCurve
    pr: PrecisionRecallCurve
    operating_point: OperatingPoint
    air_tp: float
    air_fn: float
    n_tp: int
    n_fn: int


@dataclass(frozen=True)
class FindingNumbers:
    code: str
    name: str
    present: int
    absent: int
    uncertain: int
    kappa: float                       # Fleiss, finding level
    regional_kappa: float              # Fleiss, image × region items pooled
    regional_kappa_by_region: tuple[float, ...]   # regions 1..8
    model: ModelNumbers | None

    @property
    def prevalence(self) -> float:
        decided = self.present + self.absent
        return self.present / decided if decided else math.nan


@dataclass(frozen=True)
class ReaderNumbers:
    reader_id: int
    name: str
    finding: str                       # a finding code, or ALL
    images: int                        # (image, finding) items with a present/absent consensus
    sensitivity: float
    specificity: float
    kappa: float                       # Cohen's, reader against consensus
    regional_sensitivity: float
    regional_specificity: float


@dataclass
class ReportNumbers:
    findings: list[FindingNumbers]
    readers: list[ReaderNumbers]
    kappa_items: int                   # images with at least two gradable reads
    kappa_overall: float
    regional_kappa_overall: float
    regional: RegionalAgreement
    diagnosis_classes: list[str]
    readers_diagnosis_confusion: np.ndarray   # [C, C] rows: consensus diagnosis, columns: a reader's
    model_diagnosis_confusion: np.ndarray     # [C, C] rows: final diagnosis, columns: model's most probable
    images: int                        # images with a done read or an adjudication
    predicted_images: int = 0
    red_free_images: int = 0           # labelled red-free photos, left out of the model's numbers
    notes: list[str] = field(default_factory=list)
    reader_names: dict[int, str] = field(default_factory=dict)
    timings: list[ReaderTiming] = field(default_factory=list)       # from the audit (empty without events)
    periods: list[PeriodAgreement] = field(default_factory=list)
    period_kind: str = "week"          # "week" | "images"
    drift: list[DriftWarning] = field(default_factory=list)
    gold: list[GoldScore] = field(default_factory=list)     # readers against gold-standard images
    repeats: list[RepeatScore] = field(default_factory=list)   # readers against themselves

    def finding(self, code: str) -> FindingNumbers:
        return next(f for f in self.findings if f.code == code)


def operating_point_from_roc(curve: RocCurve) -> OperatingPoint:
    """The ROC point with the best harmonic mean of sensitivity and specificity; on a tie the
    higher threshold, as ``models.metrics.classification.best_operating_point`` (in O(N))."""
    sensitivity = curve.true_positive_rate
    specificity = 1.0 - curve.false_positive_rate
    total = sensitivity + specificity
    harmonic = np.divide(2 * sensitivity * specificity, total, out=np.zeros_like(total), where=total > 0)
    best = int(np.argmax(harmonic))
    if harmonic[best] <= 0:
        return OperatingPoint(math.inf, 0.0, 1.0)
    return OperatingPoint(float(curve.thresholds[best]), float(sensitivity[best]), float(specificity[best]))


def model_numbers(scores: np.ndarray, present: np.ndarray, region_mass: np.ndarray, cue_bits: np.ndarray
                  ) -> ModelNumbers | None:
    """One finding's model figures; ``region_mass`` [N, 9] is activation outside, then per region."""
    if len(scores) == 0:
        return None
    roc = roc_curve(scores, present)
    point = operating_point_from_roc(roc) if present.any() and (~present).any() else OperatingPoint(math.nan, math.nan, math.nan)
    cue = region_marks(cue_bits.astype(np.uint8))                                 # [N, 8]
    total = region_mass.sum(axis=1)
    inside = (region_mass[:, 1:] * cue).sum(axis=1)
    air = np.divide(inside, total, out=np.full(len(total), np.nan), where=total > 0)
    usable = cue.any(axis=1) & ~np.isnan(air)
    detected = scores >= point.threshold
    chosen_tp = present & detected & usable
    chosen_fn = present & ~detected & usable
    return ModelNumbers(
        images=len(scores), positives=int(present.sum()), auroc=area_under_roc(roc),
        average_precision=average_precision(scores, present), roc=roc, pr=precision_recall_curve(scores, present),
        operating_point=point,
        air_tp=float(air[chosen_tp].mean()) if chosen_tp.any() else math.nan,
        air_fn=float(air[chosen_fn].mean()) if chosen_fn.any() else math.nan,
        n_tp=int(chosen_tp.sum()), n_fn=int(chosen_fn.sum()),
    )


def _prediction_arrays(predictions: dict[int, dict], ids: np.ndarray, codes: list[str]):
    """Scores [M, F] (NaN: no prediction) and activation mass [M, F, 9] aligned with ``ids``."""
    scores = np.full((len(ids), len(codes)), np.nan)
    mass = np.zeros((len(ids), len(codes), 9))
    for row, image in enumerate(ids.tolist()):
        payload = predictions.get(image)
        if not payload:
            continue
        for f, code in enumerate(codes):
            entry = payload.get("findings", {}).get(code)
            if entry is None:
                continue
            scores[row, f] = float(entry["probability"])
            activation = entry.get("region_activation")
            if activation is not None and len(activation) == 9:
                mass[row, f] = activation
    return scores, mass


def _reader_rows(labels: FinalLabels, regional: RegionalAgreement, reader_names: dict[int, str]) -> list[ReaderNumbers]:
    consensus = labels.consensus
    rows = []
    for finding in [None, *consensus.table.finding_codes]:
        for accuracy in readers_against_consensus(consensus, finding):
            table = [[accuracy.true_negative, accuracy.false_positive],
                     [accuracy.false_negative, accuracy.true_positive]]
            regional_accuracy = regional.reader_accuracy(accuracy.reader_id, finding)
            rows.append(ReaderNumbers(
                accuracy.reader_id, reader_names.get(accuracy.reader_id, str(accuracy.reader_id)),
                finding or ALL, int(np.sum(table)), accuracy.sensitivity, accuracy.specificity,
                cohen_kappa_from_table(table), regional_accuracy.sensitivity, regional_accuracy.specificity))
    return rows


def _diagnosis_confusions(labels: FinalLabels, predictions: dict[int, dict], classes: list[str]):
    consensus = labels.consensus
    t = consensus.table
    index = {name: i for i, name in enumerate(classes)}
    size = len(classes)
    readers = np.zeros((size, size), np.int64)
    to_class = np.array([index.get(name, -1) for name in t.diagnosis_names] + [-1], np.int64)  # -1 → last
    agreed = to_class[consensus.diagnosis]                                        # [N]
    said = to_class[t.diagnosis]                                                  # [N, R]
    valid = (agreed[:, None] >= 0) & (said >= 0) & t.gradable
    np.add.at(readers, (np.broadcast_to(agreed[:, None], said.shape)[valid], said[valid]), 1)
    model = np.zeros((size, size), np.int64)
    ids = labels.image_ids()
    for image_id, final in zip(ids, labels.diagnoses(ids)):
        payload = predictions.get(image_id)
        if not payload or final not in index:
            continue
        probabilities = payload.get("diagnosis") or {}
        known = {name: p for name, p in probabilities.items() if name in index}
        if final in index and known:
            model[index[final], index[max(known, key=lambda name: known[name])]] += 1
    return readers, model


def report_numbers(labels: FinalLabels, predictions: dict[int, dict], finding_names: dict[str, str],
                   diagnosis_classes: list[str], reader_names: dict[int, str],
                   events: list[ReadEvent] | None = None, period: str = "week", block: int = 100) -> ReportNumbers:
    consensus = labels.consensus
    codes = list(consensus.table.finding_codes)
    per_finding, overall = fleiss_by_finding(consensus)
    regional = regional_agreement(consensus)
    ids, state, bits = labels.arrays()
    red_free = {image for image, payload in predictions.items() if payload and payload.get("red_free")}
    predictions = {image: payload for image, payload in predictions.items() if image not in red_free}
    labelled_red_free = len(red_free.intersection(ids.tolist()))
    scores, mass = _prediction_arrays(predictions, ids, codes)
    findings = []
    for f, code in enumerate(codes):
        decided = (state[:, f] == PRESENT) | (state[:, f] == ABSENT)
        measured = decided & ~np.isnan(scores[:, f])
        findings.append(FindingNumbers(
            code=code, name=finding_names.get(code, code),
            present=int((state[:, f] == PRESENT).sum()), absent=int((state[:, f] == ABSENT).sum()),
            uncertain=int((~decided).sum()),
            kappa=per_finding[code].kappa, regional_kappa=float(regional.fleiss_by_finding[f]),
            regional_kappa_by_region=tuple(float(v) for v in regional.fleiss[f]),
            model=model_numbers(scores[measured, f], state[measured, f] == PRESENT, mass[measured, f], bits[measured, f]),
        ))
    readers_confusion, model_confusion = _diagnosis_confusions(labels, predictions, diagnosis_classes)
    periods = agreement_over_time(consensus, completion_times(events), period, block) if events else []
    return ReportNumbers(
        findings=findings, readers=_reader_rows(labels, regional, reader_names),
        kappa_items=overall.items // max(1, len(codes)) if codes else 0, kappa_overall=overall.kappa,
        regional_kappa_overall=regional.fleiss_overall, regional=regional,
        diagnosis_classes=list(diagnosis_classes), readers_diagnosis_confusion=readers_confusion,
        model_diagnosis_confusion=model_confusion, images=len(ids),
        predicted_images=int(sum(1 for image in ids.tolist() if image in predictions)),
        red_free_images=labelled_red_free, reader_names=dict(reader_names),
        timings=reading_times(events) if events else [], periods=periods,
        period_kind=period, drift=drift_warnings(periods), notes=_red_free_notes(labelled_red_free, len(ids)),
    )


def _red_free_notes(labelled: int, images: int) -> list[str]:
    """The sentence on red-free photos left out of the model's numbers; when every labelled photo is
    red-free it is the one sentence on the model (no "no predictions stored": they are, withheld)."""
    why = "screening gives no finding probability or diagnosis for red-free photos, as the networks learnt on colour photos"
    if not labelled:
        return []
    if labelled == images:
        every = "The labelled photo is" if labelled == 1 else f"All {labelled} labelled photos are"
        return [f"{every} red-free, so the report has no model numbers: {why}."]
    photos = "photo is" if labelled == 1 else "photos are"
    return [f"{labelled} labelled red-free {photos} left out of the model's numbers: {why}."]
