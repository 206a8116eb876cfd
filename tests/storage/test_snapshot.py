"""A project's database copied into a new SQLite file (what `screenshot` works on), from either backend."""
from __future__ import annotations

from sqlalchemy import func, select

from storage.audit import verify
from storage.project import open_project
from storage.readers import list_readers
from storage.reading import ReaderSession
from storage.schema import Base
from storage.snapshot import copy_to_sqlite


def test_every_row_is_copied_and_the_copy_opens_as_the_project(clinic, tmp_path):
    db = clinic.project.database
    reader = clinic.ophthalmologists[0].id
    session = ReaderSession(db, reader)
    image = session.next_unfinished().id
    session.set_regions(image, "drusen", {1, 5})
    session.mark_done(image)
    (tmp_path / "copied").mkdir()
    copy_to_sqlite(db, tmp_path / "copied" / "octant.sqlite")
    with open_project(tmp_path / "copied") as copy:
        for table in Base.metadata.sorted_tables:
            with db.reading() as original, copy.database.reading() as copied:
                count = select(func.count()).select_from(table)
                assert copied.scalar(count) == original.scalar(count), table.name
        assert [r.name for r in list_readers(copy.database)] == [r.name for r in list_readers(db)]
        assert ReaderSession(copy.database, reader).read(image) == session.read(image)
        copied_audit, original_audit = verify(copy.database), verify(db)
        assert copied_audit.intact and copied_audit.head == original_audit.head
