"""Segmentation metrics for validation and the benches: Dice and pixel-level AUPR.

AUPR is computed from a 1024-bin score histogram (O(N), no sort): at 1/3 scale one IDRiD photo has
1.4 million pixels per lesion type. With 1024 thresholds the area differs from the exact one by
well under 0.01 for these maps.
"""
from __future__ import annotations

import numpy as np

BINS = 1024


def dice(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> float:
    """2|P∩T| / (|P| + |T|) of boolean maps (inside ``mask`` if given); 1.0 when both are empty."""
    pred, truth = pred.astype(bool), truth.astype(bool)
    if mask is not None:
        pred, truth = pred & mask, truth & mask
    total = pred.sum() + truth.sum()
    return 1.0 if total == 0 else float(2 * (pred & truth).sum() / total)


class PrecisionRecallCurve:
    """Accumulates a score histogram of positive and negative pixels over many images."""

    def __init__(self, bins: int = BINS):
        self.bins = bins
        self.positive = np.zeros(bins, np.int64)
        self.negative = np.zeros(bins, np.int64)

    def add(self, scores: np.ndarray, truth: np.ndarray) -> None:
        index = np.clip((np.asarray(scores, np.float32).ravel() * self.bins).astype(np.int64), 0, self.bins - 1)
        truth = np.asarray(truth).ravel().astype(bool)
        self.positive += np.bincount(index[truth], minlength=self.bins)
        self.negative += np.bincount(index[~truth], minlength=self.bins)

    def average_precision(self) -> float:
        """Σ (R_k − R_{k−1}) P_k over thresholds from high to low; NaN without positives."""
        tp = np.cumsum(self.positive[::-1])
        fp = np.cumsum(self.negative[::-1])
        if tp[-1] == 0:
            return float("nan")
        recall = tp / tp[-1]
        precision = tp / np.maximum(tp + fp, 1)
        return float(np.sum(np.diff(np.concatenate([[0.0], recall])) * precision))

    def best_dice(self) -> tuple[float, float]:
        """(Dice, threshold) of the best single threshold on the pooled pixels."""
        tp = np.cumsum(self.positive[::-1])
        fp = np.cumsum(self.negative[::-1])
        positives = tp[-1]
        scores = 2 * tp / np.maximum(tp + fp + positives, 1)
        best = int(np.argmax(scores))
        return float(scores[best]), float((self.bins - 1 - best) / self.bins)

    def dice_at(self, threshold: float) -> float:
        """Pooled Dice of ``score >= threshold`` (threshold on the bin grid)."""
        first = int(np.clip(np.ceil(threshold * self.bins), 0, self.bins))
        tp, fp = self.positive[first:].sum(), self.negative[first:].sum()
        total = tp + fp + self.positive.sum()
        return 1.0 if total == 0 else float(2 * tp / total)
