"""Gold-standard images: entered once by an admin, mixed unannounced into readers' queues."""
from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select

from storage.audit import audit_events
from storage.errors import AccessDeniedError, InvalidRequestError, NotFoundError
from storage.quality import gold_answers, mark_gold, mix_gold_into_queues
from storage.reading import ReaderSession
from storage.schema import Read


def test_gold_is_entered_once_by_an_admin(clinic):
    db = clinic.project.database
    image = clinic.images[0]
    for who in (clinic.reviewer, clinic.ophthalmologists[0]):
        with pytest.raises(AccessDeniedError):
            mark_gold(db, who.id, image, {"drusen": [2]})
    answer = mark_gold(db, clinic.admin.id, image, {"drusen": [2, 3]}, diagnosis="no DR")
    assert answer.findings == {"drusen": frozenset({2, 3})}
    with pytest.raises(InvalidRequestError):
        mark_gold(db, clinic.admin.id, image, {})
    for findings, diagnosis, error in (({"drusen": []}, None, InvalidRequestError),
                                       ({"drusen": [9]}, None, InvalidRequestError),
                                       ({"no_such": [1]}, None, NotFoundError),
                                       ({}, "no such diagnosis", NotFoundError)):
        with pytest.raises(error):
            mark_gold(db, clinic.admin.id, clinic.images[1], findings, diagnosis)
    assert list(gold_answers(db)) == [image]
    assert gold_answers(db)[image].diagnosis == "no DR"
    assert [e.entity_id for e in audit_events(db, "gold_standard")] != []


def test_gold_images_join_every_eligible_queue_among_unfinished_reads_unannounced(clinic):
    db = clinic.project.database
    reader = clinic.ophthalmologists[0]
    session = ReaderSession(db, reader.id)
    assert reader.role.value in clinic.project.settings().split_roles["train"]
    before = session.queue_status()
    first = before[0][0].id
    session.mark_normal(first)
    session.mark_done(first)
    gold = next(i for i in clinic.images[:6] if i not in {record.id for record, _ in before})
    mark_gold(db, clinic.admin.id, gold, {"haemorrhage": [1]})
    allowed = clinic.project.settings().split_roles["train"]
    everyone = clinic.ophthalmologists + clinic.specialists + [clinic.reviewer, clinic.admin]
    with db.reading() as s:
        readers_now = set(s.scalars(select(Read.reader_id).where(Read.image_id == gold)))
    expected = {r.id for r in everyone if r.role.value in allowed} - readers_now
    assert mix_gold_into_queues(db, clinic.admin.id, seed=3) == len(expected) > 0
    with db.reading() as s:
        assert set(s.scalars(select(Read.reader_id).where(Read.image_id == gold))) == readers_now | expected
    assert mix_gold_into_queues(db, clinic.admin.id) == 0      # once only
    after = session.queue_status()
    assert [r.id for r, _ in after if r.id != gold] == [r.id for r, _ in before]
    assert after[0] == (before[0][0], True)                  # the finished read keeps its place
    assert gold in [r.id for r, _ in after[1:]]
    gold_record = next(r for r, _ in after if r.id == gold)
    ordinary = after[1][0] if after[1][0].id != gold else after[2][0]
    assert type(gold_record) is type(ordinary)
    assert {f.name for f in dataclasses.fields(gold_record)} == {f.name for f in dataclasses.fields(ordinary)}
    assert session.read(gold) == session.read(ordinary.id)   # an untouched read, like any other
    with db.reading() as s:
        rows = s.execute(select(Read.reader_id, Read.position)).all()
    for reader_id in {r for r, _ in rows}:
        positions = sorted(p for r, p in rows if r == reader_id)
        assert positions == list(range(len(positions)))       # the queue stays contiguous
    with pytest.raises(AccessDeniedError):
        mix_gold_into_queues(db, clinic.reviewer.id)


def test_repeats_reopen_a_share_of_finished_reads_blank_and_keep_the_first_answer(clinic):
    from storage.quality import repeat_first_answers, schedule_repeats
    from storage.review import ReviewSession

    db = clinic.project.database
    reader = clinic.ophthalmologists[0]
    session = ReaderSession(db, reader.id)
    queue = [r.id for r in session.queue()]
    for image in queue:
        session.set_regions(image, "drusen", {2})
        session.set_diagnosis(image, "no DR")
        session.mark_done(image)
    with pytest.raises(AccessDeniedError):
        schedule_repeats(db, clinic.reviewer.id, 0.5)
    with pytest.raises(InvalidRequestError):
        schedule_repeats(db, clinic.admin.id, 0)
    assert schedule_repeats(db, clinic.admin.id, share=0.5, seed=1) == round(0.5 * len(queue))
    firsts = repeat_first_answers(db)
    reopened = [image for (image, who) in firsts if who == reader.id]
    assert len(reopened) == round(0.5 * len(queue))
    for image in reopened:
        assert firsts[(image, reader.id)]["regions"] == {"drusen": [2]}
        assert session.read(image) == session.read(image).__class__()          # blank, unfinished: like a new read
    assert sorted(r.id for r in session.queue()) == sorted(queue)            # the same images, nothing added
    assert session.progress().done == len(queue) - len(reopened)
    assert session.next_unfinished().id in reopened
    with db.reading() as s:
        positions = sorted(s.scalars(select(Read.position).where(Read.reader_id == reader.id)))
    assert positions == list(range(len(queue)))
    assert schedule_repeats(db, clinic.admin.id, share=1.0) == len(queue) - len(reopened)   # never twice
    events = [e for e in audit_events(db, "read") if e.action == "reopen_for_repeat"]
    assert events and all(e.reader_id == clinic.admin.id for e in events)
    reads = {(i, r): state for i, r, state in ReviewSession(db, clinic.admin.id).all_reads()}
    assert all(not reads[key].done and not reads[key].regions for key in repeat_first_answers(db))
