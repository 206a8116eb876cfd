"""How well the readers agree: Fleiss' kappa, pairwise Cohen's kappa, each reader against consensus.

Every rating here is "finding marked / not marked" by one gradable read (see ``consensus.py``).
- Fleiss' kappa (Fleiss 1971) per finding takes each image as an item rated by its gradable
  reads; the general form with a varying number of raters per item is used (items with fewer
  than two raters are skipped), which equals the textbook form when every image has three.
  "Overall" pools every (image, finding) item into one kappa.
- Cohen's kappa for each pair of readers on the images both graded, pooled over findings unless
  one finding is asked for.
- Each reader against the consensus, on items whose consensus is present or absent. The reader's
  own vote is part of that consensus, which flatters every reader alike.
A kappa whose chance agreement is 1 (everybody always says the same) is undefined: NaN.

``regional_agreement`` asks the same of each of the eight regions (see its section below): Fleiss'
kappa per finding and region, each reader against the consensus union region by region, and the
regional confusion between readers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from numpy.typing import ArrayLike

from annotate.consensus import ABSENT, PRESENT, ProjectConsensus


@dataclass(frozen=True)
class KappaResult:
    kappa: float
    items: int


@dataclass(frozen=True)
class PairAgreement:
    reader_a: int
    reader_b: int
    items: int
    observed_agreement: float
    kappa: float


class TwoByTwoScores:
    """Sensitivity, specificity and Cohen's kappa of a 2 × 2 table held as four counts (one
    definition for agreement, quality control and analytics; nan where a margin is empty)."""

    true_positive: int
    false_negative: int
    true_negative: int
    false_positive: int

    @property
    def sensitivity(self) -> float:
        found = self.true_positive + self.false_negative
        return self.true_positive / found if found else math.nan

    @property
    def specificity(self) -> float:
        clear = self.true_negative + self.false_positive
        return self.true_negative / clear if clear else math.nan

    @property
    def kappa(self) -> float:
        return cohen_kappa_from_table([[self.true_negative, self.false_positive],
                                       [self.false_negative, self.true_positive]])


@dataclass(frozen=True)
class ReaderAccuracy(TwoByTwoScores):
    reader_id: int
    true_positive: int
    false_negative: int
    true_negative: int
    false_positive: int


@dataclass(frozen=True)
class AgreementReport:
    fleiss_by_finding: dict[str, KappaResult]
    fleiss_overall: KappaResult
    pairs: list[PairAgreement]
    readers: list[ReaderAccuracy]


def fleiss_kappa(counts: np.ndarray) -> float:
    """Fleiss' kappa of ``counts[item, category]`` = raters who chose the category for the item.

    P_i = (Σ_j n_ij² − n_i) / (n_i (n_i − 1)),  p_j = Σ_i n_ij / Σ_i n_i,
    κ = (mean P_i − Σ_j p_j²) / (1 − Σ_j p_j²).
    """
    counts = np.asarray(counts, dtype=np.float64)
    raters = counts.sum(axis=1)
    counts, raters = counts[raters >= 2], raters[raters >= 2]
    if len(counts) == 0:
        return float("nan")
    per_item = ((counts**2).sum(axis=1) - raters) / (raters * (raters - 1))
    shares = counts.sum(axis=0) / raters.sum()
    chance = float((shares**2).sum())
    if chance >= 1.0:
        return float("nan")
    return (float(per_item.mean()) - chance) / (1.0 - chance)


def cohen_kappa_from_table(table: ArrayLike) -> float:
    """Cohen's kappa of a square confusion table (rows: rater A, columns: rater B)."""
    table = np.asarray(table, dtype=np.float64)
    total = table.sum()
    if total == 0:
        return float("nan")
    observed = np.trace(table) / total
    chance = float((table.sum(axis=1) * table.sum(axis=0)).sum() / total**2)
    if chance >= 1.0:
        return float("nan")
    return (observed - chance) / (1.0 - chance)


def cohen_kappa(rater_a: ArrayLike, rater_b: ArrayLike) -> float:
    """Cohen's kappa of two equal-length sequences of binary ratings."""
    a = np.asarray(rater_a, dtype=bool)
    b = np.asarray(rater_b, dtype=bool)
    return cohen_kappa_from_table(np.bincount(2 * a + b, minlength=4).reshape(2, 2))


def _marks(consensus: ProjectConsensus) -> np.ndarray:
    return consensus.table.region_bits != 0


def _finding_slice(consensus: ProjectConsensus, finding: str | None) -> slice:
    if finding is None:
        return slice(None)
    f = consensus.table.finding_codes.index(finding)
    return slice(f, f + 1)


def fleiss_by_finding(consensus: ProjectConsensus) -> tuple[dict[str, KappaResult], KappaResult]:
    """Fleiss' kappa for each finding, and for all (image, finding) items pooled."""
    gradable = consensus.table.gradable
    raters = gradable.sum(axis=1)[:, None]                       # [N, 1]
    votes = (_marks(consensus) & gradable[:, :, None]).sum(axis=1)  # [N, F]
    counts = np.stack([raters - votes, votes], axis=2)           # [N, F, 2]
    rated = raters[:, 0] >= 2
    per_finding = {
        code: KappaResult(fleiss_kappa(counts[:, f]), int(rated.sum()))
        for f, code in enumerate(consensus.table.finding_codes)
    }
    pooled = counts.reshape(-1, 2)
    overall = KappaResult(fleiss_kappa(pooled), int(rated.sum()) * counts.shape[1])
    return per_finding, overall


def pairwise_cohen_kappa(consensus: ProjectConsensus, finding: str | None = None) -> list[PairAgreement]:
    """Cohen's kappa for every pair of readers who both graded at least one image."""
    t = consensus.table
    marks = _marks(consensus)[:, :, _finding_slice(consensus, finding)]
    readers, dense = _dense_reader_index(consensus)
    count = len(readers)
    tables: np.ndarray = np.zeros(count * count * 4, np.int64)   # reshaped to [reader, reader, 2, 2] below
    for s, r in combinations(range(t.reader_ids.shape[1]), 2):
        both = t.gradable[:, s] & t.gradable[:, r]
        a, b = dense[both, s], dense[both, r]
        x, y = marks[both, s], marks[both, r]                     # [M, F]
        swap = (a > b)[:, None]                                   # count each pair once, low id first
        first, second = np.where(swap, y, x), np.where(swap, x, y)
        pair = (np.minimum(a, b) * count + np.maximum(a, b))[:, None]
        tables += np.bincount((pair * 4 + 2 * first + second).ravel(), minlength=count * count * 4)
    tables = tables.reshape(count, count, 2, 2)
    result = []
    for i, j in zip(*np.nonzero(tables.sum(axis=(2, 3)))):
        table = tables[i, j]
        result.append(PairAgreement(int(readers[i]), int(readers[j]), int(table.sum()),
                                    float(np.trace(table) / table.sum()), cohen_kappa_from_table(table)))
    return result


def _dense_reader_index(consensus: ProjectConsensus) -> tuple[np.ndarray, np.ndarray]:
    """Sorted reader ids, and each slot's index into them (−1 for empty slots)."""
    t = consensus.table
    readers, which = np.unique(t.reader_ids[t.present], return_inverse=True)
    dense = np.full(t.reader_ids.shape, -1, np.int64)
    dense[t.present] = which
    return readers, dense


def readers_against_consensus(consensus: ProjectConsensus, finding: str | None = None) -> list[ReaderAccuracy]:
    """Sensitivity and specificity of each reader where the consensus is present or absent."""
    t = consensus.table
    chosen = _finding_slice(consensus, finding)
    marks = _marks(consensus)[:, :, chosen]
    state = consensus.state[:, chosen]
    decided = (state == PRESENT) | (state == ABSENT)
    readers, slot_reader = _dense_reader_index(consensus)
    counts: np.ndarray = np.zeros(len(readers) * 4, np.int64)   # reshaped to [reader, 4] below
    for s in range(t.reader_ids.shape[1]):
        valid = t.gradable[:, s][:, None] & decided                 # [N, F]
        rows, cols = np.nonzero(valid)
        truth = state[rows, cols] == PRESENT
        said = marks[rows, s, cols]
        counts += np.bincount(slot_reader[rows, s] * 4 + 2 * truth + said, minlength=len(readers) * 4)
    counts = counts.reshape(-1, 4)  # [absent & not marked, absent & marked, present & not, present & marked]
    return [
        ReaderAccuracy(int(reader), true_positive=int(c[3]), false_negative=int(c[2]), true_negative=int(c[0]), false_positive=int(c[1]))
        for reader, c in zip(readers, counts)
    ]


def agreement_report(consensus: ProjectConsensus) -> AgreementReport:
    per_finding, overall = fleiss_by_finding(consensus)
    return AgreementReport(per_finding, overall, pairwise_cohen_kappa(consensus), readers_against_consensus(consensus))


# ---------------------------------------------------------------------------------------------
# Region-level agreement (issue 19): the same questions asked of each of the eight regions.
#
# A rating is "reader marked finding f in region r" (a reader who did not mark f marked no region).
# - Fleiss' kappa per finding and region takes each image with ≥ 2 gradable reads as an item; per
#   finding, the image × region items are pooled (regions must agree, not only the finding).
# - Each reader against the consensus union: on images whose consensus of f is present or absent,
#   truth for region r is "r is in the consensus cue (the union of the markers' regions)"; absent
#   findings have an empty cue. Counts per reader, finding and region.
# - Regional confusion between readers: for every image, finding and ordered pair of gradable reads
#   (a, b), each region a marked (or 0 when a did not mark the finding) against each region b
#   marked (or 0): cell [i, j] counts how often one reader's region i met another's region j.
#   Symmetric; the diagonal from 1 is agreement, a heavy [5, 6] means 5 and 6 are mixed up.
# ---------------------------------------------------------------------------------------------

REGIONS = 8


@dataclass(frozen=True)
class RegionalAgreement:
    finding_codes: list[str]
    items: int                      # images with at least two gradable reads
    fleiss: np.ndarray              # float [F, 8]: Fleiss' kappa per finding and region (column r-1)
    fleiss_by_finding: np.ndarray   # float [F]: image × region items pooled
    fleiss_overall: float           # every image × finding × region item pooled
    reader_ids: np.ndarray          # int64 [Q]
    reader_counts: np.ndarray       # int64 [Q, F, 8, 4]: TP, FN, TN, FP against the consensus union
    confusion: np.ndarray           # int64 [F, 9, 9]: row/column 0 = finding not marked, 1..8 regions

    def reader_accuracy(self, reader_id: int, finding: str | None = None, region: int | None = None
                        ) -> ReaderAccuracy:
        """One reader's regional counts, pooled over findings and/or regions unless one is named."""
        q = int(np.flatnonzero(self.reader_ids == reader_id)[0])
        counts = self.reader_counts[q]
        if finding is not None:
            counts = counts[self.finding_codes.index(finding)][None]
        if region is not None:
            counts = counts[:, region - 1][:, None]
        tp, fn, tn, fp = (int(v) for v in counts.reshape(-1, 4).sum(axis=0))
        return ReaderAccuracy(int(reader_id), true_positive=tp, false_negative=fn, true_negative=tn,
                              false_positive=fp)

    def readers(self, finding: str | None = None) -> list[ReaderAccuracy]:
        return [self.reader_accuracy(int(r), finding) for r in self.reader_ids]


def region_marks(region_bits: np.ndarray) -> np.ndarray:
    """bool [..., 8]: region code r marked ⇔ bit r − 1 of the stored byte."""
    return (region_bits[..., None] >> np.arange(REGIONS, dtype=np.uint8)) & 1 == 1


def regional_fleiss(consensus: ProjectConsensus) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Fleiss' kappa per finding and region, per finding (regions pooled) and overall; items."""
    gradable = consensus.table.gradable
    raters = gradable.sum(axis=1)                                              # [N]
    marked = region_marks(consensus.table.region_bits) & gradable[:, :, None, None]
    votes = marked.sum(axis=1)                                                 # [N, F, 8]
    counts = np.stack([raters[:, None, None] - votes, votes], axis=-1)         # [N, F, 8, 2]
    count_f = counts.shape[1]
    per_region = np.array([[fleiss_kappa(counts[:, f, r]) for r in range(REGIONS)] for f in range(count_f)],
                          dtype=np.float64).reshape(count_f, REGIONS)
    per_finding = np.array([fleiss_kappa(counts[:, f].reshape(-1, 2)) for f in range(count_f)], np.float64)
    overall = fleiss_kappa(counts.reshape(-1, 2))
    return per_region, per_finding, overall, int((raters >= 2).sum())


def readers_regional_counts(consensus: ProjectConsensus) -> tuple[np.ndarray, np.ndarray]:
    """Reader ids and their [Q, F, 8, 4] counts (TP, FN, TN, FP) against the consensus union."""
    t = consensus.table
    readers, slot_reader = _dense_reader_index(consensus)
    decided = (consensus.state == PRESENT) | (consensus.state == ABSENT)      # [N, F]
    truth = region_marks(np.where(consensus.state == PRESENT, consensus.cue_bits, 0).astype(np.uint8))
    marks = region_marks(t.region_bits)                                         # [N, R, F, 8]
    count_f = len(t.finding_codes)
    cells = count_f * REGIONS * 4
    counts = np.zeros(len(readers) * cells, np.int64)
    f_index = np.arange(count_f)[:, None]
    r_index = np.arange(REGIONS)[None, :]
    for s in range(t.reader_ids.shape[1]):
        rows = np.flatnonzero(t.gradable[:, s])
        if not len(rows):
            continue
        said, real = marks[rows, s], truth[rows]                                 # [M, F, 8]
        outcome = np.where(real, np.where(said, 0, 1), np.where(said, 3, 2))     # TP, FN, TN, FP
        valid = np.broadcast_to(decided[rows][:, :, None], outcome.shape)
        flat = ((slot_reader[rows, s][:, None, None] * count_f + f_index) * REGIONS + r_index) * 4 + outcome
        counts += np.bincount(flat[valid], minlength=len(readers) * cells)
    return readers, counts.reshape(len(readers), count_f, REGIONS, 4)


def regional_confusion(consensus: ProjectConsensus) -> np.ndarray:
    """[F, 9, 9]: over ordered pairs of gradable reads of an image, one's regions against the other's."""
    t = consensus.table
    marks = region_marks(t.region_bits)                                         # [N, R, F, 8]
    with_none = np.concatenate([~marks.any(axis=-1, keepdims=True), marks], axis=-1).astype(np.int64)  # [N, R, F, 9]
    result = np.zeros((len(t.finding_codes), REGIONS + 1, REGIONS + 1), np.int64)
    slots = t.reader_ids.shape[1]
    for a in range(slots):
        for b in range(slots):
            if a == b:
                continue
            both = t.gradable[:, a] & t.gradable[:, b]
            result += np.einsum("nfi,nfj->fij", with_none[both, a], with_none[both, b])
    return result


def regional_agreement(consensus: ProjectConsensus) -> RegionalAgreement:
    per_region, per_finding, overall, items = regional_fleiss(consensus)
    readers, counts = readers_regional_counts(consensus)
    return RegionalAgreement(list(consensus.table.finding_codes), items, per_region, per_finding, overall,
                             readers, counts, regional_confusion(consensus))
