"""A reader's queue in the model's reading order: what ``storage.reading_order`` scores, read
from the database (``ReaderSession.queue_status`` and ``next_unfinished`` call it when the
project's ``reading_order`` is ``model_uncertainty``).

Finished reads, gold-standard images and reads reopened for a blind repeat keep their places, so
quality control stays mixed in as in assignment order; the other unfinished reads are ordered by
``image_score`` of the image's newest ``findings`` prediction and the other readers' finished
answers. The rows returned are the rows given, reordered: nothing is added for the reader to see.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from storage.labels import mask_to_regions
from storage.predictions import FINDINGS_PREDICTION
from storage.reading_order import image_score, order_queue
from storage.schema import Finding, GoldStandard, Prediction, Read, RegionalLabel, RepeatRead

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def order_by_model_uncertainty(session: Session, reader_id: int, rows: Sequence[Any]) -> list[Any]:
    """``rows`` (the reader's queue by position: ``id`` the image, ``read_done``) in the model's order."""
    mine = Read.reader_id == reader_id
    open_images = select(Read.image_id).where(mine, Read.done == False)  # noqa: E712
    fixed = {row.id for row in rows if row.read_done}
    fixed |= set(session.scalars(select(GoldStandard.image_id).where(GoldStandard.image_id.in_(open_images))))
    fixed |= set(session.scalars(select(Read.image_id).join(RepeatRead, RepeatRead.read_id == Read.id)
                                 .where(mine, Read.done == False)))  # noqa: E712
    newest = (select(func.max(Prediction.id))
              .where(Prediction.kind == FINDINGS_PREDICTION, Prediction.image_id.in_(open_images))
              .group_by(Prediction.image_id))
    payloads: dict[int, Any] = dict(session.execute(
        select(Prediction.image_id, Prediction.payload).where(Prediction.id.in_(newest))).all())
    findings = list(session.scalars(select(Finding.code).where(Finding.active).order_by(Finding.position)))
    earlier = earlier_reads(session, reader_id, open_images)
    scores = {image: image_score(payload, findings, earlier.get(image, ()))
              for image, payload in payloads.items() if image not in fixed}
    by_id = {row.id: row for row in rows}
    return [by_id[image] for image in order_queue([row.id for row in rows], scores, fixed)]


def earlier_reads(session: Session, reader_id: int, images) -> dict[int, list[dict[str, frozenset[int]]]]:
    """Other readers' finished, gradable answers to ``images`` (a query of image ids): per image,
    each answer's present findings and their regions, in read order. Only ever used to order a
    queue; never returned to a reader."""
    others = select(Read.id).where(Read.reader_id != reader_id, Read.done == True,  # noqa: E712
                                   Read.ungradable == False, Read.image_id.in_(images))  # noqa: E712
    answers: dict[int, dict[int, dict[str, frozenset[int]]]] = {}
    for read_id, image_id in session.execute(select(Read.id, Read.image_id).where(Read.id.in_(others))):
        answers.setdefault(image_id, {})[read_id] = {}
    image_of = {read: image for image, reads in answers.items() for read in reads}
    for read_id, code, mask in session.execute(
            select(RegionalLabel.read_id, Finding.code, RegionalLabel.regions)
            .join(Finding, Finding.id == RegionalLabel.finding_id).where(RegionalLabel.read_id.in_(others))):
        answers[image_of[read_id]][read_id][code] = frozenset(mask_to_regions(mask))
    return {image: [reads[r] for r in sorted(reads)] for image, reads in answers.items()}
