"""The final answer per image and finding that export and training use.

The project's ``label_source`` (``storage.project.LABEL_SOURCES``) decides:
- ``consensus``: the readers' consensus (``annotate.consensus``), adjudications ignored;
- ``adjudicated``: a reviewer's newest adjudication where one exists (``storage.adjudication``),
  else on a gold-standard image the expert's gold answer (``storage.quality``; findings it does not
  name are absent), else the consensus. An adjudicated finding is present with the adjudicated regions or absent,
  whatever the consensus said (also on an image the readers called ungradable); an adjudicated
  diagnosis replaces the majority's.
Readers' rows are never changed: the final answer is computed on reading.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from annotate.consensus import ABSENT, PRESENT, STATE_NAMES, UNCERTAIN, ProjectConsensus, consensus_for_project
from storage.adjudication import AdjudicatedAnswers, adjudicated_answers
from storage.labels import ReadState, regions_to_mask
from storage.project import parse_label_source, project_settings

if TYPE_CHECKING:
    from storage.database import Database

CONSENSUS, ADJUDICATED, GOLD = "consensus", "adjudicated", "gold"


@dataclass(frozen=True)
class FinalFinding:
    state: str                 # "present" | "absent" | "uncertain"
    regions: frozenset[int]    # where present: adjudicated regions, else the consensus cue
    source: str                # "consensus" | "adjudicated" | "gold"


@dataclass(frozen=True)
class FinalImage:
    image_id: int
    findings: dict[str, FinalFinding]
    diagnosis: str | None
    diagnosis_source: str      # "consensus" | "adjudicated" | "gold"


@dataclass
class FinalLabels:
    consensus: ProjectConsensus
    answers: AdjudicatedAnswers
    label_source: str          # "consensus" | "adjudicated"
    gold: dict = field(default_factory=dict)   # image id -> storage.quality.GoldAnswer (used with adjudication)

    @property
    def uses_adjudication(self) -> bool:
        return self.label_source == ADJUDICATED

    def image_ids(self) -> list[int]:
        """Images with a done read or (when used) an adjudication, in id order."""
        ids = {int(i) for i in self.consensus.table.image_ids}
        if self.uses_adjudication:
            ids |= self.answers.image_ids | set(self.gold)
        return sorted(ids)

    def __contains__(self, image_id: int) -> bool:
        return image_id in self.consensus or (self.uses_adjudication and (
            image_id in self.answers.image_ids or image_id in self.gold))

    def finding(self, image_id: int, code: str) -> FinalFinding:
        if self.uses_adjudication:
            decided = self.answers.finding(image_id, code)
            if decided is not None:
                return FinalFinding("present" if decided.present else "absent", decided.regions, ADJUDICATED)
            if image_id in self.gold:
                regions = frozenset(self.gold[image_id].findings.get(code, ()))
                return FinalFinding("present" if regions else "absent", regions, GOLD)
        if image_id not in self.consensus:
            return FinalFinding(STATE_NAMES[UNCERTAIN], frozenset(), CONSENSUS)
        agreed = self.consensus.image(image_id).findings[code]
        return FinalFinding(agreed.state, agreed.cue_regions if agreed.state == "present" else frozenset(), CONSENSUS)

    def diagnosis(self, image_id: int) -> tuple[str | None, str]:
        if self.uses_adjudication and image_id in self.answers.diagnoses:
            return self.answers.diagnoses[image_id], ADJUDICATED
        if self.uses_adjudication and image_id in self.gold and self.gold[image_id].diagnosis is not None:
            return self.gold[image_id].diagnosis, GOLD
        if image_id not in self.consensus:
            return None, CONSENSUS
        return self.consensus.image(image_id).diagnosis, CONSENSUS

    def image(self, image_id: int) -> FinalImage:
        diagnosis, source = self.diagnosis(image_id)
        codes = self.consensus.table.finding_codes
        return FinalImage(image_id, {code: self.finding(image_id, code) for code in codes}, diagnosis, source)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``image_ids()`` with the final state (PRESENT/ABSENT/UNCERTAIN) and region bits per
        finding, int64 [M], int8 [M, F], uint8 [M, F]: the whole project at array speed."""
        c = self.consensus
        ids = np.asarray(self.image_ids(), np.int64)
        codes = c.table.finding_codes
        state = np.full((len(ids), len(codes)), UNCERTAIN, np.int8)
        bits = np.zeros((len(ids), len(codes)), np.uint8)
        rows = np.searchsorted(ids, c.table.image_ids)
        state[rows] = c.state
        bits[rows] = np.where(c.state == PRESENT, c.cue_bits, 0)
        if self.uses_adjudication:
            column = {code: f for f, code in enumerate(codes)}
            for image_id, answer in self.gold.items():
                row = int(np.searchsorted(ids, image_id))
                state[row] = ABSENT
                bits[row] = 0
                for code, regions in answer.findings.items():
                    if code in column and regions:
                        state[row, column[code]] = PRESENT
                        bits[row, column[code]] = regions_to_mask(regions)
            for (image_id, code), decided in self.answers.findings.items():
                if code in column:
                    row = int(np.searchsorted(ids, image_id))
                    state[row, column[code]] = PRESENT if decided.present else ABSENT
                    bits[row, column[code]] = regions_to_mask(decided.regions)
        return ids, state, bits

    def diagnoses(self, ids: Sequence[int] | np.ndarray | None = None) -> list[str | None]:
        """The final diagnosis of each image of ``ids`` (default ``image_ids()``), at array speed."""
        ids = np.asarray(self.image_ids() if ids is None else ids, np.int64)
        c = self.consensus
        names = c.table.diagnosis_names
        by_image = {int(image): (names[d] if d >= 0 else None)
                    for image, d in zip(c.table.image_ids.tolist(), c.diagnosis.tolist())}
        if self.uses_adjudication:
            by_image.update({image: answer.diagnosis for image, answer in self.gold.items() if answer.diagnosis})
            by_image.update(self.answers.diagnoses)
        return [by_image.get(int(image)) for image in ids.tolist()]

    def images(self) -> Iterator[FinalImage]:
        for image_id in self.image_ids():
            yield self.image(image_id)


def final_labels(
    db: Database,
    finding_codes: Sequence[str] | None = None,
    reads: Iterable[tuple[int, int, ReadState]] | None = None,
    k: int | None = None,
    label_source: str | None = None,
) -> FinalLabels:
    """The final labels of a project (module docstring); the project's own settings by default.

    ``reads`` (``storage.review.iter_all_reads``) may be passed when the caller already has them.
    """
    from storage.review import iter_all_reads

    settings = project_settings(db)
    codes = [f.code for f in settings.findings] if finding_codes is None else list(finding_codes)
    source = parse_label_source(label_source or settings.label_source)
    consensus = consensus_for_project(iter_all_reads(db) if reads is None else reads, codes,
                                      k=settings.consensus_k if k is None else k)
    if source != ADJUDICATED:
        return FinalLabels(consensus, AdjudicatedAnswers(), source)
    from storage.quality import gold_answers

    return FinalLabels(consensus, adjudicated_answers(db), source, gold_answers(db))
