"""A reader's queue in the model's reading order: what ``storage.reading_order`` scores, read
from the database (``ReaderSession.queue_status`` and ``next_unfinished`` use it when the
project's ``reading_order`` is ``model_uncertainty``).

Finished reads come first; among the unfinished ones, gold-standard images and reads reopened
for a blind repeat keep their places as in assignment order, so quality control stays mixed in
the same way, and the others are ordered by ``image_score`` of the image's newest ``findings``
prediction and the other readers' finished answers. The rows returned are the rows given,
reordered: nothing is added for the reader to see.

Scoring every open image on every "next" would cost seconds on a queue of thousands, so each
image's score is kept with what it was computed from (its prediction's id, and the id and last
change of each other reader's finished read of it) and computed again only when one of those
changed. Those are read again only where a stamp (``_stamp_now``: the newest prediction id, and a
signature per ``BUCKET`` of image ids of the other readers' finished reads) says they changed, so
another reader finishing an image costs its bucket, not the queue. The unfinished images' order
is kept too, until the stamp, the fixed places or the unfinished images change, so "next" reads
only the unfinished images' ids and the stamp, not the whole queue. The order is the same as
from scratch (tests/storage/test_reading_order.py checks it against a new session's).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Select, String, bindparam, func, or_, select, type_coerce

from storage.labels import mask_to_regions
from storage.predictions import FINDINGS_PREDICTION
from storage.reading_order import fill_places, image_score, rank_images
from storage.schema import Finding, GoldStandard, Prediction, Read, RegionalLabel, RepeatRead

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

CHUNK = 900   # ids per IN (...) list: well under SQLite's limit on bound parameters
# Images scored between two checkpoints: about 0.15 s on a loaded 2-core machine, so a cancel
# (the window closing while a sign-in's first ordering runs) is seen well within a second.
SCORE_CHUNK = 256

# Called between chunks of scoring with (images scored, images to score); it may raise (a
# CancelledError) to stop: what was scored stays kept and the next call scores the rest.
Checkpoint = Callable[[int, int], None]

# The reader's unfinished images by position: all that "next" needs besides the scores.
_WAITING = (select(Read.image_id).where(Read.reader_id == bindparam("reader_id"), Read.done == False)  # noqa: E712
            .order_by(Read.position))

# Images per bucket of the stamp: another reader's finished read rechecks its bucket's images,
# not the whole queue (a stamp of about 160 rows for 10 000 images).
BUCKET = 64
_BUCKET_OF = (Read.image_id // BUCKET).label("bucket")
_BUCKETS = (select(_BUCKET_OF, func.count(), func.max(type_coerce(Read.updated_at, String)), func.sum(Read.id))
            .where(Read.reader_id != bindparam("reader_id"), Read.done == True, Read.ungradable == False)  # noqa: E712
            .group_by(_BUCKET_OF))
_NEWEST = (select(Prediction.image_id, func.max(Prediction.id)).where(Prediction.kind == FINDINGS_PREDICTION)
           .group_by(Prediction.image_id))

# What a score was computed from: the prediction's id, then (read id, last change) of each earlier read.
Source = tuple[int, tuple[tuple[int, Any], ...]]
# What the sources were last read against: the newest prediction id, and each bucket's signature.
Stamp = tuple[int | None, dict[int, tuple[Any, ...]]]


def _chunks(values: Sequence[int], size: int = CHUNK) -> Iterable[Sequence[int]]:
    for first in range(0, len(values), size):
        yield values[first:first + size]


class ModelReadingOrder:
    """One reader's queue in the model's order, with the scores kept between calls."""

    def __init__(self, reader_id: int) -> None:
        self.reader_id = reader_id
        self._findings: list[str] = []
        self._scores: dict[int, tuple[Source, float | None]] = {}
        self._newest: dict[int, int] = {}    # image → its newest findings prediction's id
        self._earlier: dict[int, tuple[tuple[int, Any], ...]] = {}   # image → others' finished reads
        self._stamp: Stamp | None = None     # what those were last read against
        self._checked: set[int] = set()      # the images they are kept for
        self._ranked_from: list[int] = []     # the images ranked last, in the default order,
        self._ranked: list[int] = []          # and in reading order
        self._order_key: tuple | None = None  # (stamp, fixed, unfinished images) the kept order is for
        self._order: list[int] = []           # the unfinished images in reading order
        self._place: dict[int, int] = {}      # each one's place in it

    def order(self, session: Session, rows: Sequence[Any], checkpoint: Checkpoint | None = None) -> list[Any]:
        """``rows`` (the queue by position: ``id`` the image, ``read_done``) in the model's order:
        the finished ones first, by position, then the unfinished ones in reading order;
        ``checkpoint`` is called between chunks of scoring (a sign-in scores every open image)."""
        by_id = {row.id: row for row in rows}
        waiting = self._waiting_order(session, [row.id for row in rows if not row.read_done], checkpoint)
        return [row for row in rows if row.read_done] + [by_id[image] for image in waiting]

    def next_unfinished(self, session: Session, after_image_id: int | None) -> int | None:
        """The unfinished image after ``after_image_id`` in reading order, wrapping round; the
        first unfinished one when that image is finished or not in the queue (finished reads come
        first, so "next" after the image just finished is the best one left). Reads only the
        unfinished reads' image ids, never the whole queue."""
        # straight to the connection: the ORM session adds a third to a query of thousands of rows
        waiting = list(session.connection().scalars(_WAITING, {"reader_id": self.reader_id}))
        if not waiting:
            return None
        ordered = self._waiting_order(session, waiting)
        place = self._place.get(after_image_id) if after_image_id is not None else None
        return ordered[0] if place is None else ordered[(place + 1) % len(ordered)]

    def _waiting_order(self, session: Session, waiting: list[int],
                       checkpoint: Checkpoint | None = None) -> list[int]:
        """The unfinished images ``waiting`` (by position) in reading order; kept, with where each
        image is in it, until the stamp, the fixed places or the unfinished images change."""
        unfinished = set(waiting)
        # the gold table is small: intersected here rather than by an IN over the whole queue
        fixed = set(session.scalars(select(GoldStandard.image_id))) & unfinished
        fixed |= set(session.scalars(select(Read.image_id).join(RepeatRead, RepeatRead.read_id == Read.id)
                                     .where(Read.reader_id == self.reader_id, Read.done == False)))  # noqa: E712
        findings = list(session.scalars(select(Finding.code).where(Finding.active).order_by(Finding.position)))
        if findings != self._findings:
            self._findings, self._scores, self._stamp, self._order_key = findings, {}, None, None
        stamp = self._stamp_now(session)
        key = (stamp, frozenset(fixed), waiting)
        if key == self._order_key:
            return self._order
        movable = unfinished - fixed
        rescored = False
        if stamp != self._stamp or not movable <= self._checked:
            rescored = self._bring_up_to_date(session, stamp, movable, checkpoint)
        in_default_order = [image for image in waiting if image in movable]
        if not rescored and [image for image in self._ranked_from if image in movable] == in_default_order:
            # no score changed and only images left: their ranking, less those (rank_images)
            self._ranked = [image for image in self._ranked if image in movable]
        else:
            scores = {image: self._scores[image][1] for image in movable if image in self._scores}
            self._ranked = rank_images(in_default_order, scores)
        self._ranked_from = in_default_order
        self._order = fill_places(waiting, fixed, self._ranked)
        self._place = {image: place for place, image in enumerate(self._order)}
        self._order_key = key
        return self._order

    def _stamp_now(self, session: Session) -> Stamp:
        """Changes whenever a score could: a new prediction (the newest id), another reader's read
        finished, changed or reopened (every action touches ``updated_at``): per ``BUCKET`` of
        image ids, the count, last change and id sum of the other readers' finished gradable
        reads. One scan of the read table; the reader's own actions change none of it."""
        buckets = {bucket: (count, changed, ids) for bucket, count, changed, ids in session.connection().execute(
            _BUCKETS, {"reader_id": self.reader_id})}
        return session.scalar(select(func.max(Prediction.id))), buckets

    def _bring_up_to_date(self, session: Session, stamp: Stamp, movable: set[int],
                          checkpoint: Checkpoint | None = None) -> bool:
        """Read again what the scores of ``movable`` come from where the stamp says it changed
        (the new predictions, the buckets whose signature changed), or all of it when images
        not checked before are waiting; then rescore the images whose sources changed. True
        when a score was computed again."""
        newest_id, buckets = stamp
        before = self._stamp
        if before is None or not movable <= self._checked or (newest_id or 0) < (before[0] or 0):
            self._read_sources(session, select(Read.image_id).where(
                Read.reader_id == self.reader_id, Read.done == False))  # noqa: E712
            self._checked, affected = set(movable), movable
        else:
            affected = set()
            if newest_id != before[0]:
                for image, prediction in session.execute(_NEWEST.where(Prediction.id > (before[0] or 0))):
                    if image in self._checked:
                        self._newest[image] = prediction
                        affected.add(image)
            changed = sorted(bucket for bucket in buckets.keys() | before[1].keys()
                             if buckets.get(bucket) != before[1].get(bucket))
            gone = set(changed)
            for image in [image for image in self._earlier if image // BUCKET in gone]:
                del self._earlier[image]
            for chunk in _chunks(changed, CHUNK // 2):
                ranges = [Read.image_id.between(bucket * BUCKET, bucket * BUCKET + BUCKET - 1) for bucket in chunk]
                self._read_earlier(session, or_(*ranges))
            affected |= {image for image in movable if image // BUCKET in gone}
        sources = {image: (self._newest[image], self._earlier.get(image, ()))
                   for image in affected if image in movable and image in self._newest}
        stale = [image for image, source in sources.items()
                 if image not in self._scores or self._scores[image][0] != source]
        if stale:
            self._rescore(session, stale, sources, checkpoint)
        # Only now: a rescore stopped half-way leaves the old stamp, so the next call finds the
        # same changes again and scores what is left (the scores it kept match their sources).
        self._stamp = stamp
        return bool(stale)

    def _read_sources(self, session: Session, open_images: Select[Any]) -> None:
        """Every open image's newest prediction and the other readers' finished reads of it."""
        self._newest = dict(session.execute(_NEWEST.where(Prediction.image_id.in_(open_images))).all())
        self._earlier = {}
        self._read_earlier(session, Read.image_id.in_(open_images))

    def _read_earlier(self, session: Session, images: ColumnElement[bool]) -> None:
        earlier: dict[int, list[tuple[int, Any]]] = {}
        for image, read, changed in session.execute(
                # compared, never read: the stored text skips parsing thousands of dates per call
                select(Read.image_id, Read.id, type_coerce(Read.updated_at, String))
                .where(Read.reader_id != self.reader_id, Read.done == True,  # noqa: E712
                       Read.ungradable == False, images)  # noqa: E712
                .order_by(Read.image_id, Read.id)):
            earlier.setdefault(image, []).append((read, changed))
        self._earlier.update((image, tuple(reads)) for image, reads in earlier.items())

    def _rescore(self, session: Session, images: list[int], sources: dict[int, Source],
                 checkpoint: Checkpoint | None = None) -> None:
        for number, chunk in enumerate(_chunks(images, SCORE_CHUNK)):
            if checkpoint is not None:
                checkpoint(number * SCORE_CHUNK, len(images))
            predictions = [sources[image][0] for image in chunk]
            payloads: dict[int, Any] = dict(session.execute(
                select(Prediction.image_id, Prediction.payload).where(Prediction.id.in_(predictions))).all())
            answers = self._answers(session, [read for image in chunk for read, _ in sources[image][1]])
            for image in chunk:
                reads = [answers.get(read, {}) for read, _ in sources[image][1]]
                self._scores[image] = (sources[image], image_score(payloads.get(image), self._findings, reads))
        if checkpoint is not None:
            checkpoint(len(images), len(images))

    @staticmethod
    def _answers(session: Session, reads: list[int]) -> dict[int, dict[str, frozenset[int]]]:
        """Each read's present findings and their regions. Only ever used to order a queue; never
        returned to a reader."""
        answers: dict[int, dict[str, frozenset[int]]] = {}
        for chunk in _chunks(reads):
            for read, code, mask in session.execute(
                    select(RegionalLabel.read_id, Finding.code, RegionalLabel.regions)
                    .join(Finding, Finding.id == RegionalLabel.finding_id).where(RegionalLabel.read_id.in_(chunk))):
                answers.setdefault(read, {})[code] = frozenset(mask_to_regions(mask))
        return answers
