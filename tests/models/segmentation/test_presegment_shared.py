"""Workstations sharing a project pre-segment each image once (storage/work_claims.py): a pass
skips the images another process holds, reports them done once that process has stored them,
takes over a crashed process's claims once expired, and a cancel while it waits for them stops
it, its claims released."""
from __future__ import annotations

import threading

import cv2
import pytest
from sqlalchemy import func, select

from models.segmentation import presegment
from models.segmentation.pipeline import load_pipeline_models
from models.segmentation.presegment import DONE_ELSEWHERE, presegment_project
from storage.errors import CancelledError
from storage.images import list_images
from storage.predictions import save_claimed_prediction
from storage.project import create_project
from storage.schema import Prediction
from storage.work_claims import CLAIM_SECONDS, CLAIMED, claim_holders, claim_image, new_holder
from tests.models.fundus_synthetic import synthetic_fundus

KIND = "presegmentation"


@pytest.fixture
def project(tmp_path):
    """A project of four different synthetic photos."""
    from annotate.services.importer import import_images

    image = synthetic_fundus(240, 180)[0]
    paths = []
    for i, flip in enumerate((None, 1, 0, -1)):
        paths.append(tmp_path / "photos" / f"eye_{i}.png")
        paths[-1].parent.mkdir(exist_ok=True)
        cv2.imwrite(str(paths[-1]), image if flip is None else cv2.flip(image, flip))
    handle = create_project(tmp_path / "clinic", name="Clinic")
    import_images(handle, paths, "train")
    yield handle
    handle.close()


def predictions_per_image(db) -> dict[int, int]:
    with db.reading() as session:
        return dict(session.execute(select(Prediction.image_id, func.count()).where(Prediction.kind == KIND)
                                    .group_by(Prediction.image_id)).all())


def test_images_another_process_holds_are_left_to_it_and_reported_once_it_stored_them(
        project, tiny_weights, monkeypatch):
    monkeypatch.setattr(presegment, "HELD_POLL_S", 0.05)
    db = project.database
    ids = [record.id for record in list_images(db)]
    other = new_holder()   # another workstation, busy with the second image
    assert claim_image(db, ids[1], KIND, other) == CLAIMED
    crashed = new_holder()   # one that crashed holding the third: its claim has expired
    assert claim_image(db, ids[2], KIND, crashed, seconds=-1.0) == CLAIMED
    models, _ = load_pipeline_models(tiny_weights, "cpu")
    events = []

    def progress(event):
        events.append(event)
        if event.image_id == ids[3] and event.status == "done":   # the other workstation stores its image
            save_claimed_prediction(db, ids[1], KIND, {"mask_folder": f"predictions/{ids[1]}"}, "v", other)

    summary = presegment_project(project, None, models, progress=progress, image_ids=ids)
    assert summary.done == 3 and summary.elsewhere == 1 and not summary.failed
    assert predictions_per_image(db) == dict.fromkeys(ids, 1)   # each image once
    assert [(e.image_id, e.message) for e in events if e.message == DONE_ELSEWHERE] == [(ids[1], DONE_ELSEWHERE)]
    assert events[-1].done == events[-1].total == 4
    assert claim_holders(db, KIND) == {}


def test_a_cancel_while_waiting_for_another_process_stops_the_pass_and_releases_its_claims(
        project, tiny_weights, monkeypatch):
    monkeypatch.setattr(presegment, "HELD_POLL_S", 0.05)
    db = project.database
    ids = [record.id for record in list_images(db)]
    other = new_holder()
    for image_id in ids[:2]:
        assert claim_image(db, image_id, KIND, other, seconds=CLAIM_SECONDS) == CLAIMED
    models, _ = load_pipeline_models(tiny_weights, "cpu")
    cancel, outcome = threading.Event(), []

    def progress(event):
        if event.done == 2:   # its own two images are stored: it now waits for the other's
            cancel.set()

    def run():
        try:
            presegment_project(project, None, models, progress=progress, cancel=cancel, image_ids=ids)
        except CancelledError as error:
            outcome.append(str(error))
    worker = threading.Thread(target=run)
    worker.start()
    worker.join(120)   # a generous bound: the cancel is seen within one poll
    assert not worker.is_alive() and outcome == ["Pre-segmentation stopped after 2 photos; run it again to continue."]
    assert predictions_per_image(db) == {ids[2]: 1, ids[3]: 1}
    assert claim_holders(db, KIND) == {ids[0]: other, ids[1]: other}   # its own went, the other's stay


def test_an_image_this_process_could_not_do_is_left_to_the_others_at_once(project, tiny_weights, monkeypatch):
    # Its photo changed since import here (or cannot be read from this workstation): the claim goes with
    # the failure, not at the end of the pass (it was renewed with every image stored meanwhile, so
    # another workstation that can read the photo waited for this whole pass).
    db = project.database
    records = list_images(db)
    ids = [record.id for record in records]
    records[1].path.write_bytes(records[1].path.read_bytes() + b"changed")
    models, _ = load_pipeline_models(tiny_weights, "cpu")
    other, seen = new_holder(), {}

    def progress(event):
        if event.image_id == ids[2] and event.status == "done":   # the next image after the failed one
            seen["claim"] = claim_image(db, ids[1], KIND, other)

    summary = presegment_project(project, None, models, progress=progress, image_ids=ids)
    assert [path for path, _ in summary.failed] == [str(records[1].path)] and summary.done == 3
    assert seen == {"claim": CLAIMED}                               # the other workstation may try it now
    assert claim_holders(db, KIND) == {ids[1]: other}


def test_a_cancel_while_the_database_is_busy_is_still_said_as_a_stop(project, tiny_weights, monkeypatch):
    # Releasing the claims is a courtesy (they expire): a busy database then does not hide the stop.
    from storage.errors import DatabaseLockedError

    def busy(*_args, **_kwargs):
        raise DatabaseLockedError("The project database is busy in another program.")

    import storage.work_claims

    monkeypatch.setattr(storage.work_claims, "release_claims", busy)
    models, _ = load_pipeline_models(tiny_weights, "cpu")
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(CancelledError):
        presegment_project(project, None, models, cancel=cancel, image_ids=[r.id for r in list_images(project.database)])


def test_a_mask_that_cannot_be_written_fails_its_photo_instead_of_storing_a_prediction_without_it(
        project, tiny_weights):
    # cv2.imwrite says a failed write (a full disk, a name taken by a folder) only by returning False:
    # the prediction was stored pointing at masks that were not there.
    from models.segmentation.presegment import MASK_NAMES
    from storage.predictions import latest_prediction

    db = project.database
    ids = [record.id for record in list_images(db)]
    for name in (*MASK_NAMES, "regions"):
        (project.root / "predictions" / str(ids[0]) / f"{name}.png").mkdir(parents=True)
    models, _ = load_pipeline_models(tiny_weights, "cpu")
    summary = presegment_project(project, None, models, image_ids=ids)
    assert summary.done == 3 and len(summary.failed) == 1 and summary.failed[0][1].endswith("disc.png could not be written (Is a directory)")
    assert latest_prediction(db, ids[0], KIND) is None and claim_holders(db, KIND) == {}
    assert not list((project.root / "predictions" / str(ids[0])).glob("*.partial"))
