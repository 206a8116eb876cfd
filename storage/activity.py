"""Readers' actions on their reads, from the audit trail, for reader analytics (reviewers/admins).

One query joins the audit events of reads with the reads themselves, so each action comes with
its reader, image and time; ``annotate.analytics`` turns them into seconds per image and action
and agreement over time.
"""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select

from storage.database import Database
from storage.schema import AuditEvent, Read

READ_ENTITY = "read"


def read_actions(db: Database) -> list[tuple[int, int, str, datetime, bool]]:
    """(reader id, image id, action, when (UTC), marked done) of every audited action on a read,
    in the order they happened. Unchecked like ``storage.review.iter_all_reads``."""
    query = (select(Read.reader_id, Read.image_id, AuditEvent.action, AuditEvent.at, AuditEvent.after)
             .join(Read, Read.id == AuditEvent.entity_id)
             .where(AuditEvent.entity == READ_ENTITY, AuditEvent.reader_id == Read.reader_id)
             .order_by(AuditEvent.id))
    actions = []
    with db.reading() as session:
        for reader_id, image_id, action, at, after in session.execute(query):
            if at.tzinfo is None:   # SQLite keeps no zone; everything stored is UTC
                at = at.replace(tzinfo=timezone.utc)
            done = action == "mark_done" and bool((after or {}).get("done"))
            actions.append((reader_id, image_id, action, at, done))
    return actions
