"""Pre-screening: regions from activation, and `main.py screen` with and without a project."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from main import main
from models.findings.screening import finding_result, region_fractions
from tests.models.fundus_synthetic import synthetic_fundus


def test_region_mass_and_passing_regions_from_a_crafted_map():
    fractions = np.zeros((9, 4, 4), np.float32)
    fractions[1, :, :2] = 1.0           # left half: region 1
    fractions[5, :, 2:] = 0.6           # right half: 60 % region 5, 40 % region 6
    fractions[6, :, 2:] = 0.4
    activation = np.zeros((4, 4), np.float32)
    activation[0, 0] = 0.9              # region 1 passes 0.5
    activation[3, 3] = 0.4              # region 5's best cell is below 0.5; region 6 never has half a cell
    result = finding_result(0.8, activation, 0.5, fractions)
    assert result.regions == [1]
    assert result.region_activation == pytest.approx([0, 0.9, 0, 0, 0, 0.24, 0.16, 0, 0])
    assert result.region_peak == pytest.approx([0.9, 0, 0, 0, 0.4, 0, 0, 0])   # region 6: no half cell
    assert finding_result(0.8, activation, 0.3, fractions).regions == [1, 5]
    assert finding_result(0.8, activation, 0.5, None).regions == []        # no landmarks: no regions


def test_region_fractions_tile_the_crop():
    image, disc, fovea, _ = synthetic_fundus(320, 240)
    fractions = region_fractions(disc, fovea, image.shape[:2], (40, 0, 280, 240), 8)
    assert fractions.shape == (9, 8, 8)
    np.testing.assert_allclose(fractions.sum(axis=0), 1.0, atol=1e-5)
    assert fractions[1].max() > 0.9     # the macula region holds whole cells around the fovea


@pytest.fixture
def photo_folder(tmp_path):
    """An empty folder for a test's photos."""
    folder = tmp_path / "photos"
    folder.mkdir()
    return folder


@pytest.fixture
def photos(photo_folder):
    for n in range(2):
        image, *_ = synthetic_fundus(360, 270, right_eye=bool(n), seed=n)
        cv2.imwrite(str(photo_folder / f"eye{n}.png"), image)
    (photo_folder / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    return photo_folder


def test_screen_writes_a_folder_per_photo_and_stores_what_the_project_holds(photos, tmp_path, capsys):
    # One run (the networks load once): two photos and a broken file, one photo in the project.
    from annotate.services.importer import import_images
    from storage.predictions import FINDINGS_PREDICTION, latest_predictions
    from storage.project import create_project, open_project

    with create_project(tmp_path / "project") as project:
        import_images(project, [photos / "eye0.png"])
    out = tmp_path / "out"
    code = main(["screen", str(photos), "--out", str(out), "--project", str(tmp_path / "project"), "--device", "cpu"])
    assert code == 1                                                     # the broken file
    captured = capsys.readouterr()
    assert captured.err.count("broken.jpg") == 1 and "Screened 2 of 3" in captured.out   # named once
    assert "stored 1 in the project" in captured.out and "eye1.png: not in the project" in captured.err
    result = json.loads((out / "eye0" / "result.json").read_text())
    assert set(result["findings"]) >= {"haemorrhage", "hard_exudate", "microaneurysm", "cotton_wool_patch"}
    for code, finding in result["findings"].items():
        assert 0 <= finding["probability"] <= 1 and 0 < finding["threshold"] < 1
        assert set(finding["regions"]) <= set(range(1, 9)) and len(finding["region_activation"]) == 9
        assert PILImage.open(out / "eye0" / f"activation_{code}.png").size[0] > 100
    assert sum(result["diagnosis"].values()) == pytest.approx(1.0, abs=1e-4) and "PDR" in result["diagnosis"]
    assert "guided:haemorrhage" in result["models"] and "attention-mask" in result["models"]
    assert (out / "eye1" / "result.json").is_file()
    with open_project(tmp_path / "project") as project:
        (stored,) = latest_predictions(project.database, FINDINGS_PREDICTION).values()
    assert stored["findings"] == result["findings"]


def test_screen_needs_photos_or_a_project(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("OCTANT_PROJECT", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["screen", "--out", str(tmp_path / "out")]) == 1
    assert capsys.readouterr().err == "octant: Name the photos or folders to screen, or a project with --project.\n"


class CountingClassifier(torch.nn.Module):
    """Stands in for the classifier: counts the photos it grades, answers uniform logits."""

    graded = 0

    def forward(self, image):
        self.graded += len(image)
        return torch.zeros(len(image), 5)


@pytest.fixture
def classifier(monkeypatch) -> CountingClassifier:
    """`screen` grades with a counting classifier in place of the starter networks."""
    import models.findings.screening as screening
    from models.diagnosis.attention_mask import AttentionConfig
    from models.findings.screening import DiagnosisModel, ScreeningModels

    counting = CountingClassifier()
    models = ScreeningModels(torch.device("cpu"))
    models.diagnosis = DiagnosisModel(counting, AttentionConfig(input_size=16), "test", structure=None)
    monkeypatch.setattr(screening, "load_screening_models", lambda *args, **kwargs: models)
    return counting


@pytest.mark.parametrize("named_by", ["environment", "current folder"])
def test_screen_without_photos_screens_the_project_named_as_every_command_names_it(tmp_path, capsys, monkeypatch,
                                                                                    classifier, named_by):
    # A new-user trial: after the README's `export OCTANT_PROJECT=…`, `screen --out s/` answered
    # "Name the photos or folders to screen, or a project with --project".
    from annotate.services.importer import import_images
    from storage.predictions import FINDINGS_PREDICTION, latest_predictions
    from storage.project import create_project, open_project

    image, *_ = synthetic_fundus(320, 240)
    cv2.imwrite(str(tmp_path / "eye.png"), image)
    project_folder = tmp_path / "project"
    with create_project(project_folder) as project:
        import_images(project, [tmp_path / "eye.png"])
    if named_by == "environment":
        monkeypatch.setenv("OCTANT_PROJECT", str(project_folder))
    else:
        monkeypatch.delenv("OCTANT_PROJECT", raising=False)
        monkeypatch.chdir(project_folder)
    assert main(["screen", "--out", str(tmp_path / "out")]) == 0
    assert "stored 1 in the project" in capsys.readouterr().out and classifier.graded == 1
    with open_project(project_folder) as project:
        assert len(latest_predictions(project.database, FINDINGS_PREDICTION)) == 1


class RecordingClassifier(torch.nn.Module):
    """Stands in for the classifier: keeps what it was shown, answers uniform logits."""

    def forward(self, image):
        self.shown = image.clone()
        return torch.zeros(len(image), 5)


@pytest.mark.parametrize("soft", [True, False])
def test_screening_shows_the_classifier_the_mask_kind_it_was_trained_on(soft, monkeypatch):
    import models.diagnosis.attention_mask as attention
    from models.diagnosis.attention_mask import AttentionConfig, DiagnosisDataset
    from models.findings.screening import DiagnosisModel, ScreeningModels, screen_photo

    size = 16
    maps = np.zeros((size, size, 3), np.uint8)
    maps[:4, :4, 0] = 100          # disc probability 0.39: soft 0.2 + 0.7·0.39, binary background
    maps[8:, :, 2] = 200           # vessels 0.78
    monkeypatch.setattr(attention, "structure_maps", lambda *args, **kwargs: maps)
    config = AttentionConfig(input_size=size, soft_mask=soft)
    network = RecordingClassifier()
    models = ScreeningModels(torch.device("cpu"))
    models.diagnosis = DiagnosisModel(network, config, "test", structure=("disc/cup", "vessels"))
    bgr, *_ = synthetic_fundus(320, 240)
    result = screen_photo(bgr, models)
    assert result.diagnosis["PDR"] == pytest.approx(0.2)
    square = cv2.resize(result.crop_rgb, (size, size), interpolation=cv2.INTER_AREA)
    trained_on = DiagnosisDataset([square], [maps], [0], mask_weights=config.mask_weights, soft_mask=soft)[0]
    expected = trained_on[0] * trained_on[1]     # the photo times the mask, as in training
    torch.testing.assert_close(network.shown[0], expected)


def test_screen_gives_a_red_free_photo_no_grade_and_says_why(tmp_path, capsys, classifier, photo_folder):
    from annotate.services.importer import import_images
    from models.segmentation.stored_names import SCREENING_RED_FREE_NOTE
    from storage.images import list_images
    from storage.predictions import FINDINGS_PREDICTION, latest_predictions, save_prediction
    from storage.project import create_project, open_project

    image, *_ = synthetic_fundus(320, 240)
    cv2.imwrite(str(photo_folder / "a_colour.png"), image)
    cv2.imwrite(str(photo_folder / "b_grey.jpg"), image[..., 1])
    cv2.imwrite(str(photo_folder / "c_green.jpg"), image * np.array([0, 1, 0], np.uint8))   # a camera's green export
    with create_project(tmp_path / "project") as project:
        import_images(project, [photo_folder / "c_green.jpg"])
        (record,) = list_images(project.database)
        save_prediction(project.database, record.id, FINDINGS_PREDICTION,   # an earlier, colour-blind grade
                        {"findings": {}, "diagnosis": {"PDR": 0.9}}, "older")
    out = tmp_path / "out"
    code = main(["screen", str(photo_folder), "--out", str(out), "--project", str(tmp_path / "project")])
    printed = capsys.readouterr().out
    assert code == 0 and classifier.graded == 1                        # the colour photo alone
    assert f"b_grey: {SCREENING_RED_FREE_NOTE}" in printed and f"c_green: {SCREENING_RED_FREE_NOTE}" in printed
    assert "Screened 1 of 3 photos" in printed and "(2 red-free, not screened)" in printed
    assert "PDR" in json.loads((out / "a_colour" / "result.json").read_text())["diagnosis"]
    for name in ("b_grey", "c_green"):
        result = json.loads((out / name / "result.json").read_text())
        assert result["red_free"] and result["note"] == SCREENING_RED_FREE_NOTE
        assert result["findings"] == {} and result["diagnosis"] == {}
    with open_project(tmp_path / "project") as project:
        (stored,) = latest_predictions(project.database, FINDINGS_PREDICTION).values()
    assert stored["red_free"] and stored["diagnosis"] == {}   # the earlier grade is no longer in force


def test_screen_gives_a_picture_with_no_retina_no_grade_and_says_why(tmp_path, capsys, classifier, photo_folder):
    # A new-user trial: a flat-coloured 81-megapixel picture was screened "no DR 0.41, moderate NPDR
    # 0.27", where presegment said "No fundus found".
    image, *_ = synthetic_fundus(320, 240)
    cv2.imwrite(str(photo_folder / "a_eye.png"), image)
    cv2.imwrite(str(photo_folder / "b_flat.jpg"), np.full((240, 320, 3), (20, 40, 120), np.uint8))
    sky = np.random.default_rng(0).normal((200, 120, 60), 25, (240, 320, 3))   # BGR: blue above red
    cv2.imwrite(str(photo_folder / "c_sky.png"), np.clip(sky, 0, 255).astype(np.uint8))
    out = tmp_path / "out"
    assert main(["screen", str(photo_folder), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert classifier.graded == 1                                      # the retina alone
    assert "b_flat: No fundus found: the picture is one flat colour; not screened" in printed
    assert "c_sky: No fundus found: its colours are not those of a retina" in printed
    assert "Screened 1 of 3 photos" in printed and "(2 with no fundus, not screened)" in printed
    for name in ("b_flat", "c_sky"):
        result = json.loads((out / name / "result.json").read_text())
        assert result["no_fundus"] and result["note"].startswith("No fundus found")
        assert result["findings"] == {} and result["diagnosis"] == {} and result["disc"] is None
    assert json.loads((out / "a_eye" / "result.json").read_text())["no_fundus"] is False


def test_screening_a_project_skips_a_photo_replaced_since_import_and_screens_the_rest(tmp_path, capsys, classifier,
                                                                                     photo_folder):
    # Project photos are read where they were imported from: a camera numbering its files again
    # put another patient's photo under a known name, and it was screened as the imported image.
    from annotate.services.importer import import_images
    from storage.predictions import FINDINGS_PREDICTION, latest_predictions
    from storage.project import create_project, open_project

    image, *_ = synthetic_fundus(320, 240)
    cv2.imwrite(str(photo_folder / "kept.png"), image)
    cv2.imwrite(str(photo_folder / "replaced.png"), cv2.flip(image, 1))
    with create_project(tmp_path / "project") as project:
        import_images(project, [photo_folder])
    cv2.imwrite(str(photo_folder / "replaced.png"), cv2.flip(image, 0))   # another photo under the same name
    code = main(["screen", "--out", str(tmp_path / "out"), "--project", str(tmp_path / "project")])
    captured = capsys.readouterr()
    assert code == 1 and classifier.graded == 1
    assert captured.err.count("\n") == 1 and "replaced.png has changed since it was imported" in captured.err
    assert "Screened 1 of 2 photos" in captured.out and "stored 1 in the project" in captured.out
    assert not (tmp_path / "out" / "replaced").exists()
    with open_project(tmp_path / "project") as project:
        assert len(latest_predictions(project.database, FINDINGS_PREDICTION)) == 1


def test_a_finding_network_file_of_another_finding_is_named_and_not_used(tmp_path, monkeypatch):
    # The haemorrhage starter replaced by the hard exudate one would have screened haemorrhage with the
    # exudate network and said nothing.
    import models.engine.weights as weights
    from models.findings.screening import load_screening_models

    starters = {"haemorrhage": weights.WEIGHTS_DIR / "guided_hard_exudate.safetensors",
                "hard_exudate": weights.WEIGHTS_DIR / "guided_hard_exudate.safetensors"}
    monkeypatch.setattr(weights, "starter_for", lambda network, finding=None: starters.get(finding))
    models = load_screening_models(["haemorrhage", "hard_exudate"], device="cpu")
    assert set(models.guided) == {"hard_exudate"}
    assert f"guided haemorrhage: The weights file {starters['haemorrhage']} holds the guided:hard_exudate network, " \
           "not the guided:haemorrhage one; put the right file back or retrain it; the finding is not screened." \
        in models.messages
