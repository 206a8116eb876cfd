"""A tiny labelled project for the training panel: three readers agree on every photo, so the
consensus holds haemorrhage present (macula and temporal regions) on half of them, absent on the rest."""
from __future__ import annotations

from pathlib import Path

from storage.reading import ReaderSession
from tests.ui.conftest import DISC, FOVEA, make_reading_project

FINDING = "haemorrhage"
CUE = {1, 4}


def make_labelled_project(folder: Path, images: int = 8):
    made = make_reading_project(folder, images=images)
    present = set(made.image_ids[: images // 2])
    for name in ("Ana", "Ben", "Cleo"):
        session = ReaderSession(made.project.database, made.readers[name].id)
        for record in session.queue():
            session.set_landmarks(record.id, disc=DISC, fovea=FOVEA, source="manual")
            if record.id in present:
                session.set_regions(record.id, FINDING, CUE)
            else:
                session.mark_normal(record.id)
            session.set_diagnosis(record.id, "mild NPDR" if record.id in present else "no DR")
            session.mark_done(record.id)
    return made, present
