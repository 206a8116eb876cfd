"""The reviewers' tiny project (test_review, test_review_screen): five photos, three readers who
agree, disagree on regions, leave one vote short of k = 2, or agree it is absent; a reviewer."""
from __future__ import annotations

from pathlib import Path

from storage.reading import ReaderSession
from tests.conftest import add_reader_as_admin
from tests.ui.conftest import DISC, FOVEA, ReadingProject, make_reading_project

FINDING = "haemorrhage"
RHEA_PIN = "864200"   # a reviewer needs one
# image index -> reader -> haemorrhage regions (None: marked normal)
LABELS = {
    0: {"Ana": {1, 4}, "Ben": {1, 4}, "Cleo": {1, 4}},   # agreed: present
    1: {"Ana": {1}, "Ben": {1, 4}, "Cleo": None},        # present, but regions differ
    2: {"Ana": {5}, "Ben": None, "Cleo": None},          # one vote of k = 2: uncertain
    3: {"Ana": None, "Ben": None, "Cleo": None},         # absent
    4: {"Ana": None, "Ben": None, "Cleo": None},         # absent
}


def make_review_project(folder: Path) -> ReadingProject:
    made = make_reading_project(folder, images=len(LABELS))
    made.readers["Rhea"] = add_reader_as_admin(made.project.database, "Rhea", role="reviewer", pin=RHEA_PIN)
    for name in ("Ana", "Ben", "Cleo"):
        session = ReaderSession(made.project.database, made.readers[name].id)
        for n, image_id in enumerate(made.image_ids):
            session.set_landmarks(image_id, disc=DISC, fovea=FOVEA, source="manual")
            regions = LABELS[n][name]
            if regions is None:
                session.mark_normal(image_id)
            else:
                session.set_regions(image_id, FINDING, regions)
            session.set_diagnosis(image_id, "no DR" if regions is None else "mild NPDR")
            session.mark_done(image_id)
    return made


def keep_starter_models_out(tmp_path: Path, monkeypatch) -> Path:
    """The shipped starter weights stay out unless a test puts its own in the folder returned."""
    folder = tmp_path / "starter_weights"
    folder.mkdir()
    monkeypatch.setattr("models.engine.weights.WEIGHTS_DIR", folder)
    return folder
