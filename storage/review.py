"""Review: every reader's answers side by side, for reviewers and admins only.

Also the one streaming pass over all reads that consensus, agreement, export and training use.
"""
from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import select

from storage.database import Database
from storage.errors import AccessDeniedError
from storage.labels import READ_COLUMNS, ReadState, load_read_states
from storage.readers import REVIEW_ROLES, get_reader
from storage.schema import Read

STREAM_BATCH = 2000  # reads per round trip when streaming everything


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
    query = select(*READ_COLUMNS).order_by(Read.image_id, Read.reader_id)
    with db.reading() as session:
        # Core streaming on the session's connection: one snapshot for the whole pass.
        result = session.connection().execution_options(yield_per=STREAM_BATCH).execute(query)
        for rows in result.partitions():
            states = load_read_states(session, rows)
            for row in rows:
                yield row.image_id, row.reader_id, states[row.id]
