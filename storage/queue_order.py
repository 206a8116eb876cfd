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
order is the same as from scratch.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, String, func, select, type_coerce

from storage.labels import mask_to_regions
from storage.predictions import FINDINGS_PREDICTION
from storage.reading_order import image_score, order_queue
from storage.schema import Finding, GoldStandard, Prediction, Read, RegionalLabel, RepeatRead

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

CHUNK = 900   # ids per IN (...) list: well under SQLite's limit on bound parameters

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

    def order(self, session: Session, rows: Sequence[Any]) -> list[Any]:
        """``rows`` (the queue by position: ``id`` the image, ``read_done``) in the model's order."""
        mine = Read.reader_id == self.reader_id
        open_images = select(Read.image_id).where(mine, Read.done == False)  # noqa: E712
        finished = {row.id for row in rows if row.read_done}
        fixed = set(session.scalars(select(GoldStandard.image_id).where(GoldStandard.image_id.in_(open_images))))
        fixed |= set(session.scalars(select(Read.image_id).join(RepeatRead, RepeatRead.read_id == Read.id)
                                     .where(mine, Read.done == False)))  # noqa: E712
        findings = list(session.scalars(select(Finding.code).where(Finding.active).order_by(Finding.position)))
        if findings != self._findings:
            self._findings, self._scores, self._stamp = findings, {}, None
        waiting = {row.id for row in rows if not row.read_done} - fixed
        stamp = self._stamp_now(session, fixed)
        if stamp != self._stamp or not waiting <= self._checked:
            self._check(session, open_images, waiting)
            self._stamp, self._checked = stamp, waiting
        scores = {image: self._scores[image][1] for image in waiting if image in self._scores}
        by_id = {row.id: row for row in rows}
        return [by_id[image] for image in order_queue([row.id for row in rows], scores, finished, fixed)]

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
