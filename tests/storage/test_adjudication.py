"""Adjudication: reviewers' final answers, apart from readers' rows, audited, newest wins."""
from __future__ import annotations

import pytest

from storage.adjudication import (
    adjudicated_answers,
    latest_adjudication,
    list_adjudications,
    record_adjudication,
)
from storage.audit import audit_events
from storage.errors import AccessDeniedError, InvalidRequestError, NotFoundError
from storage.project import LABEL_SOURCES, update_settings
from storage.reading import ReaderSession
from storage.review import ReviewSession


def _read_everything(clinic):
    return sorted((i, r, s) for i, r, s in ReviewSession(clinic.project.database, clinic.admin.id).all_reads())


def test_adjudication_is_kept_apart_and_never_changes_readers_rows(clinic):
    db = clinic.project.database
    image = clinic.images[0]
    readers = sorted(ReviewSession(db, clinic.reviewer.id).reads_for(image))
    for reader, regions in zip(readers, ({1, 5}, {1, 6}, set())):
        session = ReaderSession(db, reader)
        if regions:
            session.set_regions(image, "haemorrhage", regions)
        else:
            session.mark_normal(image)
        session.mark_done(image)
    before = _read_everything(clinic)
    entry = record_adjudication(db, clinic.reviewer.id, image, "haemorrhage", True, {1, 5},
                                diagnosis="mild NPDR", reason="Haemorrhage in 1 and 5; 6 is a vessel crossing.")
    assert _read_everything(clinic) == before
    assert (entry.finding, entry.present, entry.regions, entry.diagnosis) == ("haemorrhage", True, {1, 5}, "mild NPDR")
    assert latest_adjudication(db, image, "haemorrhage") == entry
    assert latest_adjudication(db, image, "drusen") is None


def test_newest_decision_wins_and_history_and_audit_are_kept(clinic):
    db = clinic.project.database
    image = clinic.images[1]
    first = record_adjudication(db, clinic.reviewer.id, image, "drusen", True, [2], reason="Drusen above the fovea.")
    second = record_adjudication(db, clinic.admin.id, image, "drusen", False, reason="Those were reflexes.")
    only_diagnosis = record_adjudication(db, clinic.admin.id, image, None, None, diagnosis="no DR", reason="Clean.")
    assert list_adjudications(db, image) == [first, second, only_diagnosis]
    assert latest_adjudication(db, image, "drusen") == second
    assert latest_adjudication(db, image, None) == only_diagnosis
    answers = adjudicated_answers(db)
    assert answers.finding(image, "drusen") == second
    assert answers.diagnoses == {image: "no DR"}
    assert answers.image_ids == {image}
    # The review queue's marks: the decisions in force on the image (the replaced one is history).
    assert answers.of_image(image) == {"drusen": second, None: only_diagnosis}
    assert answers.of_image(clinic.images[0]) == {}
    events = audit_events(db, "adjudication")
    assert [e.entity_id for e in events] == [first.id, second.id, only_diagnosis.id]
    assert events[0].before is None and events[0].reader_id == clinic.reviewer.id
    assert events[1].before["present"] is True and events[1].after == dict(
        image_id=image, finding="drusen", present=False, regions=[], diagnosis=None, reason="Those were reflexes.")


def test_only_reviewers_and_admins_adjudicate(clinic):
    db = clinic.project.database
    for reader in clinic.ophthalmologists + clinic.specialists:
        with pytest.raises(AccessDeniedError):
            record_adjudication(db, reader.id, clinic.images[0], "drusen", False, reason="I say so.")
    assert list_adjudications(db) == [] and audit_events(db, "adjudication") == []


@pytest.mark.parametrize("finding, present, regions, diagnosis, reason, error", [
    ("drusen", True, [], None, "why", InvalidRequestError),          # present needs regions
    ("drusen", False, [3], None, "why", InvalidRequestError),        # absent has none
    ("drusen", None, [], None, "why", InvalidRequestError),          # present or absent?
    ("drusen", True, [9], None, "why", InvalidRequestError),         # no region 9
    ("drusen", False, [], None, "  ", InvalidRequestError),          # a reason is required
    (None, None, [], None, "why", InvalidRequestError),              # decides nothing
    (None, True, [], "no DR", "why", InvalidRequestError),           # present of what?
    ("no_such_finding", False, [], None, "why", NotFoundError),
    ("drusen", False, [], "no such diagnosis", "why", NotFoundError),
])
def test_bad_adjudications_are_refused_with_a_sentence(clinic, finding, present, regions, diagnosis, reason, error):
    db = clinic.project.database
    with pytest.raises(error) as raised:
        record_adjudication(db, clinic.reviewer.id, clinic.images[0], finding, present, regions, diagnosis, reason)
    assert str(raised.value).endswith(".") and "\n" not in str(raised.value)
    assert list_adjudications(db) == []


def test_unknown_image_or_reviewer(clinic):
    db = clinic.project.database
    with pytest.raises(NotFoundError):
        record_adjudication(db, clinic.reviewer.id, 10_000, "drusen", False, reason="why")
    with pytest.raises(NotFoundError):
        record_adjudication(db, 10_000, clinic.images[0], "drusen", False, reason="why")


def test_label_source_setting_is_stored_and_audited(clinic):
    db = clinic.project.database
    assert clinic.project.settings().label_source == "consensus"
    assert update_settings(db, label_source="adjudicated, else consensus").label_source == "adjudicated"
    assert update_settings(db, label_source="Consensus").label_source == "consensus"
    with pytest.raises(InvalidRequestError):
        update_settings(db, label_source="majority")
    assert set(LABEL_SOURCES) == {"consensus", "adjudicated"}
    changes = [e.after for e in audit_events(db, "project") if e.action == "update"]
    assert changes[-2:] == [{"label_source": "adjudicated"}, {"label_source": "consensus"}]
