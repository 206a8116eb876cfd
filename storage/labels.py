"""What one reader answered for one image (``ReadState``), and how it is loaded.

Region sets travel as ``frozenset[int]`` of codes 1..8 (``geometry.md``) and are stored as an
8-bit mask, bit ``code - 1``. Blind reading is enforced by the callers (``reading.py``,
``review.py``): these loaders take the read ids they are allowed to see.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.schema import DiagnosisClass, DiagnosisLabel, Finding, Landmark, Read, RegionalLabel

REGION_CODES = frozenset(range(1, 9))
LANDMARK_SOURCES = ("manual", "model")

# All 256 region sets, so turning a stored mask into a set costs one list lookup.
_MASK_TO_REGIONS = [frozenset(c for c in REGION_CODES if mask >> (c - 1) & 1) for mask in range(256)]


def regions_to_mask(regions: Iterable[int]) -> int:
    mask = 0
    for code in regions:
        if code not in REGION_CODES:
            raise ValueError(f"Region codes are 1..8, got {code!r}.")
        mask |= 1 << (code - 1)
    return mask


def mask_to_regions(mask: int) -> frozenset[int]:
    return _MASK_TO_REGIONS[mask]


@dataclass(frozen=True)
class Landmarks:
    disc: tuple[float, float]  # optic disc centre (x, y), original image pixels
    fovea: tuple[float, float]
    source: str  # "manual" | "model"


@dataclass(frozen=True)
class ReadState:
    regions: dict[str, frozenset[int]] = field(default_factory=dict)  # finding code -> regions
    normal: bool = False  # an explicit "normal" answer, not the absence of findings
    ungradable: bool = False
    diagnosis: str | None = None
    comment: str = ""
    done: bool = False
    landmarks: Landmarks | None = None

    @property
    def answered(self) -> bool:
        """Normal, at least one finding, or ungradable: the reader may move on."""
        return self.normal or self.ungradable or bool(self.regions)


@dataclass(frozen=True)
class QueueProgress:
    done: int
    total: int


READ_COLUMNS = (Read.id, Read.image_id, Read.reader_id, Read.normal, Read.ungradable, Read.comment, Read.done)


def landmarks_of(row) -> Landmarks:
    return Landmarks((row.disc_x, row.disc_y), (row.fovea_x, row.fovea_y), row.source)


def load_read_states(session: Session, reads: list) -> dict[int, ReadState]:
    """ReadStates for rows selected with READ_COLUMNS, keyed by read id (few queries in all)."""
    if not reads:
        return {}
    read_ids = [r.id for r in reads]
    regions: dict[int, dict[str, frozenset[int]]] = {i: {} for i in read_ids}
    for row in session.execute(
        select(RegionalLabel.read_id, Finding.code, RegionalLabel.regions)
        .join(Finding, Finding.id == RegionalLabel.finding_id)
        .where(RegionalLabel.read_id.in_(read_ids))
        .order_by(Finding.position)
    ):
        regions[row.read_id][row.code] = _MASK_TO_REGIONS[row.regions]
    diagnoses = dict(session.execute(
        select(DiagnosisLabel.read_id, DiagnosisClass.name)
        .join(DiagnosisClass, DiagnosisClass.id == DiagnosisLabel.diagnosis_class_id)
        .where(DiagnosisLabel.read_id.in_(read_ids))
    ).all())
    pairs = {(r.image_id, r.reader_id) for r in reads}
    landmarks: dict[tuple[int, int], Landmarks] = {}
    for row in session.execute(
        select(Landmark).where(
            Landmark.image_id.in_({image for image, _ in pairs}),
            Landmark.reader_id.in_({reader for _, reader in pairs}),
        )
    ).scalars():
        landmarks[(row.image_id, row.reader_id)] = landmarks_of(row)
    return {
        r.id: ReadState(
            regions=regions[r.id], normal=r.normal, ungradable=r.ungradable,
            diagnosis=diagnoses.get(r.id), comment=r.comment, done=r.done,
            landmarks=landmarks.get((r.image_id, r.reader_id)),
        )
        for r in reads
    }
