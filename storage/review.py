"""Review: every reader's answers side by side, for reviewers and admins only.

Also the one streaming pass over all reads that consensus, agreement, export and training use.
"""
from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import and_, select

from storage.database import Database
from storage.errors import AccessDeniedError
from storage.labels import (
    DIAGNOSIS_CLASS,
    DIAGNOSIS_LABEL,
    FINDING,
    LANDMARK,
    READ,
    READ_COLUMNS,
    REGIONAL_LABEL,
    Landmarks,
    ReadState,
    load_read_states,
    mask_to_regions,
)
from storage.readers import REVIEW_ROLES, get_reader
from storage.schema import Read

STREAM_BATCH = 5000  # rows per round trip when streaming everything

# Every read with its labels, diagnosis and landmarks in one streaming query: one row per
# (read, finding marked), reads in (image, reader) order from the unique index, each join an
# index lookup.
_EVERYTHING = (
    select(
        *READ_COLUMNS, FINDING.c.code, REGIONAL_LABEL.c.regions, DIAGNOSIS_CLASS.c.name,
        LANDMARK.c.disc_x, LANDMARK.c.disc_y, LANDMARK.c.fovea_x, LANDMARK.c.fovea_y, LANDMARK.c.source,
    )
    .select_from(READ)
    .outerjoin(REGIONAL_LABEL, REGIONAL_LABEL.c.read_id == READ.c.id)
    .outerjoin(FINDING, FINDING.c.id == REGIONAL_LABEL.c.finding_id)
    .outerjoin(DIAGNOSIS_LABEL, DIAGNOSIS_LABEL.c.read_id == READ.c.id)
    .outerjoin(DIAGNOSIS_CLASS, DIAGNOSIS_CLASS.c.id == DIAGNOSIS_LABEL.c.diagnosis_class_id)
    .outerjoin(LANDMARK, and_(LANDMARK.c.image_id == READ.c.image_id, LANDMARK.c.reader_id == READ.c.reader_id))
    .order_by(READ.c.image_id, READ.c.reader_id)
)


class ReviewSession:
    def __init__(self, db: Database, reader_id: int) -> None:
        self.db = db
        self.reader = get_reader(db, reader_id)
        if self.reader.role not in REVIEW_ROLES:
            raise AccessDeniedError(
                "Only reviewers and admins can compare readers' labels; blind reading hides them from others."
            )

    def reads_for(self, image_id: int) -> dict[int, ReadState]:
        """Every assigned reader's answer for one image, keyed by reader id."""
        with self.db.reading() as session:
            rows = session.execute(
                select(*READ_COLUMNS).where(Read.image_id == image_id).order_by(Read.reader_id)
            ).all()
            states = load_read_states(session, rows)
            return {row.reader_id: states[row.id] for row in rows}

    def all_reads(self) -> Iterator[tuple[int, int, ReadState]]:
        """(image_id, reader_id, ReadState) for every read, ordered by image then reader."""
        return iter_all_reads(self.db)


def iter_all_reads(db: Database) -> Iterator[tuple[int, int, ReadState]]:
    """Unchecked stream of all reads; callers outside review (training, export) decide access."""
    with db.reading() as session:
        # Core streaming on the session's connection: one snapshot for the whole pass.
        result = session.connection().execution_options(yield_per=STREAM_BATCH).execute(_EVERYTHING)
        current = None
        regions: dict[str, frozenset[int]] = {}
        for (read_id, image_id, reader_id, normal, ungradable, comment, done, code, mask, diagnosis,
             disc_x, disc_y, fovea_x, fovea_y, source) in result:
            if current is None or read_id != current[0]:
                if current is not None:
                    yield current[1], current[2], ReadState(regions, *current[3:])
                regions = {}
                landmarks = None if source is None else Landmarks((disc_x, disc_y), (fovea_x, fovea_y), source)
                current = (read_id, image_id, reader_id, normal, ungradable, diagnosis, comment, done, landmarks)
            if code is not None:
                regions[code] = mask_to_regions(mask)
        if current is not None:
            yield current[1], current[2], ReadState(regions, *current[3:])
