"""Reader analytics: time spent (from the audit trail) and agreement with the consensus over time.

Time. Every action a reader takes on a read is an audit event. A reader's events, in time order,
each get the *dwell* since that reader's previous event: the time spent looking and deciding
before that click. A gap longer than ``IDLE_LIMIT_S`` is a break and counts nothing, so a reader
who went for lunch is not timed at an hour on one photo. Seconds per image is the dwell summed
over that image's events; seconds per action the dwell of each action (median reported).

Agreement over time. Each done, gradable read is placed at the moment it was last marked done
and its (image, finding) items are compared with the consensus where that is present or absent,
as ``annotate.agreement.readers_against_consensus`` does. Reads are grouped per ISO week, or in
consecutive blocks of ``block`` images in the order read; each group has sensitivity,
specificity and Cohen's kappa.

Drift. Each group after the first is compared with the reader's own baseline, all their earlier
groups pooled, by a two-proportion z-test (pooled variance) on sensitivity and on specificity; a
warning is given when the two-sided p-value is under ``alpha`` (0.01) and both sides have at least
``MIN_ITEMS`` items. Many groups mean many tests: at 0.01 a steady reader is flagged about once in
a hundred comparisons.
"""
from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from annotate.agreement import TwoByTwoScores
from annotate.consensus import ABSENT, PRESENT, ProjectConsensus

IDLE_LIMIT_S = 300.0
DRIFT_ALPHA = 0.01
MIN_ITEMS = 10


@dataclass(frozen=True)
class ReadEvent:
    """One audited action of a reader on their read of an image."""

    reader_id: int
    image_id: int
    action: str
    at: datetime
    done: bool = False          # a mark_done that set the read done


@dataclass(frozen=True)
class ReaderTiming:
    reader_id: int
    images: int
    median_seconds_per_image: float
    mean_seconds_per_image: float
    seconds_per_action: dict[str, tuple[int, float]]    # action -> (events, median seconds)


@dataclass(frozen=True)
class PeriodAgreement(TwoByTwoScores):
    reader_id: int
    period: str                 # "2026-W49", or "1-100" (the reader's 1st to 100th image)
    images: int
    true_positive: int
    false_negative: int
    true_negative: int
    false_positive: int


@dataclass(frozen=True)
class DriftWarning:
    reader_id: int
    period: str
    measure: str                # "sensitivity" | "specificity"
    baseline: float
    now: float
    z: float
    p_value: float

    def sentence(self, name: str) -> str:
        direction = "fell" if self.now < self.baseline else "rose"
        return (f"{name}'s {self.measure} {direction} to {self.now:.2f} in {self.period} from a baseline of "
                f"{self.baseline:.2f} (z = {self.z:.1f}, p = {self.p_value:.3g}).")


def dwell_times(events: Iterable[ReadEvent], idle_limit_s: float = IDLE_LIMIT_S) -> list[tuple[ReadEvent, float]]:
    """Each event with the seconds since its reader's previous event (0 after a break or first)."""
    result = []
    last: dict[int, datetime] = {}
    for event in sorted(events, key=lambda e: (e.reader_id, e.at)):
        previous = last.get(event.reader_id)
        gap = (event.at - previous).total_seconds() if previous is not None else math.inf
        result.append((event, gap if gap <= idle_limit_s else 0.0))
        last[event.reader_id] = event.at
    return result


def reading_times(events: Iterable[ReadEvent], idle_limit_s: float = IDLE_LIMIT_S) -> list[ReaderTiming]:
    per_image: dict[int, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    per_action: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for event, seconds in dwell_times(events, idle_limit_s):
        per_image[event.reader_id][event.image_id] += seconds
        per_action[event.reader_id][event.action].append(seconds)
    timings = []
    for reader in sorted(per_image):
        durations = list(per_image[reader].values())
        timings.append(ReaderTiming(
            reader, len(durations), statistics.median(durations), statistics.fmean(durations),
            {action: (len(values), statistics.median(values)) for action, values in sorted(per_action[reader].items())}))
    return timings


def completion_times(events: Iterable[ReadEvent]) -> dict[tuple[int, int], datetime]:
    """(reader, image) -> when the read was last marked done."""
    done: dict[tuple[int, int], datetime] = {}
    for event in events:
        if event.done:
            key = (event.reader_id, event.image_id)
            if key not in done or event.at > done[key]:
                done[key] = event.at
    return done


def _item_counts(consensus: ProjectConsensus) -> np.ndarray:
    """int [N, R, 4]: per read slot, its items' (TP, FN, TN, FP) against the decided consensus."""
    t = consensus.table
    marks = t.region_bits != 0                                           # [N, R, F]
    decided = ((consensus.state == PRESENT) | (consensus.state == ABSENT))[:, None, :] & t.gradable[:, :, None]
    truth = (consensus.state == PRESENT)[:, None, :]
    return np.stack([(decided & truth & marks).sum(axis=2), (decided & truth & ~marks).sum(axis=2),
                     (decided & ~truth & ~marks).sum(axis=2), (decided & ~truth & marks).sum(axis=2)], axis=2)


def agreement_over_time(consensus: ProjectConsensus, completed: dict[tuple[int, int], datetime],
                        by: str = "week", block: int = 100) -> list[PeriodAgreement]:
    """Each reader's agreement with the consensus per ISO week (``by="week"``) or per ``block``
    images in reading order (``by="images"``); reads never marked done in the audit are left out."""
    if by not in ("week", "images"):
        raise ValueError("by must be 'week' or 'images'")
    t = consensus.table
    counts = _item_counts(consensus)
    reads: dict[int, list[tuple[datetime, np.ndarray]]] = defaultdict(list)
    for row, slot in zip(*np.nonzero(t.gradable)):
        reader, image = int(t.reader_ids[row, slot]), int(t.image_ids[row])
        when = completed.get((reader, image))
        if when is not None:
            reads[reader].append((when, counts[row, slot]))
    periods = []
    for reader in sorted(reads):
        ordered = sorted(reads[reader], key=lambda item: item[0])
        groups: dict[str, list[np.ndarray]] = {}
        for n, (when, items) in enumerate(ordered):
            if by == "week":
                year, week, _ = when.isocalendar()
                key = f"{year}-W{week:02d}"
            else:
                first = n // block * block
                key = f"{first + 1}-{first + block}"
            groups.setdefault(key, []).append(items)
        for key, members in groups.items():
            tp, fn, tn, fp = (int(v) for v in np.sum(members, axis=0))
            periods.append(PeriodAgreement(reader, key, len(members), tp, fn, tn, fp))
    return periods


def two_proportion_z(successes: int, total: int, base_successes: int, base_total: int) -> tuple[float, float]:
    """z (pooled variance) and its two-sided p-value for successes/total against the baseline's."""
    if not total or not base_total:
        return math.nan, math.nan
    pooled = (successes + base_successes) / (total + base_total)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / total + 1 / base_total))
    if spread == 0:
        return math.nan, math.nan
    z = (successes / total - base_successes / base_total) / spread
    return z, math.erfc(abs(z) / math.sqrt(2))


def drift_warnings(periods: list[PeriodAgreement], alpha: float = DRIFT_ALPHA,
                   min_items: int = MIN_ITEMS) -> list[DriftWarning]:
    """Groups whose sensitivity or specificity departs from the reader's earlier groups beyond chance."""
    warnings = []
    by_reader: dict[int, list[PeriodAgreement]] = defaultdict(list)
    for period in periods:
        by_reader[period.reader_id].append(period)
    for reader, own in by_reader.items():
        base = np.zeros(4, np.int64)
        for period in own:
            current = np.array([period.true_positive, period.false_negative, period.true_negative, period.false_positive])
            if base.sum():
                for measure, hit, miss in (("sensitivity", 0, 1), ("specificity", 2, 3)):
                    total, base_total = current[hit] + current[miss], base[hit] + base[miss]
                    if total < min_items or base_total < min_items:
                        continue
                    z, p = two_proportion_z(int(current[hit]), int(total), int(base[hit]), int(base_total))
                    if not math.isnan(p) and p < alpha:
                        warnings.append(DriftWarning(reader, period.period, measure, base[hit] / base_total,
                                                     current[hit] / total, z, p))
            base += current
    return warnings
