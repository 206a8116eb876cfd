"""Consensus of three blind readers per image and finding (Son et al., section 3.1).

A finding is *absent* when no reader marked it, *present* when at least ``k`` of the three did
(k = 2 by default, 3 for a strict project), and *uncertain* otherwise; uncertain findings are left
out of training. The regional cue of a finding is the union of the regions chosen by the readers
who marked it. Diagnoses follow the majority.

Choices the paper leaves open, fixed here:
- Only reads marked done count. A reader who called the image ungradable casts no vote on its
  findings or diagnosis. The image itself is ungradable when a majority of its done reads say
  so; then every finding is uncertain.
- ``k`` counts readers out of ``readers_per_image`` (3); it is not rescaled when fewer gradable
  reads exist. "Absent" needs all ``readers_per_image`` gradable reads to leave the finding
  unmarked: with fewer we cannot know that nobody would have marked it, so it stays uncertain.
- A diagnosis needs more than half of the gradable reads (2 of 3); a tie gives no diagnosis.

Everything is computed on numpy arrays ``[images, readers, findings]`` so that a project of
100 000 images takes well under a second after the reads are collected.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

PRESENT, ABSENT, UNCERTAIN = 1, 0, -1
STATE_NAMES = {PRESENT: "present", ABSENT: "absent", UNCERTAIN: "uncertain"}
DEFAULT_K = 2
READERS_PER_IMAGE = 3
NO_READER = -1


class ReadLike(Protocol):
    """What consensus needs of a reader's read (``storage.reading.ReadState`` fits)."""

    @property
    def regions(self) -> dict[str, frozenset[int]]: ...
    @property
    def normal(self) -> bool: ...
    @property
    def ungradable(self) -> bool: ...
    @property
    def diagnosis(self) -> str | None: ...
    @property
    def done(self) -> bool: ...


def regions_to_bits(regions: Iterable[int]) -> int:
    """Region codes 1..8 as one byte: bit (code − 1)."""
    bits = 0
    for code in regions:
        bits |= 1 << (int(code) - 1)
    return bits


def bits_to_regions(bits: int) -> frozenset[int]:
    return frozenset(code for code in range(1, 9) if bits >> (code - 1) & 1)


@dataclass(frozen=True)
class FindingConsensus:
    state: str                      # "present" | "absent" | "uncertain"
    votes: int                      # gradable readers who marked the finding
    cue_regions: frozenset[int]     # union of their regions


@dataclass(frozen=True)
class ImageConsensus:
    image_id: int
    findings: dict[str, FindingConsensus]
    diagnosis: str | None
    ungradable: bool
    reads: int                      # done reads
    gradable_reads: int


@dataclass
class ReadTable:
    """Done reads laid out as arrays; slot r of image i holds one reader's read."""

    image_ids: np.ndarray           # int64 [N]
    finding_codes: list[str]        # F
    reader_ids: np.ndarray          # int64 [N, R], NO_READER where the slot is empty
    ungradable: np.ndarray          # bool [N, R]
    region_bits: np.ndarray         # uint8 [N, R, F], 0 = finding not marked
    diagnosis: np.ndarray           # int16 [N, R], index into diagnosis_names, -1 = none
    diagnosis_names: list[str]

    @property
    def present(self) -> np.ndarray:
        return self.reader_ids != NO_READER

    @property
    def gradable(self) -> np.ndarray:
        return self.present & ~self.ungradable


def collect_reads(
    reads: Iterable[tuple[int, int, ReadLike]], finding_codes: Sequence[str]
) -> ReadTable:
    """Lay out ``(image_id, reader_id, read)`` triples, e.g. ``ReviewSession.all_reads()``."""
    finding_index = {code: f for f, code in enumerate(finding_codes)}
    row_of: dict[int, int] = {}
    slots: list[int] = []
    entries: list[tuple[int, int, int, bool, str | None]] = []
    marks: list[tuple[int, int, int, int]] = []
    for image_id, reader_id, read in reads:
        if not read.done:
            continue
        row = row_of.setdefault(int(image_id), len(row_of))
        if row == len(slots):
            slots.append(0)
        slot = slots[row]
        slots[row] += 1
        entries.append((row, slot, int(reader_id), bool(read.ungradable), read.diagnosis))
        for code, regions in read.regions.items():
            if regions and code in finding_index:
                marks.append((row, slot, finding_index[code], regions_to_bits(regions)))
    n, r, f = len(row_of), max(slots, default=0), len(finding_codes)
    table = ReadTable(
        image_ids=np.fromiter(row_of.keys(), dtype=np.int64, count=n),
        finding_codes=list(finding_codes),
        reader_ids=np.full((n, r), NO_READER, np.int64),
        ungradable=np.zeros((n, r), bool),
        region_bits=np.zeros((n, r, f), np.uint8),
        diagnosis=np.full((n, r), -1, np.int16),
        diagnosis_names=[],
    )
    if entries:
        rows, cols, readers, ungradable, diagnoses = zip(*entries)
        table.reader_ids[rows, cols] = readers
        table.ungradable[rows, cols] = ungradable
        names = sorted({d for d in diagnoses if d})
        index = {name: i for i, name in enumerate(names)}
        table.diagnosis[rows, cols] = [index[d] if d else -1 for d in diagnoses]
        table.diagnosis_names = names
    if marks:
        mark_rows, mark_cols, findings, bits = (np.asarray(v) for v in zip(*marks))
        table.region_bits[mark_rows, mark_cols, findings] = bits
    return table


@dataclass
class ProjectConsensus:
    """Consensus of every image with at least one done read, as arrays aligned with ``table``."""

    table: ReadTable
    k: int
    readers_per_image: int
    votes: np.ndarray               # int8 [N, F]
    state: np.ndarray               # int8 [N, F]: PRESENT / ABSENT / UNCERTAIN
    cue_bits: np.ndarray            # uint8 [N, F]
    ungradable: np.ndarray          # bool [N]
    diagnosis: np.ndarray           # int16 [N], -1 = no majority

    def row(self, image_id: int) -> int:
        if not hasattr(self, "_rows"):
            self._rows = {int(image): i for i, image in enumerate(self.table.image_ids)}
        return self._rows[int(image_id)]

    def __contains__(self, image_id: int) -> bool:
        try:
            self.row(image_id)
        except KeyError:
            return False
        return True

    def image(self, image_id: int) -> ImageConsensus:
        return self._image_at(self.row(image_id))

    def images(self) -> Iterator[ImageConsensus]:
        for i in range(len(self.table.image_ids)):
            yield self._image_at(i)

    def _image_at(self, i: int) -> ImageConsensus:
        t = self.table
        findings = {
            code: FindingConsensus(
                STATE_NAMES[int(self.state[i, f])], int(self.votes[i, f]), bits_to_regions(int(self.cue_bits[i, f]))
            )
            for f, code in enumerate(t.finding_codes)
        }
        d = int(self.diagnosis[i])
        return ImageConsensus(
            image_id=int(t.image_ids[i]),
            findings=findings,
            diagnosis=t.diagnosis_names[d] if d >= 0 else None,
            ungradable=bool(self.ungradable[i]),
            reads=int(t.present[i].sum()),
            gradable_reads=int(t.gradable[i].sum()),
        )


def _majority_diagnosis(diagnosis: np.ndarray, gradable: np.ndarray) -> np.ndarray:
    """Per image, the diagnosis given by more than half of the gradable reads, else −1."""
    votes = np.where(gradable, diagnosis, -1)
    if votes.shape[1] == 0:
        return np.full(votes.shape[0], -1, np.int16)
    agreeing = (votes[:, :, None] == votes[:, None, :]).sum(axis=2)
    agreeing[votes < 0] = 0
    best = agreeing.argmax(axis=1)
    count = np.take_along_axis(agreeing, best[:, None], axis=1)[:, 0]
    winner = np.take_along_axis(votes, best[:, None], axis=1)[:, 0]
    return np.where(2 * count > gradable.sum(axis=1), winner, -1).astype(np.int16)


def consensus_from_table(
    table: ReadTable, k: int = DEFAULT_K, readers_per_image: int = READERS_PER_IMAGE
) -> ProjectConsensus:
    if not 1 <= k <= readers_per_image:
        raise ValueError(f"k must be between 1 and {readers_per_image}, not {k}")
    gradable = table.gradable
    marked = (table.region_bits != 0) & gradable[:, :, None]
    votes = marked.sum(axis=1).astype(np.int8)
    reads = table.present.sum(axis=1)
    ungradable = 2 * (table.ungradable & table.present).sum(axis=1) > reads
    all_gradable = (gradable.sum(axis=1) >= readers_per_image)[:, None]
    state = np.full(votes.shape, UNCERTAIN, np.int8)
    state[(votes == 0) & all_gradable] = ABSENT
    state[votes >= k] = PRESENT
    state[ungradable] = UNCERTAIN
    cue = np.bitwise_or.reduce(np.where(marked, table.region_bits, 0), axis=1).astype(np.uint8)
    return ProjectConsensus(
        table=table,
        k=k,
        readers_per_image=readers_per_image,
        votes=votes,
        state=state,
        cue_bits=cue,
        ungradable=ungradable,
        diagnosis=_majority_diagnosis(table.diagnosis, gradable),
    )


def consensus_for_project(
    reads: Iterable[tuple[int, int, ReadLike]],
    finding_codes: Sequence[str],
    k: int = DEFAULT_K,
    readers_per_image: int = READERS_PER_IMAGE,
) -> ProjectConsensus:
    """Consensus for every image from ``(image_id, reader_id, read)`` triples."""
    return consensus_from_table(collect_reads(reads, finding_codes), k, readers_per_image)


def consensus_for_image(
    reads: Sequence[ReadLike],
    finding_codes: Sequence[str],
    k: int = DEFAULT_K,
    readers_per_image: int = READERS_PER_IMAGE,
    image_id: int = 0,
) -> ImageConsensus:
    """One image's consensus from its readers' reads (the same rules as for a project)."""
    triples = [(image_id, slot, read) for slot, read in enumerate(reads)]
    result = consensus_for_project(triples, finding_codes, k, readers_per_image)
    if len(result.table.image_ids):
        return result.image(image_id)
    empty = FindingConsensus(STATE_NAMES[UNCERTAIN], 0, frozenset())
    return ImageConsensus(image_id, {code: empty for code in finding_codes}, None, False, 0, 0)
