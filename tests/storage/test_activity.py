"""Readers' actions from the audit trail, joined with their reads."""
from __future__ import annotations

from storage.activity import read_actions
from storage.reading import ReaderSession


def test_read_actions_carry_reader_image_time_and_done(clinic):
    db = clinic.project.database
    reader = clinic.ophthalmologists[0]
    session = ReaderSession(db, reader.id)
    image = session.queue()[0].id
    session.set_regions(image, "drusen", {2})
    session.mark_done(image)
    session.mark_done(image, False)
    actions = read_actions(db)
    assert [(r, i, a, d) for r, i, a, _, d in actions] == [
        (reader.id, image, "set_regions", False), (reader.id, image, "mark_done", True),
        (reader.id, image, "mark_done", False)]
    times = [when for *_, when, _ in actions]
    assert times == sorted(times) and all(t.tzinfo is not None for t in times)
