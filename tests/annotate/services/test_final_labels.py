"""Final labels: consensus, or adjudicated answers over it when the project says so."""
from __future__ import annotations

import numpy as np
import pytest

from annotate.consensus import ABSENT, PRESENT, UNCERTAIN
from annotate.services.final_labels import FinalFinding, final_labels
from storage.adjudication import record_adjudication
from storage.project import update_settings
from storage.reading import ReaderSession
from storage.review import ReviewSession
from tests.storage.conftest import Clinic, add_fake_images


@pytest.fixture
def clinic(tmp_project) -> Clinic:
    from storage.assignment import assign_readers
    from storage.readers import Role
    from tests.conftest import add_reader_as_admin

    db = tmp_project.database
    readers = [add_reader_as_admin(db, f"Dr O{i}", Role.OPHTHALMOLOGIST) for i in range(3)]
    reviewer = add_reader_as_admin(db, "Reviewer", Role.REVIEWER, "246810")
    images = add_fake_images(tmp_project, train=4)
    assign_readers(db)
    return Clinic(tmp_project, readers, [], reviewer, reviewer, images)


def test_arrays_agree_with_per_image_answers_under_both_sources(clinic):
    db = clinic.project.database
    first, second, third = clinic.images[:3]
    for image, regions in ((first, ({1, 5}, {1, 6}, None)), (second, ({2}, None, None))):
        readers = sorted(ReviewSession(db, clinic.reviewer.id).reads_for(image))
        for reader, marked in zip(readers, regions):
            session = ReaderSession(db, reader)
            session.set_regions(image, "haemorrhage", marked) if marked else session.mark_normal(image)
            session.mark_done(image)
    record_adjudication(db, clinic.reviewer.id, second, "haemorrhage", True, {2, 3}, reason="Two regions.")
    record_adjudication(db, clinic.reviewer.id, third, "drusen", False, diagnosis="no DR", reason="Clear.")
    codes = [f.code for f in clinic.project.settings().findings]
    h, d = codes.index("haemorrhage"), codes.index("drusen")
    for source in ("consensus", "adjudicated"):
        update_settings(db, label_source=source)
        labels = final_labels(db)
        ids, state, bits = labels.arrays()
        assert list(ids) == labels.image_ids()
        for row, image in enumerate(ids):
            for f, code in enumerate(codes):
                answer = labels.finding(int(image), code)
                assert {PRESENT: "present", ABSENT: "absent", UNCERTAIN: "uncertain"}[state[row, f]] == answer.state
                assert bits[row, f] == sum(1 << (r - 1) for r in answer.regions)
    assert list(ids) == [first, second, third]
    assert state[1, h] == PRESENT and bits[1, h] == 0b110 and state[2, d] == ABSENT
    assert labels.diagnosis(third) == ("no DR", "adjudicated")
    assert labels.diagnoses() == [labels.diagnosis(int(i))[0] for i in ids]
    update_settings(db, label_source="consensus")
    ids, state, _ = final_labels(db).arrays()
    assert list(ids) == [first, second] and state[1, h] == UNCERTAIN
    assert np.array_equal(final_labels(db, label_source="adjudicated").arrays()[0], [first, second, third])


def test_gold_answers_count_as_adjudicated_where_no_reviewer_decided(clinic):
    from storage.quality import mark_gold
    from storage.readers import find_reader

    db = clinic.project.database
    admin = find_reader(db, "Admin").id   # made with the clinic's readers
    first, second = clinic.images[:2]
    for image in (first, second):
        for reader in sorted(ReviewSession(db, clinic.reviewer.id).reads_for(image)):
            session = ReaderSession(db, reader)
            session.set_regions(image, "drusen", {4})
            session.mark_done(image)
    mark_gold(db, admin, first, {"haemorrhage": [1, 5]}, diagnosis="PDR")
    mark_gold(db, admin, second, {"haemorrhage": [2]})
    record_adjudication(db, clinic.reviewer.id, second, "haemorrhage", False, reason="Not there on review.")
    assert final_labels(db).finding(first, "drusen").state == "present"            # consensus: gold unused
    update_settings(db, label_source="adjudicated")
    labels = final_labels(db)
    assert labels.finding(first, "haemorrhage") == FinalFinding("present", frozenset({1, 5}), "gold")
    assert labels.finding(first, "drusen") == FinalFinding("absent", frozenset(), "gold")
    assert labels.finding(second, "haemorrhage").source == "adjudicated"           # the reviewer's word wins
    assert labels.diagnosis(first) == ("PDR", "gold") and labels.diagnosis(second)[1] == "consensus"
    ids, state, bits = labels.arrays()
    codes = [f.code for f in clinic.project.settings().findings]
    for row, image in enumerate(ids):
        for f, code in enumerate(codes):
            answer = labels.finding(int(image), code)
            assert {PRESENT: "present", ABSENT: "absent", UNCERTAIN: "uncertain"}[state[row, f]] == answer.state
            assert bits[row, f] == sum(1 << (r - 1) for r in answer.regions)
    assert labels.diagnoses() == [labels.diagnosis(int(i))[0] for i in ids]
