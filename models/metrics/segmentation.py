"""Segmentation metrics for validation and the benches: Dice, IoU and pixel-level AUPR.

AUPR is exact: Σ (Rₙ − Rₙ₋₁) Pₙ over every distinct score (scikit-learn's
``average_precision_score``, its test oracle). At 1/3 scale one IDRiD photo has 1.4 million pixels
per lesion type, so the curve keeps a count of positive and negative pixels per distinct score
value instead of every pixel: a network's probabilities (fp16/bf16 under autocast, or float32
sigmoids crowding near 0 and 1) repeat values, and counting by exact value loses nothing. The
1,024 fixed bins this replaced were up to 0.002 off on realistic maps, and gave 0.103 for an
exact 0.804 when the scores crowded above 0.999.
"""
from __future__ import annotations

import numpy as np

COMPACT_EVERY = 4_000_000   # pixels held raw before they are folded into the per-value counts


def dice(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> float:
    """2|P∩T| / (|P| + |T|) of boolean maps (inside ``mask`` if given); 1.0 when both are empty."""
    pred, truth = pred.astype(bool), truth.astype(bool)
    if mask is not None:
        pred, truth = pred & mask, truth & mask
    total = pred.sum() + truth.sum()
    return 1.0 if total == 0 else float(2 * (pred & truth).sum() / total)


def iou(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> float:
    """|P∩T| / |P∪T| of boolean maps (inside ``mask`` if given); 1.0 when both are empty."""
    pred, truth = pred.astype(bool), truth.astype(bool)
    if mask is not None:
        pred, truth = pred & mask, truth & mask
    union = (pred | truth).sum()
    return 1.0 if union == 0 else float((pred & truth).sum() / union)


class PrecisionRecallCurve:
    """Counts of positive and negative pixels per distinct score, pooled over many images."""

    def __init__(self):
        self._values = np.zeros(0, np.float32)        # distinct scores, ascending
        self._positive = np.zeros(0, np.int64)
        self._negative = np.zeros(0, np.int64)
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        self._pending_size = 0

    def add(self, scores: np.ndarray, truth: np.ndarray) -> None:
        scores = np.asarray(scores, np.float32).ravel()
        truth = np.asarray(truth).ravel().astype(bool)
        if scores.shape != truth.shape:
            raise ValueError("scores and truth differ in size")
        self._pending.append((scores, truth))
        self._pending_size += scores.size
        if self._pending_size >= COMPACT_EVERY:
            self._compact()

    def _compact(self) -> None:
        if not self._pending:
            return
        scores = np.concatenate([self._values] + [s for s, _ in self._pending])
        positive = np.concatenate([self._positive] + [t.astype(np.int64) for _, t in self._pending])
        negative = np.concatenate([self._negative] + [(~t).astype(np.int64) for _, t in self._pending])
        self._values, index = np.unique(scores, return_inverse=True)
        self._positive = np.bincount(index, weights=positive, minlength=len(self._values)).astype(np.int64)
        self._negative = np.bincount(index, weights=negative, minlength=len(self._values)).astype(np.int64)
        self._pending, self._pending_size = [], 0

    def _by_threshold(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Thresholds from the highest score down, and true/false positives at each (score ≥ t)."""
        self._compact()
        return self._values[::-1], np.cumsum(self._positive[::-1]), np.cumsum(self._negative[::-1])

    def average_precision(self) -> float:
        """Σ (R_k − R_{k−1}) P_k over the distinct scores from high to low; NaN without positives."""
        _, tp, fp = self._by_threshold()
        if len(tp) == 0 or tp[-1] == 0:
            return float("nan")
        recall = tp / tp[-1]
        precision = tp / (tp + fp)
        return float(np.sum(np.diff(np.concatenate([[0.0], recall])) * precision))

    def best_dice(self) -> tuple[float, float]:
        """(Dice, threshold) of the best single threshold on the pooled pixels (score ≥ threshold)."""
        thresholds, tp, fp = self._by_threshold()
        if len(tp) == 0:
            return 1.0, 0.5
        scores = 2 * tp / np.maximum(tp + fp + tp[-1], 1)
        best = int(np.argmax(scores))
        return float(scores[best]), float(thresholds[best])

    def _counts_at(self, threshold: float) -> tuple[int, int, int]:
        self._compact()
        called = self._values >= np.float32(threshold)
        tp, fp = int(self._positive[called].sum()), int(self._negative[called].sum())
        return tp, fp, int(self._positive.sum()) - tp

    def dice_at(self, threshold: float) -> float:
        """Pooled Dice of ``score >= threshold``; 1.0 when neither prediction nor truth has a pixel."""
        tp, fp, fn = self._counts_at(threshold)
        total = 2 * tp + fp + fn
        return 1.0 if total == 0 else float(2 * tp / total)

    def iou_at(self, threshold: float) -> float:
        """Pooled IoU (Jaccard) of ``score >= threshold``; 1.0 when neither has a pixel."""
        tp, fp, fn = self._counts_at(threshold)
        union = tp + fp + fn
        return 1.0 if union == 0 else float(tp / union)
