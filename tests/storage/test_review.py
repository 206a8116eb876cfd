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
