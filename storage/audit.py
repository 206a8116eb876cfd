"""The audit trail: who changed what, when, with the value before and after.

``record`` is called by every write function inside the same transaction as the change, so an
action and its audit event are saved together or not at all.
"""
from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select
from sqlalchemy.orm import Session

from storage.database import Database
from storage.schema import AuditEvent, utc_now


def _operating_system_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name (some containers and services)
        return "unknown"


ACTOR = _operating_system_user()
_INSERT_EVENT = insert(AuditEvent.__table__)  # prebuilt: recorded on every save


@dataclass(frozen=True)
class AuditRecord:
    id: int
    reader_id: int | None
    actor: str
    at: datetime
    entity: str
    entity_id: int | None
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def record(
    session: Session | Connection,
    entity: str,
    entity_id: int | None,
    action: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    reader_id: int | None = None,
) -> None:
    session.execute(_INSERT_EVENT, dict(
        reader_id=reader_id, actor=ACTOR, at=utc_now(), entity=entity, entity_id=entity_id,
        action=action, before=before, after=after,
    ))


def audit_events(
    db: Database, entity: str | None = None, entity_id: int | None = None
) -> list[AuditRecord]:
    """Audit events in the order they happened, optionally for one entity."""
    query = select(AuditEvent).order_by(AuditEvent.id)
    if entity is not None:
        query = query.where(AuditEvent.entity == entity)
    if entity_id is not None:
        query = query.where(AuditEvent.entity_id == entity_id)
    with db.reading() as session:
        return [
            AuditRecord(e.id, e.reader_id, e.actor, e.at, e.entity, e.entity_id, e.action,
                        e.before, e.after)
            for e in session.scalars(query)
        ]
