"""Model assistance: suggested regions (accepted in one undoable action), mask overlays, and
nothing of it on test images while the project hides suggestions there."""
from __future__ import annotations

import cv2
import numpy as np

from annotate.services.importer import import_images
from models.segmentation.stored_names import RED_FREE_NOTE
from storage.assignment import assign_readers
from storage.predictions import save_model_landmarks, save_prediction
from storage.project import create_project
from storage.reading import ReaderSession
from tests.conftest import add_reader_as_admin
from tests.ui.conftest import DISC, FOVEA, PHOTO_SIZE, write_fundus
from tests.ui.driving import next_image, open_window, press
from ui.assist import PRESEGMENTATION


def store_presegmentation(project, image_id: int) -> None:
    folder = project.root / "predictions" / str(image_id)
    folder.mkdir(parents=True)
    w, h = PHOTO_SIZE
    vessels = np.zeros((h, w), np.uint8)
    cv2.line(vessels, (20, 100), (230, 100), 255, 5)
    disc = np.zeros((h, w), np.uint8)
    cv2.circle(disc, (80, 96), 12, 255, -1)
    for name, mask in (("vessels", vessels), ("disc", disc), ("haemorrhages", disc)):
        cv2.imwrite(str(folder / f"{name}.png"), mask)
    save_prediction(project.database, image_id, PRESEGMENTATION,
                    {"finding_regions": {"haemorrhage": [1, 5]},
                     "mask_folder": f"predictions/{image_id}"}, model_version="test-1")
    save_model_landmarks(project.database, image_id, DISC, FOVEA, model_version="test-1")   # regions are drawn from them


def test_suggested_regions_are_shown_and_accepted_in_one_undoable_action(qtbot, reading_project):
    project, ana = reading_project.project, reading_project.readers["Ana"]
    session = ReaderSession(project.database, ana.id)
    image_id = session.queue()[0].id
    store_presegmentation(project, image_id)
    window = open_window(qtbot, project, ana.id)
    assert window.answer_panel.rows["haemorrhage"].suggested.text() == "+1 5"
    assert "Model suggests: Haemorrhage 1 5" in window.hint_label.text()
    assert session.read(image_id).regions == {}  # a suggestion is not a label
    press(qtbot, window, "Shift+A")
    assert session.read(image_id).regions == {"haemorrhage": frozenset({1, 5})}
    assert window.answer_panel.rows["haemorrhage"].suggested.text() == ""
    press(qtbot, window, "Ctrl+Z")
    assert session.read(image_id).regions == {}


def test_a_red_free_photo_says_why_no_lesion_regions_are_suggested(qtbot, reading_project):
    project, ana = reading_project.project, reading_project.readers["Ana"]
    image_id = ReaderSession(project.database, ana.id).queue()[0].id
    save_prediction(project.database, image_id, PRESEGMENTATION,   # as the pipeline stores a grey photo's
                    {"finding_regions": {}, "red_free": True, "mask_folder": None}, model_version="test-1")
    window = open_window(qtbot, project, ana.id)
    assert RED_FREE_NOTE in window.hint_label.text() and "Model suggests" not in window.hint_label.text()


def test_a_picture_with_no_retina_says_so_and_what_the_reader_can_do(qtbot, reading_project):
    # A new-user trial: a blank picture pre-segmented "No fundus found" showed only "Click the centre
    # of the optic disc." at the workstation.
    project, ana = reading_project.project, reading_project.readers["Ana"]
    image_id = ReaderSession(project.database, ana.id).queue()[0].id
    found = "No fundus found: the picture is one flat colour; nothing is suggested for this picture."
    save_prediction(project.database, image_id, PRESEGMENTATION,   # as the pipeline stores a blank picture's
                    {"finding_regions": {}, "no_fundus": True, "red_free": False, "mask_folder": None,
                     "messages": [found]}, model_version="test-1")
    window = open_window(qtbot, project, ana.id)
    assert found in window.hint_label.text() and "U marks it ungradable" in window.hint_label.text()


def test_vessel_overlay_is_drawn_from_the_stored_mask(qtbot, reading_project):
    project, ana = reading_project.project, reading_project.readers["Ana"]
    image_id = ReaderSession(project.database, ana.id).queue()[0].id
    store_presegmentation(project, image_id)
    window = open_window(qtbot, project, ana.id)
    assert window.actions_by_name["overlay_vessels"].isEnabled()
    with qtbot.waitSignal(window.loader.overlayReady, timeout=5000) as ready:
        press(qtbot, window, "Shift+V")
    overlay = ready.args[2]
    assert overlay.pixelColor(120, 100).alpha() > 0 and overlay.pixelColor(120, 20).alpha() == 0
    assert window.canvas.has_overlay()
    press(qtbot, window, "Shift+V")
    assert not window.canvas.has_overlay()



def test_overlays_are_drawn_on_the_next_image_that_was_prefetched(qtbot, reading_project):
    """The reading flow: the next photo is decoded ahead, so it is shown at once when opened;
    its overlays must still be drawn (they waited for a size forgotten after it arrived)."""
    project, ana = reading_project.project, reading_project.readers["Ana"]
    first, second = ReaderSession(project.database, ana.id).queue()[:2]
    store_presegmentation(project, second.id)
    window = open_window(qtbot, project, ana.id)
    qtbot.waitUntil(lambda: window.loader.is_rendered(second.id), timeout=5000)
    next_image(qtbot, window, "Right")
    assert window.controller.image.id == second.id
    qtbot.waitUntil(lambda: window.actions_by_name["overlay_vessels"].isEnabled(), timeout=5000)
    with qtbot.waitSignal(window.loader.overlayReady, timeout=5000):
        press(qtbot, window, "Shift+V")
    assert window.canvas.has_overlay()
    next_image(qtbot, window, "Left")             # and gone on a photo without pre-segmentation
    assert not window.canvas.has_overlay()

def test_test_images_show_no_suggestions_while_the_project_hides_them(qtbot, tmp_path):
    project = create_project(tmp_path / "gold", name="Gold standard")
    try:
        photo = write_fundus(tmp_path / "photos" / "test_eye.jpg", seed=3)
        image_id = import_images(project, [photo], split="test").added[0]
        readers = [add_reader_as_admin(project.database, f"Specialist {i}", role="retina_specialist")
                   for i in range(3)]
        assign_readers(project.database, readers_per_image=3)
        store_presegmentation(project, image_id)
        window = open_window(qtbot, project, readers[0].id)
        assert window.controller.suggestion is None
        assert window.answer_panel.rows["haemorrhage"].suggested.text() == ""
        assert not window.actions_by_name["overlay_vessels"].isEnabled()
        press(qtbot, window, "Shift+A")
        assert ReaderSession(project.database, readers[0].id).read(image_id).regions == {}
    finally:
        project.close()


def test_the_workstation_reads_the_stored_names_without_loading_torch():
    # ui.assist takes the names pre-segmentation writes from models/, not a copy, and importing
    # it (the workstation's start) must not pay for torch.
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    code = ("import sys, ui.assist, models.segmentation.presegment as p, models.segmentation.lesions as l\n"
            "assert ui.assist.PRESEGMENTATION is p.PREDICTION_KIND and ui.assist.LESION_MASKS is l.LESION_NAMES\n")
    assert subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True).returncode == 0
    alone = subprocess.run([sys.executable, "-c", "import sys, ui.assist; print('torch' in sys.modules)"],
                           cwd=root, capture_output=True, text=True)
    assert alone.stdout.strip() == "False", alone.stderr


def test_the_line_that_stays_after_a_pass_names_the_networks_without_weights(qtbot, reading_project):
    # A new-user trial (no weights/): "Pre-segmentation ready for your queue (6 new, 0 done before)."
    # was all that stayed; each network's missing weights had been said for a moment, then covered.
    from models.segmentation.presegment import PresegmentSummary
    from ui.presegment_ahead import PresegmentAhead

    ahead = PresegmentAhead(reading_project.project)
    said: list[str] = []
    ahead.status.connect(said.append)
    for line in ("vessels: no vessels weights at /w/vessels.safetensors; vessels are not segmented",
                 "lesions: The weights file /w/lesions.safetensors is damaged; lesions are not segmented"):
        ahead._on_progress(line)
    ahead._on_finished(PresegmentSummary(done=6))
    assert said[-1] == ("Pre-segmentation ready for your queue (6 new, 0 done before); no usable weights for "
                        "vessels, lesions.")
    ahead._on_progress("disc_cup: no disc_cup weights at /w/disc_cup.safetensors")
    ahead._on_finished(PresegmentSummary(done=6))
    assert said[-1].endswith("; no usable weights for 3 networks (README, Models).")
    ahead.without = []
    ahead._on_finished(PresegmentSummary(done=6))
    assert said[-1] == "Pre-segmentation ready for your queue (6 new, 0 done before)."


def test_the_queue_is_presegmented_ahead_and_the_open_image_gets_the_models_landmarks(qtbot, reading_project,
                                                                                      tmp_path, monkeypatch):
    from storage.predictions import latest_prediction
    from tests.models.segmentation.tiny_pipeline import write_tiny_pipeline_weights

    monkeypatch.setattr("models.segmentation.pipeline.WEIGHTS_DIR", write_tiny_pipeline_weights(tmp_path / "weights"))
    project, ana = reading_project.project, reading_project.readers["Ana"]
    window = open_window(qtbot, project, ana.id)
    assert window.canvas.landmarks() is None and not window.ahead_action.isChecked()
    window.run_ahead(True)
    assert window.ahead_action.isChecked()
    qtbot.waitUntil(lambda: not window.ahead.running(), timeout=120_000)
    for image_id in window.controller.queue_ids():
        assert latest_prediction(project.database, image_id, PRESEGMENTATION) is not None
    assert window.canvas.landmarks() is not None   # the open image: the model's disc and fovea arrived
    assert "ready for your queue (3 new" in window.ahead_label.text()
    assert not window.ahead_action.isChecked()
    from PySide6.QtGui import QAction

    from ui.precision_setting import NETWORKS_LINE
    ran = window.findChild(QAction, NETWORKS_LINE).text()   # Model → Precision: what ran, and why
    assert ran.startswith("Pre-segmentation networks: PyTorch ") and ran.endswith("OCTANT_BACKEND=torch).")
    window.run_ahead(True)   # a second pass finds nothing left to do
    qtbot.waitUntil(lambda: not window.ahead.running(), timeout=60_000)
    assert "(0 new, 3 done before" in window.ahead_label.text()
