"""A reader's session: their queue and their own labels, nobody else's (blind reading).

Every query here is restricted to ``Read.reader_id == self.reader.id``; the one way to see another
reader's answer, ``labels_of``, is refused unless the reader is a reviewer or an admin. Each
``set_*``/``mark_*`` method is one user action: one transaction holding the change and its audit
event, returning the reader's state after it.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, bindparam, delete, func, insert, select, update

from storage.audit import record, state_digest
from storage.database import Database
from storage.errors import AccessDeniedError, DatabaseLockedError, NotFoundError, StaleAnswerError
from storage.images import IMAGE, IMAGE_COLUMNS, ImageRecord, image_record, load_image
from storage.labels import (
    LANDMARK_SOURCES,
    READ,
    READ_COLUMNS,
    REGIONAL_LABEL,
    Executor,
    Landmarks,
    QueueProgress,
    ReadState,
    landmarks_json,
    landmarks_of,
    load_read_states,
    mask_to_regions,
    regions_to_mask,
    state_json,
    write_diagnosis,
    write_landmarks,
)
from storage.queue_order import Checkpoint, ModelReadingOrder
from storage.readers import REVIEW_ROLES, ReaderInfo, get_reader
from storage.schema import (
    Finding,
    Image,
    Landmark,
    Prediction,
    Project,
    Read,
    Reader,
    RegionalLabel,
    utc_now,
)

READER = Reader.__table__

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

# Prebuilt statements for the hot paths (next in queue, saving a label), bound per call.
# _NEXT is served by ix_read_queue (reader_id, done, position): one index seek, whatever the size.
_NEXT = (
    select(*IMAGE_COLUMNS).join(READ, READ.c.image_id == IMAGE.c.id)
    .where(READ.c.reader_id == bindparam("reader_id"), READ.c.done == False,  # noqa: E712
           READ.c.position > bindparam("after"))
    .order_by(READ.c.position).limit(1)
)
# The project's reading order, asked within the queue's own query (one query for the whole queue).
_READING_ORDER = select(Project.reading_order).order_by(Project.id).limit(1).scalar_subquery()
_POSITION = select(READ.c.position).where(
    READ.c.reader_id == bindparam("reader_id"), READ.c.image_id == bindparam("image_id"))
_READ_ROW = select(*READ_COLUMNS).where(
    READ.c.reader_id == bindparam("reader_id"), READ.c.image_id == bindparam("image_id"))
# An action holds its read's row until it commits: the same reader on a second workstation waits
# instead of overwriting what this one read (PostgreSQL; SQLite's writers take turns anyway, and
# SQLAlchemy leaves FOR UPDATE out of SQLite's SQL). NO KEY: labels may still point at the row.
# Only an active reader acts: a retired one cannot save (checked in the same query; only the
# read row is locked).
_READER_ACTIVE = select(READER.c.id).where(READER.c.id == bindparam("reader_id"), READER.c.active).exists()
_READ_ROW_FOR_ACTION = _READ_ROW.where(_READER_ACTIVE).with_for_update(key_share=True, of=READ)
_LABEL = (REGIONAL_LABEL.c.read_id == bindparam("r_id"), REGIONAL_LABEL.c.finding_id == bindparam("f_id"))
_LABEL_MASK = select(REGIONAL_LABEL.c.regions).where(*_LABEL)
_INSERT_LABEL = insert(REGIONAL_LABEL)
_UPDATE_LABEL = update(REGIONAL_LABEL).where(*_LABEL).values(regions=bindparam("mask"))
_DELETE_LABEL = delete(REGIONAL_LABEL).where(*_LABEL)
_CLEAR_NORMAL = update(READ).where(READ.c.id == bindparam("r_id")).values(normal=False)
_TOUCH_READ = update(READ).where(READ.c.id == bindparam("r_id")).values(updated_at=bindparam("now"))

# What an action's change gives the audit: before, and after (None: the whole stored state).
AuditPair = tuple[dict[str, Any], dict[str, Any] | None]
# An action's change: on the transaction's connection, given this reader's read row of the image.
Change = Callable[[Executor, Row], AuditPair]

_STALE = StaleAnswerError(
    "This image's answer was changed on another workstation after this one saved it, so nothing "
    "was changed here; the answer now stored is shown."
)
_BLIND = AccessDeniedError(
    "Blind reading: you cannot see other readers' labels; a reviewer or admin can compare them."
)


class ReaderSession:
    """``lock_wait_ms``: how long an action waits for another program's lock before it gives up
    with DatabaseLockedError, tried once (None: the busy timeout, tried twice). The workstation
    saves with a short wait so its window never hangs on a locked database (ui/save_queue.py)."""

    def __init__(self, db: Database, reader_id: int, lock_wait_ms: int | None = None) -> None:
        self.db = db
        self.lock_wait_ms = lock_wait_ms
        self.reader: ReaderInfo = get_reader(db, reader_id)
        self.can_review = self.reader.role in REVIEW_ROLES
        self._finding_ids: dict[str, int] = {}
        self._model_order = ModelReadingOrder(self.reader.id)   # keeps scores between calls

    # --- the queue -------------------------------------------------------------------------
    def _mine(self):
        return Read.reader_id == self.reader.id

    def progress(self) -> QueueProgress:
        with self.db.reading() as session:
            row = session.execute(
                select(func.count(), func.count().filter(Read.done == True)).where(self._mine())  # noqa: E712
            ).one()
        return QueueProgress(done=int(row[1]), total=int(row[0]))

    def next_unfinished(self, after_image_id: int | None = None) -> ImageRecord | None:
        """The first image not marked done after ``after_image_id`` in the queue, wrapping round
        to the start; None when the reader has finished everything."""
        mine = {"reader_id": self.reader.id}
        with self.db.reading() as reading:
            if self._by_model_uncertainty(reading):
                found = self._model_order.next_unfinished(reading, after_image_id)
                return None if found is None else load_image(reading, found, self.db.root)
            session = reading.connection()  # the hot path skips the ORM session (see _act)
            after = -1
            if after_image_id is not None:
                position = session.scalar(_POSITION, {**mine, "image_id": after_image_id})
                after = -1 if position is None else position
            row = session.execute(_NEXT, {**mine, "after": after}).first()
            if row is None and after >= 0:
                row = session.execute(_NEXT, {**mine, "after": -1}).first()
            return None if row is None else image_record(row, self.db.root)

    def queue(self) -> list[ImageRecord]:
        return [record for record, _ in self.queue_status()]

    def queue_status(self, checkpoint: Checkpoint | None = None) -> list[tuple[ImageRecord, bool]]:
        """The reader's queue in reading order, each image with its done flag: one query (a few
        more in the model's order, storage/queue_order.py), so a queue of thousands opens at once.
        In the model's order the first call of a session scores every open image (seconds at
        clinic scale): ``checkpoint`` is called between chunks of that (progress, cancel)."""
        with self.db.reading() as session:
            return [(image_record(row, self.db.root), bool(row.read_done))
                    for row in self._ordered_queue(session, checkpoint)]

    def orders_by_model(self) -> bool:
        """Whether the project reads where the model is least certain first (one small query)."""
        with self.db.reading() as session:
            return self._by_model_uncertainty(session)

    def _by_model_uncertainty(self, session: Session) -> bool:
        return session.scalar(select(_READING_ORDER)) == "model_uncertainty"

    def _ordered_queue(self, session: Session, checkpoint: Checkpoint | None = None) -> list:
        """The queue's rows (image columns and ``read_done``) in the project's reading order.

        By position (assignment order, gold and repeat reads mixed in at random places) unless the
        project reads where the model is least certain first (storage/queue_order.py). The rows
        are the same in either order: no score reaches the reader."""
        query = (
            select(*IMAGE_COLUMNS, READ.c.done.label("read_done"), _READING_ORDER.label("reading_order"))
            .join(READ, READ.c.image_id == IMAGE.c.id)
            .where(READ.c.reader_id == self.reader.id).order_by(READ.c.position)
        )
        rows = list(session.execute(query).all())
        if not rows or rows[0].reading_order != "model_uncertainty":
            return rows
        return self._model_order.order(session, rows, checkpoint)

    def image(self, image_id: int) -> ImageRecord:
        with self.db.reading() as session:
            if not self.can_review:
                self._read_row(session, image_id)
            return load_image(session, image_id, self.db.root)

    # --- this reader's answers --------------------------------------------------------------
    def _read_row(self, session: Executor, image_id: int, for_action: bool = False) -> Row:
        query = _READ_ROW_FOR_ACTION if for_action else _READ_ROW
        row = session.execute(query, {"reader_id": self.reader.id, "image_id": image_id}).first()
        if row is None and for_action and not session.scalar(select(_READER_ACTIVE), {"reader_id": self.reader.id}):
            raise AccessDeniedError(f"{self.reader.name} is retired and cannot save; "
                                    "an admin can reinstate them (`readers reinstate`).")
        if row is None:
            raise AccessDeniedError(
                f"Image {image_id} is not in {self.reader.name}'s reading list; pick an image from the queue."
            )
        return row

    def _state(self, session: Executor, image_id: int) -> ReadState:
        row = self._read_row(session, image_id)
        return load_read_states(session, [row])[row.id]

    def read(self, image_id: int) -> ReadState:
        with self.db.reading() as session:
            return self._state(session, image_id)

    def _act(
        self, image_id: int, action: str,
        change: Change,
    ) -> ReadState:
        """One user action on this reader's read of an image: change + audit, then the new state.

        ``change`` returns the audit's before and after; an after of None means "the whole stored
        state". An action that found the database busy past the busy timeout (or, on PostgreSQL,
        lost to a concurrent change) is tried once more: it was rolled back whole, and a reader
        should not lose a click to a moment of load. With ``lock_wait_ms`` it is tried once: the
        caller keeps the click and tries again itself."""
        if self.lock_wait_ms is not None:
            return self._act_once(image_id, action, change)
        try:
            return self._act_once(image_id, action, change)
        except DatabaseLockedError:
            return self._act_once(image_id, action, change)

    def _act_once(self, image_id: int, action: str, change: Change) -> ReadState:
        with self.db.transaction(lock_wait_ms=self.lock_wait_ms) as session:
            # Statements go straight to the transaction's connection: the ORM session adds
            # nothing here and costs a third of a label save (bench_storage.py).
            connection = session.connection()
            row = self._read_row(connection, image_id, for_action=True)
            before, after = change(connection, row)
            connection.execute(_TOUCH_READ, {"r_id": row.id, "now": utc_now()})
            state = self._state(connection, image_id)
            # The event carries a digest of what is now stored (and a restore the whole of it),
            # so the audit says what was saved, not what was asked for.
            stored = state_json(state)
            after = {**(stored if after is None else after), "state_sha256": state_digest(stored)}
            record(connection, "read", row.id, action, before, after, self.reader.id)
            return state

    def _finding_id(self, session: Executor, code: str) -> int:
        if code not in self._finding_ids:
            found = session.scalar(select(Finding.id).where(Finding.code == code))
            if found is None:
                raise NotFoundError(f"This project has no finding called {code!r}; check the finding list.")
            self._finding_ids[code] = found
        return self._finding_ids[code]

    def _write_regions(self, session: Executor, row: Row, code: str, regions: frozenset[int]) -> AuditPair:
        label = {"r_id": row.id, "f_id": self._finding_id(session, code)}
        mask = regions_to_mask(regions)
        old = session.scalar(_LABEL_MASK, label)
        if old is None and mask:
            session.execute(_INSERT_LABEL, {"read_id": row.id, "finding_id": label["f_id"], "regions": mask})
        elif old is not None and mask:
            session.execute(_UPDATE_LABEL, {**label, "mask": mask})
        elif old is not None:
            session.execute(_DELETE_LABEL, label)  # no regions: the finding is absent
        before = dict(finding=code, regions=sorted(mask_to_regions(old or 0)), normal=row.normal)
        if mask and row.normal:  # a finding withdraws "normal"
            session.execute(_CLEAR_NORMAL, {"r_id": row.id})
        return before, dict(finding=code, regions=sorted(regions), normal=row.normal and not mask)

    def set_regions(self, image_id: int, finding_code: str, regions: set[int] | frozenset[int]) -> ReadState:
        """The regions where this reader sees a finding; an empty set removes the finding."""
        regions = frozenset(regions)
        regions_to_mask(regions)  # refuse bad codes before opening a transaction
        return self._act(image_id, "set_regions",
                         lambda s, row: self._write_regions(s, row, finding_code, regions))

    def toggle_region(self, image_id: int, finding_code: str, region: int) -> ReadState:
        regions_to_mask([region])

        def change(session: Executor, row: Row) -> AuditPair:
            old = session.scalar(_LABEL_MASK, {"r_id": row.id, "f_id": self._finding_id(session, finding_code)})
            return self._write_regions(session, row, finding_code, mask_to_regions(old or 0) ^ {region})

        return self._act(image_id, "set_regions", change)

    def mark_normal(self, image_id: int) -> ReadState:
        """The explicit answer "normal": clears this reader's findings for the image."""
        def change(session: Executor, row: Row) -> AuditPair:
            cleared = {
                code: sorted(mask_to_regions(mask))
                for code, mask in session.execute(
                    select(Finding.code, RegionalLabel.regions)
                    .join(Finding, Finding.id == RegionalLabel.finding_id)
                    .where(RegionalLabel.read_id == row.id)
                )
            }
            session.execute(delete(RegionalLabel).where(RegionalLabel.read_id == row.id))
            session.execute(update(Read).where(Read.id == row.id).values(normal=True))
            return dict(normal=row.normal, regions=cleared), dict(normal=True, regions={})

        return self._act(image_id, "mark_normal", change)

    def _set_read_field(self, image_id: int, action: str, name: str, value: Any) -> ReadState:
        def change(session: Executor, row: Row) -> AuditPair:
            session.execute(update(Read).where(Read.id == row.id).values({name: value}))
            return {name: getattr(row, name)}, {name: value}

        return self._act(image_id, action, change)

    def set_ungradable(self, image_id: int, ungradable: bool = True) -> ReadState:
        return self._set_read_field(image_id, "set_ungradable", "ungradable", bool(ungradable))

    def set_comment(self, image_id: int, comment: str) -> ReadState:
        return self._set_read_field(image_id, "set_comment", "comment", comment)

    def mark_done(self, image_id: int, done: bool = True) -> ReadState:
        return self._set_read_field(image_id, "mark_done", "done", bool(done))

    def set_normal(self, image_id: int, normal: bool) -> ReadState:
        """True is ``mark_normal``; False withdraws "normal" and leaves the image unanswered."""
        if normal:
            return self.mark_normal(image_id)
        return self._set_read_field(image_id, "clear_normal", "normal", False)

    def set_diagnosis(self, image_id: int, diagnosis: str | None) -> ReadState:
        def change(session: Executor, row: Row) -> AuditPair:
            old = write_diagnosis(session, row.id, diagnosis)
            return dict(diagnosis=old), dict(diagnosis=diagnosis)

        return self._act(image_id, "set_diagnosis", change)

    def set_landmarks(
        self, image_id: int, disc: tuple[float, float], fovea: tuple[float, float], source: str = "manual"
    ) -> ReadState:
        """This reader's disc and fovea (source "model" when they accepted a model's suggestion)."""
        landmarks = Landmarks((float(disc[0]), float(disc[1])), (float(fovea[0]), float(fovea[1])), source)
        if source not in LANDMARK_SOURCES:
            raise ValueError(f"Landmark source is 'manual' or 'model', got {source!r}.")

        def change(session: Executor, row: Row) -> AuditPair:
            old = write_landmarks(session, image_id, self.reader.id, landmarks)
            return dict(landmarks=landmarks_json(old)), dict(landmarks=landmarks_json(landmarks))

        return self._act(image_id, "set_landmarks", change)

    def clear_landmarks(self, image_id: int) -> ReadState:
        def change(session: Executor, row: Row) -> AuditPair:
            old = write_landmarks(session, image_id, self.reader.id, None)
            return dict(landmarks=landmarks_json(old)), dict(landmarks=None)

        return self._act(image_id, "clear_landmarks", change)

    def restore(self, image_id: int, target: ReadState, expected: ReadState | None = None,
                action: str = "restore") -> ReadState:
        """Write a whole earlier answer back as one action (undo/redo; ``action="import"`` for
        labels read from a file); ``done`` stays as it is.

        With ``expected`` this is compare-and-set: when the stored answer is no longer the one this
        workstation saved (the same reader changed it elsewhere), nothing is written and
        StaleAnswerError says so, so an undo never erases another workstation's save."""
        masks = {code: regions_to_mask(regions) for code, regions in target.regions.items() if regions}
        if target.landmarks is not None and target.landmarks.source not in LANDMARK_SOURCES:
            raise ValueError(f"Landmark source is 'manual' or 'model', got {target.landmarks.source!r}.")

        def change(session: Executor, row: Row) -> AuditPair:
            before = load_read_states(session, [row])[row.id]
            # Compared under the action's lock (the read row on PostgreSQL, the write lock on SQLite).
            if expected is not None and state_json(before) != state_json(expected):
                raise _STALE
            session.execute(delete(RegionalLabel).where(RegionalLabel.read_id == row.id))
            for code, mask in masks.items():
                session.execute(_INSERT_LABEL, {"read_id": row.id, "finding_id": self._finding_id(session, code),
                                                "regions": mask})
            session.execute(update(Read).where(Read.id == row.id).values(
                normal=target.normal and not masks, ungradable=target.ungradable, comment=target.comment))
            write_diagnosis(session, row.id, target.diagnosis)
            write_landmarks(session, image_id, self.reader.id, target.landmarks)
            return state_json(before), None  # audited as what was stored, not as what was asked

        return self._act(image_id, action, change)

    def _suggestions_hidden(self, session: Session, image_id: int) -> bool:
        """Models' suggestions are kept from readers (not reviewers or admins) of an image in their
        list when it is a test image and the project hides suggestions there: the test set is the
        gold standard, so its readers must not be led by a model."""
        if self.can_review:
            return False
        self._read_row(session, image_id)
        hide = session.scalar(select(Project.hide_suggestions_on_test).order_by(Project.id).limit(1))
        return bool(hide) and session.scalar(select(Image.split).where(Image.id == image_id)) == "test"

    def model_landmarks(self, image_id: int) -> Landmarks | None:
        """The latest model guess for disc and fovea; None where suggestions are hidden (as
        ``suggestion``)."""
        with self.db.reading() as session:
            if self._suggestions_hidden(session, image_id):
                return None
            row = session.scalars(
                select(Landmark).where(Landmark.image_id == image_id, Landmark.reader_id.is_(None))
                .order_by(Landmark.id.desc()).limit(1)
            ).first()
            return None if row is None else landmarks_of(row)

    def suggestion(self, image_id: int, kind: str) -> dict[str, Any] | None:
        """The latest model prediction of ``kind`` for an image in this reader's list; None on test
        images while the project hides suggestions there. Reviewers and admins always see them."""
        with self.db.reading() as session:
            if self._suggestions_hidden(session, image_id):
                return None
            return session.scalar(
                select(Prediction.payload).where(Prediction.image_id == image_id, Prediction.kind == kind)
                .order_by(Prediction.id.desc()).limit(1)
            )

    # --- other readers ----------------------------------------------------------------------
    def labels_of(self, other_reader_id: int, image_id: int) -> ReadState:
        """Another reader's answer: reviewers and admins only."""
        if other_reader_id == self.reader.id:
            return self.read(image_id)
        if not self.can_review:
            raise _BLIND
        with self.db.reading() as session:
            row = session.execute(
                select(*READ_COLUMNS).where(Read.reader_id == other_reader_id, Read.image_id == image_id)
            ).first()
            if row is None:
                raise NotFoundError(f"Reader {other_reader_id} has not been given image {image_id}.")
            return load_read_states(session, [row])[row.id]
