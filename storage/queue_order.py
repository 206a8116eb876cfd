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
changed, and those are looked at only when a stamp of the whole (``_stamp_now``) changed; the
order is the same as from scratch. The unfinished images' order is kept too, until the stamp or
the unfinished images change, so "next" reads only the unfinished images' ids and the stamp, not
the whole queue.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, String, bindparam, func, select, type_coerce

from storage.labels import mask_to_regions
from storage.predictions import FINDINGS_PREDICTION
from storage.reading_order import image_score, order_queue
from storage.schema import Finding, GoldStandard, Prediction, Read, RegionalLabel, RepeatRead

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

CHUNK = 900   # ids per IN (...) list: well under SQLite's limit on bound parameters

# The reader's unfinished images by position: all that "next" needs besides the scores.
_WAITING = (select(Read.image_id).where(Read.reader_id == bindparam("reader_id"), Read.done == False)  # noqa: E712
            .order_by(Read.position))

# What a score was computed from: the prediction's id, then (read id, last change) of each earlier read.
Source = tuple[int, tuple[tuple[int, Any], ...]]


def _chunks(values: Sequence[int]) -> Iterable[Sequence[int]]:
    for first in range(0, len(values), CHUNK):
        yield values[first:first + CHUNK]


class ModelReadingOrder:
    """One reader's queue in the model's order, with the scores kept between calls."""

    def __init__(self, reader_id: int) -> None:
        self.reader_id = reader_id
        self._findings: list[str] = []
        self._scores: dict[int, tuple[Source, float | None]] = {}
        self._stamp: tuple | None = None     # what the scores were last checked against, as a whole
        self._checked: set[int] = set()      # the images checked then
        self._order_key: tuple | None = None  # (stamp, unfinished images) the kept order is for
        self._order: list[int] = []           # the unfinished images in reading order
        self._place: dict[int, int] = {}      # each one's place in it

    def order(self, session: Session, rows: Sequence[Any]) -> list[Any]:
        """``rows`` (the queue by position: ``id`` the image, ``read_done``) in the model's order:
        the finished ones first, by position, then the unfinished ones in reading order."""
        by_id = {row.id: row for row in rows}
        waiting = self._waiting_order(session, [row.id for row in rows if not row.read_done])
        return [row for row in rows if row.read_done] + [by_id[image] for image in waiting]

    def next_unfinished(self, session: Session, after_image_id: int | None) -> int | None:
        """The unfinished image after ``after_image_id`` in reading order, wrapping round; the
        first unfinished one when that image is finished or not in the queue (finished reads come
        first, so "next" after the image just finished is the best one left). Reads only the
        unfinished reads' image ids, never the whole queue."""
        waiting = list(session.scalars(_WAITING, {"reader_id": self.reader_id}))
        if not waiting:
            return None
        ordered = self._waiting_order(session, waiting)
        place = self._place.get(after_image_id) if after_image_id is not None else None
        return ordered[0] if place is None else ordered[(place + 1) % len(ordered)]

    def _waiting_order(self, session: Session, waiting: list[int]) -> list[int]:
        """The unfinished images ``waiting`` (by position) in reading order; kept, with where each
        image is in it, until the stamp or the unfinished images change."""
        mine = Read.reader_id == self.reader_id
        open_images = select(Read.image_id).where(mine, Read.done == False)  # noqa: E712
        unfinished = set(waiting)
        # the gold table is small: intersected here rather than by an IN over the whole queue
        fixed = set(session.scalars(select(GoldStandard.image_id))) & unfinished
        fixed |= set(session.scalars(select(Read.image_id).join(RepeatRead, RepeatRead.read_id == Read.id)
                                     .where(mine, Read.done == False)))  # noqa: E712
        findings = list(session.scalars(select(Finding.code).where(Finding.active).order_by(Finding.position)))
        if findings != self._findings:
            self._findings, self._scores, self._stamp, self._order_key = findings, {}, None, None
        stamp = self._stamp_now(session, fixed)
        if (stamp, waiting) == self._order_key:
            return self._order
        movable = unfinished - fixed
        if stamp != self._stamp or not movable <= self._checked:
            self._check(session, open_images, movable)
            self._stamp, self._checked = stamp, movable
        scores = {image: self._scores[image][1] for image in movable if image in self._scores}
        self._order = order_queue(waiting, scores, (), fixed)
        self._place = {image: place for place, image in enumerate(self._order)}
        self._order_key = (stamp, waiting)
        return self._order

    def _stamp_now(self, session: Session, fixed: set[int]) -> tuple:
        """Changes whenever a score could: a new prediction, another reader's read of an image in
        this queue finished, changed or reopened (every action touches ``updated_at``), a new
        gold or repeat read. Two aggregate queries, so that "next" skips the per-image checks when
        nothing changed (the reader's own actions change no score)."""
        in_queue = select(Read.image_id).where(Read.reader_id == self.reader_id)
        others = session.execute(
            select(func.count(), func.max(type_coerce(Read.updated_at, String)))
            .where(Read.reader_id != self.reader_id, Read.done == True, Read.image_id.in_(in_queue))  # noqa: E712
        ).one()
        return (session.scalar(select(func.max(Prediction.id))), tuple(others), frozenset(fixed))

    def _check(self, session: Session, open_images: Select[Any], waiting: set[int]) -> None:
        """Rescore the images of ``waiting`` whose prediction or earlier reads changed."""
        newest = dict(session.execute(
            select(Prediction.image_id, func.max(Prediction.id))
            .where(Prediction.kind == FINDINGS_PREDICTION, Prediction.image_id.in_(open_images))
            .group_by(Prediction.image_id)).all())
        earlier: dict[int, list[tuple[int, Any]]] = {}
        for image, read, changed in session.execute(
                # compared, never read: the stored text skips parsing thousands of dates per call
                select(Read.image_id, Read.id, type_coerce(Read.updated_at, String))
                .where(Read.reader_id != self.reader_id, Read.done == True,  # noqa: E712
                       Read.ungradable == False, Read.image_id.in_(open_images))  # noqa: E712
                .order_by(Read.image_id, Read.id)):
            earlier.setdefault(image, []).append((read, changed))
        sources = {image: (prediction, tuple(earlier.get(image, ())))
                   for image, prediction in newest.items() if image in waiting}
        stale = [image for image, source in sources.items()
                 if image not in self._scores or self._scores[image][0] != source]
        if stale:
            self._rescore(session, stale, sources)

    def _rescore(self, session: Session, images: list[int], sources: dict[int, Source]) -> None:
        payloads: dict[int, Any] = {}
        for chunk in _chunks([sources[image][0] for image in images]):
            payloads.update(session.execute(
                select(Prediction.image_id, Prediction.payload).where(Prediction.id.in_(chunk))).all())
        answers = self._answers(session, [read for image in images for read, _ in sources[image][1]])
        for image in images:
            reads = [answers.get(read, {}) for read, _ in sources[image][1]]
            self._scores[image] = (sources[image], image_score(payloads.get(image), self._findings, reads))

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
