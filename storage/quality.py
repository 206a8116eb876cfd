"""Quality control as reading centres run it: gold-standard images and blind repeat reads, mixed
unannounced into readers' queues.

An admin enters an expert's answer for an image once (``mark_gold``); ``mix_gold_into_queues``
then gives every active reader allowed to read that image's split a read of it, at a random place
among the reads they have not finished. Nothing in a reader's session tells a gold image from any
other: it is an ordinary read with the same fields and the same queue order rules (by position);
only reviewers and admins see which images are gold (``gold_answers``) and each reader's score
against them (``annotate.quality``). The readers' reads of gold images are kept like any other.

Repeat reads (``schedule_repeats``): a share of each reader's finished reads is reopened, blank
and unfinished, at a random place among their unfinished reads, as if newly assigned; their first
answer is kept apart (``repeat_read``) and compared with the one they give again (intra-reader
agreement, ``annotate.quality``). Until read again the image counts without that reader in the
consensus; afterwards their new answer counts, as their latest answer always does.
"""
from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, insert, select, update

from storage.audit import record
from storage.database import Database
from storage.errors import AccessDeniedError, InvalidRequestError, NotFoundError
from storage.labels import READ_COLUMNS, load_read_states, regions_to_mask, state_json
from storage.project import project_settings
from storage.readers import Role
from storage.schema import (
    DiagnosisClass,
    DiagnosisLabel,
    Finding,
    GoldStandard,
    Image,
    Landmark,
    Read,
    Reader,
    RegionalLabel,
    RepeatRead,
    utc_now,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

_PARKED = 2**30   # a queue position above any real one, for a read being moved


@dataclass(frozen=True)
class GoldAnswer:
    image_id: int
    findings: dict[str, frozenset[int]]   # present findings and their regions; others are absent
    diagnosis: str | None
    entered_by: int | None
    entered_at: datetime


def _require_admin(session: Session, reader_id: int) -> None:
    role = session.scalar(select(Reader.role).where(Reader.id == reader_id))
    if role is None:
        raise NotFoundError(f"There is no reader number {reader_id}; pick one from the reader list.")
    if role != Role.ADMIN.value:
        raise AccessDeniedError("Only admins set up quality control; sign in as an admin.")


def mark_gold(db: Database, admin_id: int, image_id: int, findings: dict[str, Iterable[int]],
              diagnosis: str | None = None) -> GoldAnswer:
    """Enter the expert's answer for an image (present findings with their regions); once only."""
    try:
        masks = {code: regions_to_mask(regions) for code, regions in findings.items()}
    except (TypeError, ValueError):
        raise InvalidRequestError("Regions are codes 1 to 8 (docs/geometry.md); check the gold answer.") from None
    if any(mask == 0 for mask in masks.values()):
        raise InvalidRequestError("A present finding in a gold answer needs its regions; leave absent ones out.")
    with db.transaction(lock="assignment") as session:
        _require_admin(session, admin_id)
        if session.get(Image, image_id) is None:
            raise NotFoundError(f"There is no image number {image_id} in this project; import it first.")
        if session.scalar(select(GoldStandard.id).where(GoldStandard.image_id == image_id)) is not None:
            raise InvalidRequestError(f"Image {image_id} has its gold answer already; it is entered once.")
        known = set(session.scalars(select(Finding.code)))
        unknown = sorted(set(masks) - known)
        if unknown:
            raise NotFoundError(f"This project has no finding called {unknown[0]!r}; check the finding list.")
        if diagnosis is not None and session.scalar(
                select(DiagnosisClass.id).where(DiagnosisClass.name == diagnosis)) is None:
            raise NotFoundError(f"This project has no diagnosis called {diagnosis!r}; check the diagnosis list.")
        stored = {code: sorted(regions) for code, regions in
                  ((code, [c for c in range(1, 9) if mask >> (c - 1) & 1]) for code, mask in masks.items())}
        now = utc_now()
        gold_id = session.scalar(insert(GoldStandard).returning(GoldStandard.id), dict(
            image_id=image_id, findings=stored, diagnosis=diagnosis, entered_by=admin_id, entered_at=now))
        record(session, "gold_standard", gold_id, "create", None,
               dict(image_id=image_id, findings=stored, diagnosis=diagnosis), admin_id)
    return GoldAnswer(image_id, {c: frozenset(r) for c, r in stored.items()}, diagnosis, admin_id, now)


def gold_answers(db: Database) -> dict[int, GoldAnswer]:
    """image id -> its gold answer. Unchecked: callers (review, report) decide who may see it."""
    with db.reading() as session:
        return {row.image_id: GoldAnswer(row.image_id, {c: frozenset(r) for c, r in row.findings.items()},
                                         row.diagnosis, row.entered_by, row.entered_at)
                for row in session.scalars(select(GoldStandard).order_by(GoldStandard.image_id))}


def _insert_at(session: Session, reader_id: int, position: int) -> None:
    """Make room at ``position`` in a reader's queue: later reads move one place down. Two steps
    through negative numbers keep (reader, position) unique at every row update."""
    session.execute(update(Read).where(Read.reader_id == reader_id, Read.position >= position)
                    .values(position=-Read.position - 2))
    session.execute(update(Read).where(Read.reader_id == reader_id, Read.position < 0)
                    .values(position=-Read.position - 1))


def mix_gold_into_queues(db: Database, admin_id: int, seed: int = 0) -> int:
    """Give every eligible active reader a read of every gold image, each at a random place among
    their unfinished reads (one audited action); returns the reads added."""
    rng = random.Random(seed)
    settings = project_settings(db)
    with db.transaction(lock="assignment") as session:
        _require_admin(session, admin_id)
        gold = session.execute(select(Image.id, Image.split).join(GoldStandard, GoldStandard.image_id == Image.id)
                               .order_by(Image.id)).all()
        readers = session.execute(select(Reader.id, Reader.role).where(Reader.active).order_by(Reader.id)).all()
        have = set(session.execute(select(Read.image_id, Read.reader_id)).all())
        added = []
        for image_id, split in gold:
            for reader_id, role in readers:
                if role not in settings.split_roles.get(split, ()) or (image_id, reader_id) in have:
                    continue
                first_open, end = session.execute(
                    select(func.min(Read.position).filter(Read.done == False), func.max(Read.position) + 1)  # noqa: E712
                    .where(Read.reader_id == reader_id)).one()
                end = end or 0
                position = rng.randint(end if first_open is None else first_open, end)
                _insert_at(session, reader_id, position)
                session.execute(insert(Read), [dict(image_id=image_id, reader_id=reader_id, position=position)])
                added.append((image_id, reader_id))
        record(session, "assignment", None, "mix_gold", None,
               dict(seed=seed, reads_added=len(added), images=len(gold)), admin_id)
    return len(added)


def _first_open_and_end(session: Session, reader_id: int, leaving_out: int | None = None) -> tuple[int | None, int]:
    where = [Read.reader_id == reader_id, Read.position < _PARKED]
    if leaving_out is not None:
        where.append(Read.id != leaving_out)
    first_open, end = session.execute(
        select(func.min(Read.position).filter(Read.done == False), func.max(Read.position) + 1)  # noqa: E712
        .where(*where)).one()
    return first_open, end or 0


def _requeue(session: Session, rng: random.Random, reader_id: int, read_id: int) -> int:
    """Move a read to a random place among the reader's unfinished reads; the queue stays contiguous."""
    old = session.scalar(select(Read.position).where(Read.id == read_id))   # earlier moves shift it
    session.execute(update(Read).where(Read.id == read_id).values(position=_PARKED + read_id))
    session.execute(update(Read).where(Read.reader_id == reader_id, Read.position > old, Read.position < _PARKED)
                    .values(position=-Read.position))
    session.execute(update(Read).where(Read.reader_id == reader_id, Read.position < 0)
                    .values(position=-Read.position - 1))
    first_open, end = _first_open_and_end(session, reader_id, read_id)
    position = rng.randint(end if first_open is None else first_open, end)
    _insert_at(session, reader_id, position)
    session.execute(update(Read).where(Read.id == read_id).values(position=position))
    return position


def schedule_repeats(db: Database, admin_id: int, share: float = 0.05, seed: int = 0) -> int:
    """Reopen ``share`` of each reader's finished reads (not gold images, not repeated before) for a
    blind repeat (one audited action each); returns how many were reopened."""
    if not 0 < share <= 1:
        raise InvalidRequestError("The share of repeat reads is a fraction above 0 and at most 1, e.g. 0.05.")
    rng = random.Random(seed)
    reopened = 0
    with db.transaction(lock="assignment") as session:
        _require_admin(session, admin_id)
        gold = set(session.scalars(select(GoldStandard.image_id)))
        repeated = set(session.scalars(select(RepeatRead.read_id)))
        candidates: dict[int, list] = {}
        for row in session.execute(select(*READ_COLUMNS).where(Read.done == True)  # noqa: E712
                                   .order_by(Read.reader_id, Read.position)):
            if row.image_id not in gold and row.id not in repeated:
                candidates.setdefault(row.reader_id, []).append(row)
        now = utc_now()
        for reader_id, rows in sorted(candidates.items()):
            for row in rng.sample(rows, round(share * len(rows))):
                first = state_json(load_read_states(session, [row])[row.id])
                session.execute(insert(RepeatRead), [dict(read_id=row.id, first_answer=first, reopened_by=admin_id,
                                                          reopened_at=now)])
                session.execute(delete(RegionalLabel).where(RegionalLabel.read_id == row.id))
                session.execute(delete(DiagnosisLabel).where(DiagnosisLabel.read_id == row.id))
                session.execute(delete(Landmark).where(Landmark.image_id == row.image_id,
                                                       Landmark.reader_id == reader_id))
                session.execute(update(Read).where(Read.id == row.id).values(
                    done=False, normal=False, ungradable=False, comment="", updated_at=None))
                _requeue(session, rng, reader_id, row.id)
                record(session, "read", row.id, "reopen_for_repeat", first, None, admin_id)
                reopened += 1
    return reopened


def repeat_first_answers(db: Database) -> dict[tuple[int, int], dict]:
    """(image id, reader id) -> the first answer of every repeated read (``state_json`` form).
    Unchecked: callers (report) decide who may see it."""
    with db.reading() as session:
        return {(image_id, reader_id): first for image_id, reader_id, first in session.execute(
            select(Read.image_id, Read.reader_id, RepeatRead.first_answer).join(Read, Read.id == RepeatRead.read_id))}
