"""Alembic environment for Octant.

Run programmatically by ``storage.database.upgrade_schema`` with a Config built in code; the open
connection arrives in ``config.attributes["connection"]`` so migrations share the caller's engine
(and its SQLite pragmas). ``render_as_batch`` lets later revisions alter SQLite tables.
"""
from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from storage.schema import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:  # developer use: `alembic -c storage/alembic.ini ...`
        url = config.get_main_option("sqlalchemy.url")
        if not url:
            raise RuntimeError("Set sqlalchemy.url in the Alembic configuration to run migrations by hand.")
        engine = create_engine(url)
        with engine.connect() as connection:
            _run(connection)
        return
    _run(connection)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("Octant migrations run online only.")
run_migrations_online()
