"""A copy of a project's database as a new SQLite file, from any backend, for work that must
not change the project (``main.py screenshot`` drives the workstation on the copy).

A SQLite project is copied with SQLite's backup API (``ui/screenshots``); a PostgreSQL one has
no file to copy, so its rows are read in one REPEATABLE READ snapshot (``Database.reading``) and
written table by table, parents first, into a SQLite file made at the same schema revision.
"""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from storage.database import Database, sqlite_url
from storage.schema import Base

BATCH_ROWS = 5000   # rows per INSERT: memory stays bounded on a large project


def copy_to_sqlite(source: Database, target: Path) -> None:
    """Every row of ``source`` into a new SQLite database at ``target`` (which must not exist)."""
    copy = Database.open(sqlite_url(target), create=True)   # the schema at this Octant's head
    try:
        with source.reading() as session, copy.engine.begin() as out:
            for table in Base.metadata.sorted_tables:   # parents before the rows that refer to them
                rows = session.execute(select(table)).mappings()
                while batch := [dict(row) for row in rows.fetchmany(BATCH_ROWS)]:
                    out.execute(table.insert(), batch)
    finally:
        copy.dispose()
