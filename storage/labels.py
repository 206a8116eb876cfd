"""What one reader answered for one image (``ReadState``), and how it is loaded.

Region sets travel as ``frozenset[int]`` of codes 1..8 (``docs/geometry.md``) and are stored as an
8-bit mask, bit ``code - 1``. Blind reading is enforced by the callers (``reading.py``,
``review.py``): these loaders take the read ids they are allowed to see.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from sqlalchemy import Connection, Table, bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from storage.errors import NotFoundError
from storage.schema import DiagnosisClass, DiagnosisLabel, Finding, Landmark, Read, RegionalLabel, utc_now

# Where statements run: an ORM session, or the connection of one (faster on the hot paths).
Executor = Session | Connection

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


# Core tables: the hot paths (saving a label, next in queue) use prebuilt Core statements with
# bound parameters, which skips most of the ORM's per-statement work (see bench_storage.py).
READ = cast(Table, Read.__table__)   # declarative classes type __table__ as a FromClause
REGIONAL_LABEL = cast(Table, RegionalLabel.__table__)
FINDING = Finding.__table__
DIAGNOSIS_LABEL = cast(Table, DiagnosisLabel.__table__)
DIAGNOSIS_CLASS = cast(Table, DiagnosisClass.__table__)
LANDMARK = cast(Table, Landmark.__table__)

READ_COLUMNS = (READ.c.id, READ.c.image_id, READ.c.reader_id, READ.c.normal, READ.c.ungradable,
                READ.c.comment, READ.c.done)

_REGIONS_OF_READS = (
    select(REGIONAL_LABEL.c.read_id, FINDING.c.code, REGIONAL_LABEL.c.regions)
    .join(FINDING, FINDING.c.id == REGIONAL_LABEL.c.finding_id)
    .where(REGIONAL_LABEL.c.read_id.in_(bindparam("read_ids", expanding=True)))
    .order_by(REGIONAL_LABEL.c.read_id, FINDING.c.position)
)
_DIAGNOSES_OF_READS = (
    select(DIAGNOSIS_LABEL.c.read_id, DIAGNOSIS_CLASS.c.name)
    .join(DIAGNOSIS_CLASS, DIAGNOSIS_CLASS.c.id == DIAGNOSIS_LABEL.c.diagnosis_class_id)
    .where(DIAGNOSIS_LABEL.c.read_id.in_(bindparam("read_ids", expanding=True)))
)
_LANDMARKS_OF_READERS = select(
    LANDMARK.c.image_id, LANDMARK.c.reader_id, LANDMARK.c.disc_x, LANDMARK.c.disc_y,
    LANDMARK.c.fovea_x, LANDMARK.c.fovea_y, LANDMARK.c.source,
).where(
    LANDMARK.c.image_id.in_(bindparam("image_ids", expanding=True)),
    LANDMARK.c.reader_id.in_(bindparam("reader_ids", expanding=True)),
)


class LandmarkColumns(Protocol):
    """A stored landmark pair: a row of LANDMARK's columns or a ``schema.Landmark``."""

    @property
    def disc_x(self) -> float: ...
    @property
    def disc_y(self) -> float: ...
    @property
    def fovea_x(self) -> float: ...
    @property
    def fovea_y(self) -> float: ...
    @property
    def source(self) -> str: ...


def landmarks_of(row: LandmarkColumns) -> Landmarks:
    return Landmarks((row.disc_x, row.disc_y), (row.fovea_x, row.fovea_y), row.source)


def load_read_states(session: Executor, reads: Sequence[Any]) -> dict[int, ReadState]:
    """ReadStates for rows selected with READ_COLUMNS (in that order), keyed by read id.

    Three queries whatever the number of reads; rows are unpacked as tuples because this also
    builds every state of a project when consensus streams all reads.
    """
    if not reads:
        return {}
    read_ids = [r[0] for r in reads]
    regions: dict[int, dict[str, frozenset[int]]] = {}
    for read_id, code, mask in session.execute(_REGIONS_OF_READS, {"read_ids": read_ids}):
        regions.setdefault(read_id, {})[code] = _MASK_TO_REGIONS[mask]
    diagnoses = dict(session.execute(_DIAGNOSES_OF_READS, {"read_ids": read_ids}).all())
    landmarks = {
        (row.image_id, row.reader_id): landmarks_of(row)
        for row in session.execute(_LANDMARKS_OF_READERS, {
            "image_ids": list({r[1] for r in reads}), "reader_ids": list({r[2] for r in reads}),
        })
    }
    return {
        read_id: ReadState(regions.get(read_id) or {}, normal, ungradable, diagnoses.get(read_id), comment, done,
                           landmarks.get((image_id, reader_id)) if landmarks else None)
        for read_id, image_id, reader_id, normal, ungradable, comment, done in reads
    }


# --- writing (callers hold the transaction and have checked access) ------------------------
def landmarks_json(landmarks: Landmarks | None) -> dict | None:
    if landmarks is None:
        return None
    return dict(disc=list(landmarks.disc), fovea=list(landmarks.fovea), source=landmarks.source)


def state_json(state: ReadState) -> dict:
    """A ReadState as audit JSON."""
    return dict(
        regions={code: sorted(regions) for code, regions in state.regions.items()},
        normal=state.normal, ungradable=state.ungradable, diagnosis=state.diagnosis,
        comment=state.comment, landmarks=landmarks_json(state.landmarks),
    )


def state_from_json(data: dict) -> ReadState:
    """``state_json``'s dict back as a ReadState (``done`` is not in it: False)."""
    marks = data.get("landmarks")
    landmarks = None if marks is None else Landmarks(
        (float(marks["disc"][0]), float(marks["disc"][1])), (float(marks["fovea"][0]), float(marks["fovea"][1])),
        str(marks["source"]))
    return ReadState(regions={str(code): frozenset(int(r) for r in regions)
                              for code, regions in (data.get("regions") or {}).items()},
                     normal=bool(data.get("normal")), ungradable=bool(data.get("ungradable")),
                     diagnosis=data.get("diagnosis"), comment=str(data.get("comment") or ""), landmarks=landmarks)


def write_diagnosis(session: Executor, read_id: int, diagnosis: str | None) -> str | None:
    """Set (or with None remove) a read's diagnosis; returns the previous one."""
    old = session.scalar(_DIAGNOSES_OF_READS.with_only_columns(DIAGNOSIS_CLASS.c.name), {"read_ids": [read_id]})
    session.execute(delete(DIAGNOSIS_LABEL).where(DIAGNOSIS_LABEL.c.read_id == read_id))
    if diagnosis is not None:
        class_id = session.scalar(select(DIAGNOSIS_CLASS.c.id).where(DIAGNOSIS_CLASS.c.name == diagnosis))
        if class_id is None:
            raise NotFoundError(f"This project has no diagnosis {diagnosis!r}; check the diagnosis list.")
        session.execute(insert(DIAGNOSIS_LABEL).values(read_id=read_id, diagnosis_class_id=class_id))
    return old


def write_landmarks(session: Executor, image_id: int, reader_id: int, landmarks: Landmarks | None) -> Landmarks | None:
    """Set (or with None remove) a reader's landmarks for an image; returns the previous ones."""
    where = (LANDMARK.c.image_id == image_id, LANDMARK.c.reader_id == reader_id)
    old = session.execute(_LANDMARKS_OF_READERS.where(*where), {"image_ids": [image_id], "reader_ids": [reader_id]}).first()
    if landmarks is None:
        session.execute(delete(LANDMARK).where(*where))
    else:
        values = dict(disc_x=landmarks.disc[0], disc_y=landmarks.disc[1], fovea_x=landmarks.fovea[0],
                      fovea_y=landmarks.fovea[1], source=landmarks.source, updated_at=utc_now())
        if old is None:
            session.execute(insert(LANDMARK).values(image_id=image_id, reader_id=reader_id, **values))
        else:
            session.execute(update(LANDMARK).where(*where).values(**values))
    return None if old is None else landmarks_of(old)
