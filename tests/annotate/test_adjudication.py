"""The adjudication queue on a crafted project: unsettled disagreements first, reproducible."""
from __future__ import annotations

from annotate.adjudication import (
    DIAGNOSES_DIFFER,
    REGIONS_DIFFER,
    UNCERTAIN_VOTE,
    disagreements,
    review_queue,
)
from annotate.consensus import consensus_for_project
from tests.annotate.test_consensus import marks, normal

FINDINGS = ["haemorrhage", "drusen"]


def crafted():
    """image 1: all agree; 2: regions differ; 3: one of three marks drusen; 4: diagnoses differ;
    5: regions differ and an uncertain vote."""
    images = {
        1: [marks(haemorrhage={1}), marks(haemorrhage={1}), marks(haemorrhage={1})],
        2: [marks(haemorrhage={1, 5}), marks(haemorrhage={1, 6}), normal()],
        3: [marks(drusen={3}), normal(), normal()],
        4: [normal("no DR"), normal("mild NPDR"), normal("no DR")],
        5: [marks(haemorrhage={2}, drusen={4}), marks(haemorrhage={3}), normal()],
    }
    reads = [(image, reader, read) for image, rs in images.items() for reader, read in enumerate(rs)]
    return consensus_for_project(reads, FINDINGS)


def test_disagreements_say_why():
    assert disagreements(crafted()) == {
        2: {"haemorrhage": REGIONS_DIFFER},
        3: {"drusen": UNCERTAIN_VOTE},
        4: {None: DIAGNOSES_DIFFER},
        5: {"haemorrhage": REGIONS_DIFFER, "drusen": UNCERTAIN_VOTE},
    }
    assert disagreements(crafted(), "drusen") == {3: {"drusen": UNCERTAIN_VOTE}, 5: {"drusen": UNCERTAIN_VOTE}}


def test_unsettled_first_then_settled_in_a_reproducible_order():
    consensus = crafted()
    queue = review_queue(consensus, {(2, "haemorrhage"), (5, "drusen"), (4, None), (1, "haemorrhage")})
    assert [(e.image_id, e.done) for e in queue] == [(3, False), (5, False), (2, True), (4, True)]
    assert queue[1].pending == {"haemorrhage": REGIONS_DIFFER} and queue[1].settled == {"drusen": UNCERTAIN_VOTE}
    ordered = review_queue(consensus, set(), image_order=[5, 4, 3, 2, 1])
    assert [e.image_id for e in ordered] == [5, 4, 3, 2]
    assert review_queue(consensus, set(), "drusen") == review_queue(consensus, [], "drusen")


def test_model_queue_from_stored_predictions():
    from annotate.adjudication import model_disagreements

    consensus = crafted()
    def call(h, d=0.1):
        return {"findings": {"haemorrhage": {"probability": h, "threshold": 0.6},
                             "drusen": {"probability": d, "threshold": 0.5}}}
    predictions = {1: call(0.9), 2: call(0.2), 3: call(0.1, 0.9), 4: call(0.7, 0.8), 6: call(0.9)}
    found = model_disagreements(consensus, predictions)
    # 1: present and called; 2: haemorrhage present (2 of 3) but p < threshold; 3: drusen uncertain;
    # 4: both absent by consensus, both called present (drusen further over its threshold first).
    assert found == {2: {"haemorrhage": "model p = 0.20 < 0.60, consensus present"},
                     4: {"drusen": "model p = 0.80 ≥ 0.50, consensus absent",
                         "haemorrhage": "model p = 0.70 ≥ 0.60, consensus absent"}}
    assert list(found[4]) == ["drusen", "haemorrhage"]
    assert model_disagreements(consensus, predictions, "drusen") == {4: {"drusen": found[4]["drusen"]}}
