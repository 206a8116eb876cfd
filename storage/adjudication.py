"""Adjudication: a reviewer's final answer for an image and finding, with the reason.

Adjudications live in their own table and never touch the readers' reads or labels: consensus,
agreement and every reader's answer stay as they were. Rows are only added; the newest per
(image, finding) is the answer and the older ones are its history. Each one is audited in the same
transaction. Only reviewers and admins may adjudicate.

A decision is about one finding (present with its regions, or absent), optionally with the image's
diagnosis; or, with ``finding=None``, about the diagnosis alone. An image's adjudicated diagnosis
is the newest decision that names one.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlalchemy import Row, insert, select
from sqlalchemy.orm import Session

from storage.audit import record
from storage.database import Database
from storage.errors import AccessDeniedError, InvalidRequestError, NotFoundError
from storage.labels import mask_to_regions, regions_to_mask
from storage.readers import REVIEW_ROLES, Role
from storage.schema import Adjudication, DiagnosisClass, Finding, Image, Reader, utc_now


@dataclass(frozen=True)
class AdjudicationRecord:
    id: int
    image_id: int
    finding: str | None          # finding code; None for a decision about the diagnosis alone
    present: bool | None         # None only when finding is None
    regions: frozenset[int]      # region codes 1..8 where present; empty when absent
    diagnosis: str | None        # the image's diagnosis decided here, or None (left undecided)
    reason: str
    reviewer_id: int
    decided_at: datetime


@dataclass(frozen=True)
class AdjudicatedAnswers:
    """The newest adjudication of every (image, finding) and every image's diagnosis."""

    findings: dict[tuple[int, str], AdjudicationRecord] = field(default_factory=dict)
    diagnoses: dict[int, str] = field(default_factory=dict)
    # image -> finding code (None: the diagnosis) -> the decision in force for it, for the review queue's marks
    in_force: dict[int, dict[str | None, AdjudicationRecord]] = field(default_factory=dict)

    def add(self, entry: AdjudicationRecord) -> None:
        """``entry`` is newer than every answer held: it becomes the answer in force for what it decides."""
        decided = self.in_force.setdefault(entry.image_id, {})
        if entry.finding is not None:
            self.findings[(entry.image_id, entry.finding)] = decided[entry.finding] = entry
        if entry.diagnosis is not None:
            self.diagnoses[entry.image_id] = entry.diagnosis
            decided[None] = entry

    def of_image(self, image_id: int) -> dict[str | None, AdjudicationRecord]:
        """Finding code (None: the diagnosis) -> the decision in force, on one image."""
        return dict(self.in_force.get(int(image_id), {}))

    def finding(self, image_id: int, code: str) -> AdjudicationRecord | None:
        return self.findings.get((int(image_id), code))

    @property
    def settled(self) -> set[tuple[int, str | None]]:
        """(image, finding) pairs with an answer, and (image, None) for a decided diagnosis."""
        return set(self.findings) | {(image, None) for image in self.diagnoses}

    @property
    def image_ids(self) -> set[int]:
        return {image for image, _ in self.findings} | set(self.diagnoses)


def _require_reviewer(session: Session, reviewer_id: int) -> None:
    role = session.scalar(select(Reader.role).where(Reader.id == reviewer_id))
    if role is None:
        raise NotFoundError(f"There is no reader number {reviewer_id}; pick one from the reader list.")
    if Role(role) not in REVIEW_ROLES:
        raise AccessDeniedError("Only reviewers and admins can adjudicate; sign in as one.")


_COLUMNS = (Adjudication.id, Adjudication.image_id, Finding.code, Adjudication.present, Adjudication.regions,
            DiagnosisClass.name, Adjudication.reason, Adjudication.reviewer_id, Adjudication.decided_at)


def _query():
    return (select(*_COLUMNS).select_from(Adjudication)
            .outerjoin(Finding, Finding.id == Adjudication.finding_id)
            .outerjoin(DiagnosisClass, DiagnosisClass.id == Adjudication.diagnosis_class_id))


def _record_of(row: Row) -> AdjudicationRecord:
    (row_id, image_id, code, present, regions, diagnosis, reason, reviewer_id, decided_at) = row
    if decided_at.tzinfo is None:   # SQLite keeps no zone; everything stored is UTC
        decided_at = decided_at.replace(tzinfo=timezone.utc)
    return AdjudicationRecord(row_id, image_id, code, present, mask_to_regions(regions), diagnosis, reason,
                              reviewer_id, decided_at)


def _as_dict(entry: AdjudicationRecord) -> dict:
    return dict(image_id=entry.image_id, finding=entry.finding, present=entry.present,
                regions=sorted(entry.regions), diagnosis=entry.diagnosis, reason=entry.reason)


def record_adjudication(
    db: Database,
    reviewer_id: int,
    image_id: int,
    finding: str | None,
    present: bool | None,
    regions: Iterable[int] = (),
    diagnosis: str | None = None,
    reason: str = "",
) -> AdjudicationRecord:
    """Record a reviewer's final answer (one audited action) and return it.

    ``present=True`` needs at least one region, ``present=False`` none; ``finding=None`` records
    the diagnosis alone (``present`` must be None then). A reason is required.
    """
    reason = (reason or "").strip()
    if not reason:
        raise InvalidRequestError("An adjudication needs a reason; say why this is the final answer.")
    try:
        mask = regions_to_mask(regions)
    except (TypeError, ValueError):
        raise InvalidRequestError("Regions are codes 1 to 8 (docs/geometry.md); check the regions given.") from None
    if finding is None:
        if present is not None or mask:
            raise InvalidRequestError("Name the finding to decide whether it is present, or leave present out.")
        if diagnosis is None:
            raise InvalidRequestError("An adjudication decides a finding or the diagnosis; give at least one.")
    elif present is None:
        raise InvalidRequestError(f"Say whether {finding} is present or absent.")
    elif present and not mask:
        raise InvalidRequestError(f"A present {finding} needs the regions where it is.")
    elif not present and mask:
        raise InvalidRequestError(f"An absent {finding} has no regions; leave them out.")
    with db.transaction() as session:
        _require_reviewer(session, reviewer_id)
        if session.get(Image, image_id) is None:
            raise NotFoundError(f"There is no image number {image_id} in this project; import it first.")
        finding_id = None
        if finding is not None:
            finding_id = session.scalar(select(Finding.id).where(Finding.code == finding))
            if finding_id is None:
                raise NotFoundError(f"This project has no finding called {finding!r}; check the finding list.")
        diagnosis_id = None
        if diagnosis is not None:
            diagnosis_id = session.scalar(select(DiagnosisClass.id).where(DiagnosisClass.name == diagnosis))
            if diagnosis_id is None:
                raise NotFoundError(f"This project has no diagnosis called {diagnosis!r}; check the diagnosis list.")
        previous = session.execute(
            _query().where(Adjudication.image_id == image_id,
                           Adjudication.finding_id.is_(None) if finding_id is None
                           else Adjudication.finding_id == finding_id)
            .order_by(Adjudication.id.desc()).limit(1)).first()
        decided_at = utc_now()
        row_id = session.execute(insert(Adjudication).returning(Adjudication.id), dict(
            image_id=image_id, finding_id=finding_id, present=present, regions=mask,
            diagnosis_class_id=diagnosis_id, reason=reason, reviewer_id=reviewer_id, decided_at=decided_at)).scalar_one()
        entry = AdjudicationRecord(row_id, image_id, finding, present, mask_to_regions(mask), diagnosis, reason,
                                   reviewer_id, decided_at)
        record(session, "adjudication", row_id, "create",
               None if previous is None else _as_dict(_record_of(previous)), _as_dict(entry), reviewer_id)
    return entry


def list_adjudications(db: Database, image_id: int | None = None) -> list[AdjudicationRecord]:
    """Every adjudication in the order made (history included), optionally for one image."""
    query = _query().order_by(Adjudication.id)
    if image_id is not None:
        query = query.where(Adjudication.image_id == image_id)
    with db.reading() as session:
        return [_record_of(row) for row in session.execute(query)]


def latest_adjudication(db: Database, image_id: int, finding: str | None) -> AdjudicationRecord | None:
    """The answer in force for one image and finding (``None``: the diagnosis-only decisions)."""
    query = _query().where(Adjudication.image_id == image_id).order_by(Adjudication.id.desc()).limit(1)
    query = query.where(Adjudication.finding_id.is_(None) if finding is None else Finding.code == finding)
    with db.reading() as session:
        row = session.execute(query).first()
    return None if row is None else _record_of(row)


def adjudicated_answers(db: Database) -> AdjudicatedAnswers:
    """The answers in force for the whole project: newest per (image, finding), newest diagnosis.

    Unchecked like ``storage.review.iter_all_reads``: callers (training, export) decide access.
    """
    answers = AdjudicatedAnswers()
    for entry in list_adjudications(db):   # oldest first: later rows overwrite earlier ones
        answers.add(entry)
    return answers
