"""The audit trail: who changed what, when, with the value before and after; tamper-evident.

``record`` is called by every write function inside the same transaction as the change, so an
action and its audit event are saved together or not at all. It is the one way events are added
(other modules, e.g. sign-in and credential changes, call it too).

Tamper evidence: the table is append-only (triggers refuse UPDATE and DELETE, migration 0003_audit_chain) and
hash-chained: each row stores ``prev_hash`` (the ``row_hash`` of the row before, ``GENESIS`` for
the first) and ``row_hash``, the SHA-256 of its own content including ``prev_hash``. ``verify``
recomputes the chain, so an edited, deleted, inserted or reordered row shows up even when the
triggers were dropped first; only a rewrite of every row after the change goes unseen, which
``verify(expect_head=...)`` catches against a head hash noted earlier (docs/audit.md).

Appends are serialised so two workstations never link to the same row: SQLite's writers take turns
(``BEGIN IMMEDIATE``); PostgreSQL takes a transaction-level advisory lock. Times are UTC and
timezone-aware; on PostgreSQL they come from the server's clock, not each workstation's.
"""
from __future__ import annotations

import csv
import getpass
import hashlib
import json
import threading
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Connection, Select, Table, insert, select, text
from sqlalchemy.orm import Session

from storage.database import Database
from storage.errors import CancelledError, InvalidRequestError
from storage.postgresql import LOCK_NAMESPACE
from storage.schema import AuditEvent, utc_now


def _operating_system_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name (some containers and services)
        return "unknown"


ACTOR = _operating_system_user()
GENESIS = "0" * 64  # prev_hash of the first event
AUDIT_LOCK_KEY = 100  # pg_advisory_xact_lock(LOCK_NAMESPACE, 100): one appender at a time
_AUDIT = cast(Table, AuditEvent.__table__)   # declarative classes type __table__ as a FromClause
_INSERT_EVENT = insert(_AUDIT)  # prebuilt: recorded on every save
_LAST_EVENT = select(_AUDIT.c.id, _AUDIT.c.row_hash).order_by(_AUDIT.c.id.desc()).limit(1)
_PG_APPEND = text(f"SELECT pg_advisory_xact_lock({LOCK_NAMESPACE}, {AUDIT_LOCK_KEY}), clock_timestamp()")
EXPORT_FORMATS = ("csv", "json")


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
    prev_hash: str | None = None
    row_hash: str | None = None


@dataclass(frozen=True)
class VerifyReport:
    events: int
    head: str  # row_hash of the last event (GENESIS when there is none): note it to check later
    problems: list[str]

    @property
    def intact(self) -> bool:
        return not self.problems


def as_utc(moment: datetime) -> datetime:
    """SQLite hands DateTime columns back without their zone; Octant stores UTC there."""
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _canonical_json(value: Any) -> Any:
    # What the JSON column will give back (tuples become lists, keys strings), so the hash made
    # before the insert equals the one verify makes from the stored row.
    return None if value is None else json.loads(json.dumps(value))


def content_hash(
    event_id: int, prev_hash: str, reader_id: int | None, actor: str, at: datetime, entity: str,
    entity_id: int | None, action: str, before: Any, after: Any,
) -> str:
    """SHA-256 of one event's content and the hash before it. Fixed forever: changing it would
    make every stored chain fail to verify."""
    content = [event_id, prev_hash, reader_id, actor, as_utc(at).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
               entity, entity_id, action, _canonical_json(before), _canonical_json(after)]
    encoded = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def state_digest(state_json: dict[str, Any]) -> str:
    """SHA-256 of a stored state's audit JSON: lets an event say exactly what was stored."""
    encoded = json.dumps(_canonical_json(state_json), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def record(
    session: Session | Connection,
    entity: str,
    entity_id: int | None,
    action: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    reader_id: int | None = None,
) -> None:
    """Append one event to the chain inside the caller's (writing) transaction."""
    at = utc_now()
    dialect = session.dialect if isinstance(session, Connection) else session.get_bind().dialect
    if dialect.name == "postgresql":
        # Held until commit: the next appender reads this row as its predecessor.
        at = session.execute(_PG_APPEND).one()[1]
    last = session.execute(_LAST_EVENT).first()
    event_id, prev_hash = (1, GENESIS) if last is None else (last.id + 1, last.row_hash or GENESIS)
    row_hash = content_hash(event_id, prev_hash, reader_id, ACTOR, at, entity, entity_id, action, before, after)
    session.execute(_INSERT_EVENT, dict(
        id=event_id, reader_id=reader_id, actor=ACTOR, at=at, entity=entity, entity_id=entity_id,
        action=action, before=before, after=after, prev_hash=prev_hash, row_hash=row_hash,
    ))


def _records(session: Session, query: Select[Any]) -> list[AuditRecord]:
    return [
        AuditRecord(e.id, e.reader_id, e.actor, as_utc(e.at), e.entity, e.entity_id, e.action,
                    e.before, e.after, e.prev_hash, e.row_hash)
        for e in session.scalars(query)
    ]


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
        return _records(session, query)


def verify(db: Database, expect_head: str | None = None, cancel: threading.Event | None = None) -> VerifyReport:
    """Recompute the whole chain; every break is one sentence naming the event it is at.
    ``cancel`` (checked every few thousand events, well within a second) stops it with CancelledError."""
    problems: list[str] = []
    prev_hash, count = GENESIS, 0
    with db.reading() as session:
        # Core rows, streamed: a clinic's hundreds of thousands of events without the ORM's cost.
        rows = session.connection().execution_options(yield_per=5000).execute(select(_AUDIT).order_by(_AUDIT.c.id))
        for event in rows:
            count += 1
            if cancel is not None and count % 2000 == 0 and cancel.is_set():
                raise CancelledError("Checking the audit trail was cancelled; nothing was changed.")
            if event.prev_hash != prev_hash:
                problems.append(f"Event {event.id} does not follow the event before it (one was deleted, "
                                "inserted or moved there).")
            expected = content_hash(event.id, event.prev_hash or "", event.reader_id, event.actor, event.at,
                                    event.entity, event.entity_id, event.action, event.before, event.after)
            if event.row_hash != expected:
                problems.append(f"Event {event.id} ({event.entity} {event.action}) was changed after it was "
                                "recorded (its content does not match its hash).")
            prev_hash = event.row_hash or ""
    head = prev_hash if count else GENESIS
    if expect_head is not None and expect_head.strip().lower() != head:
        problems.append(f"The last event's hash is {head}, not the expected {expect_head.strip()}: events at the "
                        "end were removed, or the chain was rewritten.")
    return VerifyReport(count, head, problems)


def export(db: Database, out: Path, format: str) -> int:
    """Write every event to ``out`` as CSV or JSON (UTC ISO 8601 times); returns the count."""
    if format not in EXPORT_FORMATS:
        raise InvalidRequestError(f"Audit export writes {' or '.join(EXPORT_FORMATS)}, not {format!r}.")
    events = audit_events(db)
    rows = []
    for event in events:
        row = asdict(event)
        row["at"] = event.at.isoformat()
        rows.append(row)
    out = Path(out)
    temporary = out.with_name(out.name + ".part")  # never a half-written export under the real name
    try:
        _write_rows(temporary, rows, format)
        temporary.replace(out)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return len(events)


def _write_rows(path: Path, rows: list[dict[str, Any]], format: str) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        if format == "json":
            json.dump(rows, handle, ensure_ascii=False, indent=1)
        else:
            writer = csv.DictWriter(handle, fieldnames=[f for f in AuditRecord.__dataclass_fields__])
            writer.writeheader()
            for row in rows:
                writer.writerow({k: json.dumps(v, ensure_ascii=False) if k in ("before", "after") else v
                                 for k, v in row.items()})
