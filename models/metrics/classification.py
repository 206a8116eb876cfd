"""Classification metrics of the two papers, in numpy only (no scikit-learn in the clinic install).

Son et al. §3.1: AUROC; sensitivity and specificity at the operating point with the best harmonic
mean; AIR, the activation inside the regional cues divided by all activation, on true positives
and false negatives. Himbitskaya et al. §IV–V: accuracy, per-class accuracy, confusion matrix.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def auroc(scores, labels) -> float:
    """Area under the ROC curve as the Mann–Whitney statistic; tied scores count one half.

    Returns NaN when only one class is present (the area is undefined).
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel().astype(bool)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return math.nan
    ranks = _average_ranks(scores)
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=np.float64)
    sorted_values = values[order]
    start = 0
    while start < len(values):  # one pass over runs of equal values
        stop = start
        while stop + 1 < len(values) and sorted_values[stop + 1] == sorted_values[start]:
            stop += 1
        ranks[order[start:stop + 1]] = (start + stop) / 2 + 1
        start = stop + 1
    return ranks


@dataclass(frozen=True)
class OperatingPoint:
    threshold: float      # predict "present" when score >= threshold
    sensitivity: float
    specificity: float

    @property
    def harmonic_mean(self) -> float:
        total = self.sensitivity + self.specificity
        return 0.0 if total == 0 else 2 * self.sensitivity * self.specificity / total


def best_operating_point(scores, labels) -> OperatingPoint:
    """The threshold whose sensitivity and specificity have the best harmonic mean (Table 1).

    Candidates are the observed scores; on a tie the higher threshold (fewer false alarms) wins.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel().astype(bool)
    best = OperatingPoint(math.inf, 0.0, 1.0)
    for threshold in np.unique(scores)[::-1]:
        point = _point_at(scores, labels, float(threshold))
        if point.harmonic_mean > best.harmonic_mean:
            best = point
    return best


def _point_at(scores: np.ndarray, labels: np.ndarray, threshold: float) -> OperatingPoint:
    predicted = scores >= threshold
    positives, negatives = labels.sum(), (~labels).sum()
    sensitivity = float((predicted & labels).sum() / positives) if positives else math.nan
    specificity = float((~predicted & ~labels).sum() / negatives) if negatives else math.nan
    return OperatingPoint(threshold, sensitivity, specificity)


def activation_in_regions(activation, cue) -> float:
    """AIR of one image: sum(a·m) / sum(a) over the activation map (NaN if there is no activation)."""
    activation = np.asarray(activation, dtype=np.float64)
    total = activation.sum()
    return float((activation * np.asarray(cue, dtype=np.float64)).sum() / total) if total > 0 else math.nan


def air_by_outcome(activations, cues, scores, labels, threshold: float, cue_complete=None) -> dict[str, float]:
    """Mean AIR over true positives and over false negatives that carry a regional cue (§3.1).

    ``activations`` and ``cues`` are (N, H, W); ``cue_complete`` (N,) bool leaves out cues that
    may miss regions (AIR would be a lower bound there). Returns ``{"air_tp", "air_fn", "n_tp", "n_fn",
    "cue_tp"}``; ``cue_tp`` is the share of the map the true positives' cues cover: the AIR of a
    map that activates everywhere alike, the level guidance has to beat.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel().astype(bool)
    cues = np.asarray(cues, dtype=np.float64)
    has_cue = cues.reshape(len(cues), -1).sum(axis=1) > 0
    if cue_complete is not None:
        has_cue &= np.asarray(cue_complete, dtype=bool).ravel()
    detected = scores >= threshold
    result: dict[str, float] = {}
    for name, chosen in (("tp", labels & detected & has_cue), ("fn", labels & ~detected & has_cue)):
        values = [activation_in_regions(activations[i], cues[i]) for i in np.flatnonzero(chosen)]
        values = [v for v in values if not math.isnan(v)]
        result[f"air_{name}"] = float(np.mean(values)) if values else math.nan
        result[f"n_{name}"] = float(len(values))
    true_positives = np.flatnonzero(labels & detected & has_cue)
    result["cue_tp"] = float(cues[true_positives].mean()) if len(true_positives) else math.nan
    return result


def confusion_matrix(true, predicted, classes: int) -> np.ndarray:
    """Counts with rows = true class and columns = predicted class."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(true, dtype=np.int64), np.asarray(predicted, dtype=np.int64)), 1)
    return matrix


def accuracy(true, predicted) -> float:
    true, predicted = np.asarray(true), np.asarray(predicted)
    return float((true == predicted).mean()) if len(true) else math.nan


def accuracy_standard_error(accuracy_value: float, n: int) -> float:
    """Binomial standard error of an accuracy measured on ``n`` photos: the noise of the figure."""
    return math.sqrt(accuracy_value * (1 - accuracy_value) / n) if n else math.nan


def paired_comparison(correct_a, correct_b) -> dict[str, float]:
    """Two classifiers on the same photos (boolean arrays: photo classified correctly): McNemar's
    exact test. Only discordant photos count: ``a_only`` right by A alone, ``b_only`` by B alone;
    ``p_value`` is the two-sided binomial probability of a split at least that uneven when neither
    is better, ``difference`` A's accuracy minus B's."""
    a, b = np.asarray(correct_a, dtype=bool).ravel(), np.asarray(correct_b, dtype=bool).ravel()
    if a.shape != b.shape:
        raise ValueError("paired_comparison needs both classifiers' results on the same photos")
    a_only, b_only = int((a & ~b).sum()), int((~a & b).sum())
    discordant, fewer = a_only + b_only, min(a_only, b_only)
    tail = sum(math.comb(discordant, k) for k in range(fewer + 1)) / 2**discordant if discordant else 1.0
    return {"a_only": float(a_only), "b_only": float(b_only), "p_value": min(1.0, 2 * tail),
            "difference": float(a.mean() - b.mean()) if len(a) else math.nan}


def per_class_accuracy(matrix: np.ndarray) -> list[float]:
    """Share of each true class predicted correctly (the diagonal of a row-normalised matrix)."""
    totals = matrix.sum(axis=1)
    return [float(matrix[i, i] / totals[i]) if totals[i] else math.nan for i in range(len(matrix))]


# Son et al., Table 1 (test set of 15,451 images): AUROC, AIR (TP), AIR (FN), with / without guidance.
PAPER_TABLE_1: dict[str, dict[str, tuple[float, float]]] = {
    "macular_hole": {"auroc": (0.9870, 0.9676), "air_tp": (0.9999, 0.3156), "air_fn": (0.9999, 0.2611)},
    "hard_exudate": {"auroc": (0.9938, 0.9910), "air_tp": (0.8089, 0.5999), "air_fn": (0.5750, 0.4614)},
    "haemorrhage": {"auroc": (0.9862, 0.9895), "air_tp": (0.8890, 0.6388), "air_fn": (0.4899, 0.3857)},
    "membrane": {"auroc": (0.9831, 0.9795), "air_tp": (0.9699, 0.3696), "air_fn": (0.8446, 0.2499)},
    "drusen": {"auroc": (0.9811, 0.9786), "air_tp": (0.8292, 0.5611), "air_fn": (0.5931, 0.4012)},
    "cotton_wool_patch": {"auroc": (0.9792, 0.9741), "air_tp": (0.8058, 0.5450), "air_fn": (0.4672, 0.4538)},
    "rnfl_defect": {"auroc": (0.9263, 0.8870), "air_tp": (0.7233, 0.4024), "air_fn": (0.4801, 0.2838)},
}


def guidance_table(rows: dict[str, dict[str, dict[str, float]]], with_paper: bool = True) -> str:
    """A Markdown table shaped like Table 1: per finding, AUROC and AIR (TP, FN) with / without.

    ``rows[finding]["with"|"without"]`` holds ``auroc``, ``air_tp``, ``air_fn`` (and optionally
    ``sensitivity``, ``specificity``). The paper's figures are added underneath each finding.
    """
    header = ("| finding | AUROC with | AUROC without | AIR (TP) with | AIR (TP) without "
              "| AIR (FN) with | AIR (FN) without | sens / spec with | sens / spec without |")
    lines = [header, "|" + "---|" * 9]
    for finding, pair in rows.items():
        cells = [finding]
        for key in ("auroc", "air_tp", "air_fn"):
            cells += [_fmt(pair["with"].get(key)), _fmt(pair["without"].get(key))]
        for side in ("with", "without"):
            cells.append(f"{_fmt(pair[side].get('sensitivity'))} / {_fmt(pair[side].get('specificity'))}")
        lines.append("| " + " | ".join(cells) + " |")
        paper = PAPER_TABLE_1.get(finding)
        if with_paper and paper:
            cells = [f"{finding} (paper)"]
            for key in ("auroc", "air_tp", "air_fn"):
                cells += [_fmt(paper[key][0]), _fmt(paper[key][1])]
            lines.append("| " + " | ".join(cells + ["", ""]) + " |")
    return "\n".join(lines)


def _fmt(value) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"
