"""Review and the streaming pass over every read."""
from __future__ import annotations

import pytest

from storage.errors import AccessDeniedError
from storage.predictions import save_model_landmarks
from storage.reading import ReaderSession
from storage.review import ReviewSession


def test_review_is_refused_to_readers(clinic):
    for reader in clinic.ophthalmologists + clinic.specialists:
        with pytest.raises(AccessDeniedError):
            ReviewSession(clinic.project.database, reader.id)


def test_all_reads_streams_every_read_with_its_labels(clinic):
    db = clinic.project.database
    s = ReaderSession(db, clinic.specialists[0].id)
    first, second = [image.id for image in s.queue()[:2]]
    s.set_regions(first, "macular_hole", {1})
    s.set_regions(first, "membrane", {1, 4})
    s.set_diagnosis(first, "PDR")
    s.set_landmarks(first, (10, 10), (30, 11))
    save_model_landmarks(db, first, (11, 10), (31, 12), "landmarks-1")  # not a reader's answer
    s.mark_normal(second)
    reads = list(ReviewSession(db, clinic.admin.id).all_reads())
    assert len(reads) == 3 * len(clinic.images)
    assert [(i, r) for i, r, _ in reads] == sorted((i, r) for i, r, _ in reads)
    mine = {image: state for image, reader, state in reads if reader == clinic.specialists[0].id}
    assert mine[first] == s.read(first)
    assert mine[first].regions == {"macular_hole": frozenset({1}), "membrane": frozenset({1, 4})}
    assert mine[first].diagnosis == "PDR" and mine[first].landmarks.fovea == (30, 11)
    assert mine[second].normal and not mine[second].regions


def test_consensus_and_agreement_come_from_the_stored_reads(clinic):
    from annotate.agreement import agreement_report
    from annotate.consensus import consensus_for_project

    db = clinic.project.database
    review = ReviewSession(db, clinic.reviewer.id)
    image = clinic.images[0]
    first, second, third = sorted(review.reads_for(image))
    for reader, regions in ((first, {1, 2}), (second, {2, 3})):
        s = ReaderSession(db, reader)
        s.set_regions(image, "haemorrhage", regions)
        s.set_diagnosis(image, "mild NPDR")
        s.mark_done(image)
    s = ReaderSession(db, third)
    s.mark_normal(image)
    s.set_diagnosis(image, "no DR")
    s.mark_done(image)
    codes = [f.code for f in clinic.project.settings().findings]
    consensus = consensus_for_project(review.all_reads(), codes, k=clinic.project.settings().consensus_k)
    result = consensus.image(image)
    assert (result.reads, result.diagnosis) == (3, "mild NPDR")
    assert result.findings["haemorrhage"].state == "present" and result.findings["haemorrhage"].votes == 2
    assert result.findings["haemorrhage"].cue_regions == {1, 2, 3}
    assert result.findings["drusen"].state == "absent"
    assert clinic.images[1] not in consensus  # nobody finished it
    accuracy = {r.reader_id: r for r in agreement_report(consensus).readers}
    assert (accuracy[third].false_negative, accuracy[first].true_positive) == (1, 1)
