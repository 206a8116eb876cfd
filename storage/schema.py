"""Octant's tables (SQLAlchemy 2.0 typed models).

One database holds one project. A *read* is one reader's assignment to one image and carries that
reader's whole answer for it (normal, ungradable, comment, done); regional labels, the diagnosis
and landmarks hang off the same (image, reader) pair. Region sets are stored as an 8-bit mask
(bit ``code - 1`` for region codes 1..8 of ``docs/geometry.md``) so a label is a single integer.

Every change to these tables goes through ``storage/`` functions that add an ``AuditEvent`` in the
same transaction. Schema changes need an Alembic revision in ``storage/migrations/versions/``.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Deterministic constraint names so Alembic migrations (and SQLite batch mode) can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Project(Base):
    __tablename__ = "project"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # Findings counted present when at least k of the three readers marked them (Son et al. §3).
    consensus_k: Mapped[int] = mapped_column(Integer, default=2)
    hide_suggestions_on_test: Mapped[bool] = mapped_column(Boolean, default=True)
    # {"train": ["ophthalmologist", ...], "test": [...]}: roles allowed to read each split.
    split_roles: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    # Labels training and export use: "consensus", or "adjudicated" (a reviewer's answer where one
    # exists, else the consensus); storage/project.py LABEL_SOURCES.
    label_source: Mapped[str] = mapped_column(String(24), default="consensus", server_default="consensus")
    # Readers' queues: "default" (assignment order) or "model_uncertainty" (storage/reading_order.py).
    reading_order: Mapped[str] = mapped_column(String(24), default="default", server_default="default")


class Finding(Base):
    __tablename__ = "finding"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    key: Mapped[str] = mapped_column(String(8))
    size_class: Mapped[str] = mapped_column(String(8))  # small | medium | large (Son et al. §2.2)
    lesion_channel: Mapped[str | None] = mapped_column(String(8))
    position: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class DiagnosisClass(Base):
    __tablename__ = "diagnosis_class"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(120), unique=True)
    position: Mapped[int] = mapped_column(Integer)


class Image(Base):
    __tablename__ = "image"

    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[str] = mapped_column(Text, unique=True)  # relative to the project folder if inside
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    laterality: Mapped[str | None] = mapped_column(String(5))  # "left" | "right" | None (unknown)
    split: Mapped[str] = mapped_column(String(8), index=True)  # "train" | "test"
    # Keyed-hash pseudonym of the patient (storage/patient_key.py), never a name or an ID; None
    # when the file does not say whose photo it is (JPEG, PNG, TIFF).
    patient: Mapped[str | None] = mapped_column(String(40), index=True)
    fov_cx: Mapped[float | None] = mapped_column(Float)
    fov_cy: Mapped[float | None] = mapped_column(Float)
    fov_r: Mapped[float | None] = mapped_column(Float)
    crop_x0: Mapped[int | None] = mapped_column(Integer)
    crop_y0: Mapped[int | None] = mapped_column(Integer)
    crop_x1: Mapped[int | None] = mapped_column(Integer)
    crop_y1: Mapped[int | None] = mapped_column(Integer)
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class Reader(Base):
    __tablename__ = "reader"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    role: Mapped[str] = mapped_column(String(24))
    # PIN or passphrase as "scrypt$n$r$p$salt$hash" only (storage/credentials.py)
    pin_hash: Mapped[str | None] = mapped_column(String(200))
    # "pin" (digits only) or "passphrase", noted when the credential is set or next typed right (the
    # hash cannot tell); None with no credential, or one set before Octant 0012 not yet typed since.
    credential_kind: Mapped[str | None] = mapped_column(String(12))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Wrong sign-in tries in a row and when the next try is allowed (credentials.wait_after).
    failed_sign_ins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    retry_after: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class Read(Base):
    """One reader's assignment to one image, and the image-level part of their answer."""

    __tablename__ = "read"
    __table_args__ = (
        UniqueConstraint("image_id", "reader_id"),
        UniqueConstraint("reader_id", "position"),
        # The reader's queue: next unfinished image is the first row of this index range.
        Index("ix_read_queue", "reader_id", "done", "position"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="CASCADE"))
    reader_id: Mapped[int] = mapped_column(ForeignKey("reader.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    normal: Mapped[bool] = mapped_column(Boolean, default=False)  # explicit answer, not absence
    ungradable: Mapped[bool] = mapped_column(Boolean, default=False)
    comment: Mapped[str] = mapped_column(Text, default="")
    assigned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RegionalLabel(Base):
    """Image × reader × finding → the regions (bitmask of codes 1..8) where the reader saw it."""

    __tablename__ = "regional_label"
    __table_args__ = (UniqueConstraint("read_id", "finding_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    read_id: Mapped[int] = mapped_column(ForeignKey("read.id", ondelete="CASCADE"))
    finding_id: Mapped[int] = mapped_column(ForeignKey("finding.id", ondelete="CASCADE"), index=True)
    regions: Mapped[int] = mapped_column(Integer)


class DiagnosisLabel(Base):
    __tablename__ = "diagnosis_label"

    id: Mapped[int] = mapped_column(primary_key=True)
    read_id: Mapped[int] = mapped_column(ForeignKey("read.id", ondelete="CASCADE"), unique=True)
    diagnosis_class_id: Mapped[int] = mapped_column(
        ForeignKey("diagnosis_class.id", ondelete="CASCADE")
    )


class Landmark(Base):
    """Disc and fovea centres in original image pixels; reader_id is NULL for a model's guess."""

    __tablename__ = "landmark"
    __table_args__ = (Index("ix_landmark_image_reader", "image_id", "reader_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="CASCADE"))
    reader_id: Mapped[int | None] = mapped_column(ForeignKey("reader.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(8))  # "manual" | "model"
    disc_x: Mapped[float] = mapped_column(Float)
    disc_y: Mapped[float] = mapped_column(Float)
    fovea_x: Mapped[float] = mapped_column(Float)
    fovea_y: Mapped[float] = mapped_column(Float)
    model_version: Mapped[str | None] = mapped_column(Text)  # pre-segmentation names five networks
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class Adjudication(Base):
    """A reviewer's final answer for an image and finding, kept apart from the readers' rows.

    Rows are only ever added: the newest row per (image, finding) is the answer, the older ones are
    its history. ``finding_id`` is NULL for a decision about the diagnosis alone; ``present`` is NULL
    then. ``regions`` is the 8-bit region mask (0 when absent); ``diagnosis_class_id`` NULL leaves
    the image's diagnosis undecided by this row.
    """

    __tablename__ = "adjudication"
    __table_args__ = (Index("ix_adjudication_image_finding", "image_id", "finding_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="CASCADE"))
    finding_id: Mapped[int | None] = mapped_column(ForeignKey("finding.id", ondelete="CASCADE"))
    present: Mapped[bool | None] = mapped_column(Boolean)
    regions: Mapped[int] = mapped_column(Integer, default=0)
    diagnosis_class_id: Mapped[int | None] = mapped_column(ForeignKey("diagnosis_class.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(Text)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("reader.id", ondelete="CASCADE"))
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class GoldStandard(Base):
    """An expert's answer for an image, entered once by an admin; readers' reads of the image are
    scored against it (quality control). Readers are never told which images these are."""

    __tablename__ = "gold_standard"

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="CASCADE"), unique=True)
    findings: Mapped[dict[str, Any]] = mapped_column(JSON)   # finding code -> region codes (present ones)
    diagnosis: Mapped[str | None] = mapped_column(String(120))
    entered_by: Mapped[int | None] = mapped_column(ForeignKey("reader.id", ondelete="SET NULL"))
    entered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class RepeatRead(Base):
    """A read reopened for a blind repeat: the reader's first answer (``storage.labels.state_json``),
    kept to measure intra-reader agreement against the answer they give again."""

    __tablename__ = "repeat_read"

    id: Mapped[int] = mapped_column(primary_key=True)
    read_id: Mapped[int] = mapped_column(ForeignKey("read.id", ondelete="CASCADE"), unique=True)
    first_answer: Mapped[dict[str, Any]] = mapped_column(JSON)
    reopened_by: Mapped[int | None] = mapped_column(ForeignKey("reader.id", ondelete="SET NULL"))
    reopened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class AuditEvent(Base):
    """Append-only and hash-chained (storage/audit.py; triggers in migration 0003_audit_chain)."""

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_entity", "entity", "entity_id"),
        # Two events can never follow the same one: a fork in the chain fails to insert.
        Index("ux_audit_event_prev_hash", "prev_hash", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Who: the reader when a reader acted, else None; actor is the operating-system account.
    reader_id: Mapped[int | None] = mapped_column(ForeignKey("reader.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(String(120))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(40))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    prev_hash: Mapped[str | None] = mapped_column(String(64))  # NULL only if tampered with
    row_hash: Mapped[str | None] = mapped_column(String(64))


class Prediction(Base):
    __tablename__ = "prediction"
    __table_args__ = (Index("ix_prediction_image_kind", "image_id", "kind", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(60))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    model_version: Mapped[str] = mapped_column(Text)  # e.g. "disc_cup=…;landmarks=…;…", ~250 chars
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class TrainedModel(Base):
    __tablename__ = "trained_model"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    network: Mapped[str] = mapped_column(String(60))
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    label_snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    path: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class WorkClaim(Base):
    """One process's claim on one image's model work (e.g. pre-segmentation) until ``expires_at``
    (seconds since the epoch): workstations and commands sharing a project do each image once, and
    take over the claims of one that crashed. Coordination only, deleted once the work is stored:
    not audited, no answer or result lives here (``storage/work_claims.py``)."""
    __tablename__ = "work_claim"

    image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(60), primary_key=True)   # the prediction kind it will store
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[float] = mapped_column(Float)
