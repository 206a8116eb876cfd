"""Each reader's score against the gold-standard images, and their agreement with themselves on
blind repeat reads (quality control, ``storage.quality``).

Items are every (gold image, finding) of a reader's done, gradable reads of gold images: the
finding is present in the gold answer or absent. Finding level: sensitivity, specificity and
Cohen's kappa of the reader's marks against gold; region level: the same over (image, finding,
region) items, a region being "in" when the gold answer has the finding there; diagnosis: the
share of reads giving the gold diagnosis, over gold images that have one.

Repeats: the first answer of a reopened read against the answer given again, where the repeat is
done and both answers are gradable; the same items (first answer in the place of gold), so
sensitivity is "found again", and Cohen's kappa is the intra-reader kappa.
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from annotate.agreement import TwoByTwoScores
from annotate.consensus import ReadLike


@dataclass(frozen=True)
class Counts(TwoByTwoScores):
    true_positive: int = 0
    false_negative: int = 0
    true_negative: int = 0
    false_positive: int = 0

    def add(self, truth: bool, said: bool) -> Counts:
        tp, fn, tn, fp = self.true_positive, self.false_negative, self.true_negative, self.false_positive
        if truth:
            return Counts(tp + said, fn + (not said), tn, fp)
        return Counts(tp, fn, tn + (not said), fp + said)


@dataclass(frozen=True)
class GoldScore:
    reader_id: int
    images: int
    findings: Counts
    regions: Counts
    diagnoses_right: int
    diagnoses_asked: int

    @property
    def diagnosis_accuracy(self) -> float:
        return self.diagnoses_right / self.diagnoses_asked if self.diagnoses_asked else math.nan


def scores_against_gold(reads: Iterable[tuple[int, int, ReadLike]], gold: dict, finding_codes: Sequence[str]
                        ) -> list[GoldScore]:
    """``reads`` as ``storage.review.iter_all_reads`` gives them; ``gold`` image id -> an answer
    with ``findings`` (code -> regions) and ``diagnosis`` (``storage.quality.GoldAnswer``)."""
    images: dict[int, int] = defaultdict(int)
    findings: dict[int, Counts] = defaultdict(Counts)
    regions: dict[int, Counts] = defaultdict(Counts)
    right: dict[int, int] = defaultdict(int)
    asked: dict[int, int] = defaultdict(int)
    for image_id, reader_id, read in reads:
        answer = gold.get(image_id)
        if answer is None or not read.done or read.ungradable:
            continue
        images[reader_id] += 1
        for code in finding_codes:
            expected = answer.findings.get(code, frozenset())
            said = read.regions.get(code, frozenset())
            findings[reader_id] = findings[reader_id].add(bool(expected), bool(said))
            for region in range(1, 9):
                regions[reader_id] = regions[reader_id].add(region in expected, region in said)
        if answer.diagnosis is not None:
            asked[reader_id] += 1
            right[reader_id] += read.diagnosis == answer.diagnosis
    return [GoldScore(reader, images[reader], findings[reader], regions[reader], right[reader], asked[reader])
            for reader in sorted(images)]


@dataclass(frozen=True)
class RepeatScore:
    reader_id: int
    repeats: int
    findings: Counts            # first answer (rows) against the repeat (columns)
    regions: Counts
    diagnoses_same: int
    diagnoses_both: int

    @property
    def kappa(self) -> float:
        return self.findings.kappa

    @property
    def regional_kappa(self) -> float:
        return self.regions.kappa

    @property
    def diagnosis_agreement(self) -> float:
        return self.diagnoses_same / self.diagnoses_both if self.diagnoses_both else math.nan


def intra_reader_agreement(reads: Iterable[tuple[int, int, ReadLike]], first_answers: dict[tuple[int, int], dict],
                           finding_codes: Sequence[str]) -> list[RepeatScore]:
    """``first_answers`` (image, reader) -> the first answer (``storage.quality.repeat_first_answers``)."""
    repeats: dict[int, int] = defaultdict(int)
    findings: dict[int, Counts] = defaultdict(Counts)
    regions: dict[int, Counts] = defaultdict(Counts)
    same: dict[int, int] = defaultdict(int)
    both: dict[int, int] = defaultdict(int)
    for image_id, reader_id, read in reads:
        first = first_answers.get((image_id, reader_id))
        if first is None or not read.done or read.ungradable or first.get("ungradable"):
            continue
        repeats[reader_id] += 1
        before = {code: frozenset(r) for code, r in (first.get("regions") or {}).items()}
        for code in finding_codes:
            was, now = before.get(code, frozenset()), read.regions.get(code, frozenset())
            findings[reader_id] = findings[reader_id].add(bool(was), bool(now))
            for region in range(1, 9):
                regions[reader_id] = regions[reader_id].add(region in was, region in now)
        if first.get("diagnosis") is not None and read.diagnosis is not None:
            both[reader_id] += 1
            same[reader_id] += first["diagnosis"] == read.diagnosis
    return [RepeatScore(reader, repeats[reader], findings[reader], regions[reader], same[reader], both[reader])
            for reader in sorted(repeats)]
