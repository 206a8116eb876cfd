"""ROC and precision–recall curves, in numpy only (scikit-learn is a test oracle, not a dependency).

Both curves step through every distinct score from the highest down: at threshold t an image is
called positive when its score ≥ t. The points equal scikit-learn's ``roc_curve`` (with
``drop_intermediate=False``) and ``precision_recall_curve``; ``average_precision`` is
Σ (Rₙ − Rₙ₋₁) Pₙ, scikit-learn's ``average_precision_score`` (no interpolation).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RocCurve:
    false_positive_rate: np.ndarray
    true_positive_rate: np.ndarray
    thresholds: np.ndarray          # decreasing; the first is +inf (nobody called positive)


@dataclass(frozen=True)
class PrecisionRecallCurve:
    precision: np.ndarray           # last point (1, 0) by convention
    recall: np.ndarray
    thresholds: np.ndarray          # increasing, one fewer than the points


def _counts_by_threshold(scores, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True and false positives when calling positive every score ≥ each distinct score (descending)."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel().astype(bool)
    if scores.shape != labels.shape:
        raise ValueError("scores and labels differ in length")
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order]
    last_of_each = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1] if len(scores) else np.array([], int)
    true_positives = np.cumsum(labels)[last_of_each]
    false_positives = last_of_each + 1 - true_positives
    return true_positives, false_positives, scores[last_of_each]


def roc_curve(scores, labels) -> RocCurve:
    """The ROC curve; rates are NaN where a class is missing (as AUROC is undefined then)."""
    tps, fps, thresholds = _counts_by_threshold(scores, labels)
    tps, fps = np.r_[0, tps], np.r_[0, fps]
    with np.errstate(invalid="ignore", divide="ignore"):
        fpr = fps / fps[-1] if fps[-1] else np.full(len(fps), math.nan)
        tpr = tps / tps[-1] if tps[-1] else np.full(len(tps), math.nan)
    return RocCurve(fpr, tpr, np.r_[np.inf, thresholds])


def area_under_roc(curve: RocCurve) -> float:
    """Trapezoidal area under the ROC points (equals the Mann–Whitney AUROC, ties counted half)."""
    if np.isnan(curve.false_positive_rate).any() or np.isnan(curve.true_positive_rate).any():
        return math.nan
    x, y = curve.false_positive_rate, curve.true_positive_rate
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2))


def precision_recall_curve(scores, labels) -> PrecisionRecallCurve:
    tps, fps, thresholds = _counts_by_threshold(scores, labels)
    called = tps + fps
    precision = np.divide(tps, called, out=np.zeros(len(tps)), where=called != 0)
    recall = tps / tps[-1] if len(tps) and tps[-1] else np.ones(len(tps))
    return PrecisionRecallCurve(np.r_[precision[::-1], 1.0], np.r_[recall[::-1], 0.0], thresholds[::-1])


def average_precision(scores, labels) -> float:
    """Σ (Rₙ − Rₙ₋₁) Pₙ over the precision–recall curve; NaN when there is no positive."""
    if not np.asarray(labels).astype(bool).any():
        return math.nan
    curve = precision_recall_curve(scores, labels)
    return float(-np.sum(np.diff(curve.recall) * curve.precision[:-1]))
