import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from models.findings.data import (
    FindingDataset,
    FindingSample,
    cached_photo,
    lesion_cue,
    random_affine,
    regional_cue,
    split_derivation_validation,
)
from storage.errors import OctantError


def synthetic_fundus(path: Path, width=96, height=64, mark: int = 0) -> Path:
    """A fundus cut at top and bottom; a ``.dcm`` name writes it as ophthalmic-photography DICOM.
    ``mark`` sets one corner pixel, so that photos of one project differ (and so their SHA-256)."""
    image = np.zeros((height, width, 3), np.uint8)
    cv2.circle(image, (width // 2, height // 2), 36, (40, 90, 180), -1)  # FOV cut at top and bottom
    image[0, 0] = mark % 256, mark // 256, 0
    if path.suffix == ".dcm":
        from tests.annotate.dicom_files import write_dicom

        return write_dicom(path, image[:, :, ::-1])
    cv2.imwrite(str(path), image)
    return path


def sample(key, present, regions=(), group="", confident=True, path=Path("x.png")):
    return FindingSample(key=key, image_path=path, present=present, regions=frozenset(regions),
                         disc=(30.0, 32.0), fovea=(66.0, 32.0), source="reference:test", group=group,
                         confident=confident, extra={"decoded_shape": (64, 96)})


def test_cached_photo_crops_the_black_border_and_reuses_the_cache(tmp_path):
    path = synthetic_fundus(tmp_path / "eye.png")
    photo, box = cached_photo(path, "eye", 32, cache_root=tmp_path / "cache")
    assert photo.shape == (32, 32, 3) and photo.dtype == np.uint8
    x0, y0, x1, y1 = box
    assert abs(x0 - 12) <= 2 and abs(x1 - 84) <= 2 and (y0, y1) == (0, 64)
    path.unlink()  # the second call must come from the cache
    again, box_again = cached_photo(path, "eye", 32, cache_root=tmp_path / "cache")
    assert np.array_equal(photo, again) and box_again == box
    assert photo[16, 16, 2] == 40 and photo[16, 16, 0] == 180  # RGB order


def test_regional_cue_covers_the_macula_region_around_the_fovea():
    cue = regional_cue(sample("a", True, {1}), (64, 96), (0, 0, 96, 64), map_size=8)
    assert cue.shape == (8, 8) and cue.dtype == np.float32
    fovea_cell = (int(32 / 64 * 8), int(66 / 96 * 8))
    assert cue[fovea_cell] == 1.0 and cue[:, 0].sum() == 0.0  # the disc side holds no macula


def test_negatives_get_an_all_zero_cue():
    assert not regional_cue(sample("n", False), (64, 96), (0, 0, 96, 64), map_size=4).any()


def test_dataset_items_are_image_label_and_cue(tmp_path):
    path = synthetic_fundus(tmp_path / "eye.png")
    items = [sample("p", True, {1, 4}, path=path), sample("n", False, path=path)]
    dataset = FindingDataset(items, input_size=32, map_size=2, cache_root=tmp_path / "cache")
    image, present, cue, complete = dataset[0]
    assert image.shape == (3, 32, 32) and 0 <= image.min() and image.max() <= 1
    assert present.item() == 1.0 and cue.shape == (2, 2) and cue.sum() > 0 and complete.item() == 1.0
    assert dataset.label_snapshot()["p"] == {"present": True, "regions": [1, 4], "source": "reference:test",
                                             "cue_complete": True, "cue": "regions"}


def with_extra(item: FindingSample, **extra) -> FindingSample:
    return dataclasses.replace(item, extra={**item.extra, **extra})


def test_lesion_cue_marks_the_cells_of_a_mask_and_their_neighbours(tmp_path):
    mask = np.zeros((128, 192), np.uint8)       # twice the decoded size, as IDRiD masks are to 1/4 photos
    mask[70:74, 100:104] = 255                   # one lesion: decoded (50–52, 35–37), crop (40–42, 35–37)
    cv2.imwrite(str(tmp_path / "lesion.png"), mask)
    item = with_extra(sample("p", True, {1}), lesion_mask=(tmp_path / "lesion.png", 2))
    cue = lesion_cue(item, (10, 0, 90, 64), map_size=8)   # cells of 10 × 8 decoded pixels
    expected = np.zeros((8, 8), np.float32)
    expected[3:6, 3:6] = 1                       # cell (row 4, column 4) and one cell around it
    assert np.array_equal(cue, expected)


def test_lesion_cue_from_boxes_and_none_without_lesion_detail():
    item = with_extra(sample("p", True, {1}), lesion_boxes=((10.0, 0.0, 20.0, 8.0),))
    cue = lesion_cue(item, (0, 0, 80, 64), map_size=8)   # the box is cell (0, 1)
    assert cue.sum() == 6 and cue[0, 0] == cue[0, 2] == cue[1, 1] == 1 and cue[2, 1] == 0
    assert lesion_cue(sample("q", True, {1}), (0, 0, 80, 64), map_size=8) is None


def test_dataset_with_lesion_cues_falls_back_to_regions_and_refuses_unknown_sources(tmp_path):
    path = synthetic_fundus(tmp_path / "eye.png")
    boxed = with_extra(sample("b", True, {1, 4}, path=path), lesion_boxes=((40.0, 24.0, 48.0, 32.0),))
    plain = sample("r", True, {1, 4}, path=path)
    lesions = FindingDataset([boxed, plain], 32, 8, cache_root=tmp_path / "cache", cue_source="lesions")
    regions = FindingDataset([boxed, plain], 32, 8, cache_root=tmp_path / "cache")
    assert 0 < lesions.cues[0].sum() < regions.cues[0].sum()   # the box's cells, not its regions'
    assert set(np.unique(lesions.cues[0])) == {0.0, 1.0}
    assert np.array_equal(lesions.cues[1], regions.cues[1])     # no lesion detail: its regions
    assert lesions.label_snapshot()["b"]["cue"] == "lesions"
    with pytest.raises(OctantError, match="cue source"):
        FindingDataset([plain], 32, 4, cache_root=tmp_path / "cache", cue_source="pixels")


def test_split_keeps_twins_together_and_validates_on_confident_photos_only():
    items = [sample(f"p{i}", True, {1}, group=f"g{i}") for i in range(10)]
    items += [sample(f"n{i}", False, group=f"h{i}") for i in range(10)]
    items += [sample("twin", True, {1}, group="g0", confident=False)]
    items += [sample(f"u{i}", False, confident=False) for i in range(5)]
    derivation, validation = split_derivation_validation(items, 0.2, seed=4)
    assert len(derivation) + len(validation) == len(items)
    assert all(s.confident for s in validation)
    assert sum(s.present for s in validation) == 2 and sum(not s.present for s in validation) == 3
    sides = {s.key: s in validation for s in items}
    assert sides["twin"] == sides["p0"]


def test_a_class_without_confident_photos_is_still_validated():
    items = [sample(f"p{i}", True, {1}, confident=False) for i in range(10)]
    items += [sample(f"n{i}", False) for i in range(10)]
    _, validation = split_derivation_validation(items, 0.2, seed=0)
    assert sum(s.present for s in validation) == 2 and sum(not s.present for s in validation) == 2


def test_affine_without_ranges_is_the_identity_and_a_flip_moves_the_cue_with_the_photo():
    images = torch.rand(3, 3, 8, 8)
    cues = torch.zeros(3, 4, 4)
    cues[:, 0, 0] = 1
    same, same_cues = random_affine(images, cues)
    assert torch.allclose(same, images, atol=1e-5) and torch.equal(same_cues, cues)
    images[:, :, :2, :2] = 1.0
    torch.manual_seed(0)
    flipped, flipped_cues = random_affine(images, cues, flip=True)
    mirrored_any = set()
    for i in range(3):
        mirrored = bool(flipped_cues[i, 0, 3] == 1)
        mirrored_any.add(mirrored)
        assert mirrored != bool(flipped_cues[i, 0, 0] == 1)
        assert bool(torch.allclose(flipped[i, :, :2, 6:], torch.ones(3, 2, 2))) == mirrored
    assert mirrored_any == {True, False}  # seed 0 flips some and keeps others


def reading_project(tmp_path, marks_per_image, suffix=".png"):
    """A project with three ophthalmologists; ``marks_per_image[i]`` readers mark haemorrhage in 1, 4.

    The photos are written in the format ``suffix`` names (".dcm": DICOM)."""
    from annotate.services.photos import sha256_of_file
    from storage.assignment import assign_readers
    from storage.images import NewImage, add_images
    from storage.project import create_project
    from storage.reading import ReaderSession
    from tests.conftest import add_reader_as_admin

    project = create_project(tmp_path / "project", name="test")
    db = project.database
    readers = [add_reader_as_admin(db, f"reader {i}").id for i in range(3)]
    new = []
    for i in range(len(marks_per_image)):
        path = synthetic_fundus(tmp_path / "project" / f"eye{i}{suffix}", mark=i)
        new.append(NewImage(path=path, sha256=sha256_of_file(path), width=96,
                            height=64, split="train"))
    image_ids = add_images(db, new)
    assign_readers(db, seed=0)
    for image_id, marks in zip(image_ids, marks_per_image):
        for slot, reader in enumerate(readers):
            session = ReaderSession(db, reader)
            session.set_landmarks(image_id, disc=(30.0, 32.0), fovea=(66.0, 32.0))
            if slot < marks:
                session.set_regions(image_id, "haemorrhage", {1, 4} if slot == 0 else {1})
            else:
                session.mark_normal(image_id)
            session.mark_done(image_id)
    return project, image_ids


def test_consensus_samples_keep_present_and_absent_and_leave_uncertain_out(tmp_path):
    from models.findings.data import consensus_samples

    project, ids = reading_project(tmp_path, [3, 2, 1, 0])
    samples = {s.extra["image_id"]: s for s in consensus_samples(project.database, "haemorrhage", "train", k=2)}
    assert set(samples) == {ids[0], ids[1], ids[3]}  # one mark of three is uncertain
    assert samples[ids[0]].present and samples[ids[0]].regions == frozenset({1, 4})  # union of readers
    assert not samples[ids[3]].present and samples[ids[3]].regions == frozenset()
    assert samples[ids[0]].disc == (30.0, 32.0) and samples[ids[0]].source == "consensus"
    project.close()


def test_a_project_photo_replaced_since_import_is_left_out_of_training_with_a_sentence(tmp_path):
    # Photos are read where they were imported from: another patient's photo under a known name
    # must not be learnt with this one's labels.
    from models.findings.data import consensus_diagnosis_photos, consensus_samples, photos_as_imported
    from storage.images import get_image

    project, ids = reading_project(tmp_path, [3, 3, 0, 0])
    replaced = get_image(project.database, ids[1]).path
    synthetic_fundus(replaced, mark=99)                       # another photograph, same name and size
    public = sample("public", True, (1,))                     # no SHA-256: a public photo, not checked
    kept, skipped = photos_as_imported([*consensus_samples(project.database, "haemorrhage", "train", k=2), public])
    assert [s.extra.get("image_id") for s in kept] == [ids[0], ids[2], ids[3], None]
    assert skipped == [f"{replaced} has changed since it was imported (another photograph under its name, or damage); "
                       "put the original back, or move this file away and import the original again. "
                       "It was left out of training."]
    photos, skipped = photos_as_imported(consensus_diagnosis_photos(project.database, ["no DR"], "train"))
    assert photos == [] and skipped == []                     # nobody gave a diagnosis: nothing read
    project.close()


def test_adjudicated_answers_replace_consensus_only_when_the_project_says_so(tmp_path):
    from models.findings.data import consensus_diagnosis_photos, consensus_samples
    from storage.adjudication import record_adjudication
    from storage.project import update_settings
    from storage.readers import Role
    from tests.conftest import add_reader_as_admin

    project, ids = reading_project(tmp_path, [3, 2, 1, 0])
    db = project.database
    reviewer = add_reader_as_admin(db, "Reviewer", Role.REVIEWER, "246810").id
    record_adjudication(db, reviewer, ids[2], "haemorrhage", True, {2}, diagnosis="PDR", reason="Seen on review.")
    record_adjudication(db, reviewer, ids[0], "haemorrhage", False, reason="A reflex, not a haemorrhage.")

    def labels():
        return {s.extra["image_id"]: (s.present, s.regions, s.source)
                for s in consensus_samples(db, "haemorrhage", "train", k=2)}

    assert labels()[ids[0]] == (True, frozenset({1, 4}), "consensus") and ids[2] not in labels()
    assert consensus_diagnosis_photos(db, ["no DR", "PDR"], "train") == []
    update_settings(db, label_source="adjudicated")
    assert labels()[ids[0]] == (False, frozenset(), "adjudicated")
    assert labels()[ids[2]] == (True, frozenset({2}), "adjudicated")      # uncertain by consensus
    assert labels()[ids[1]][2] == "consensus"
    assert [(p.label, p.source) for p in consensus_diagnosis_photos(db, ["no DR", "PDR"], "train")] == [(1, "adjudicated")]
    project.close()


def test_train_command_registers_the_model_with_metrics_config_and_label_snapshot(tmp_path):
    from main import main
    from storage.predictions import list_models
    from storage.project import open_project
    from storage.readers import find_reader

    project, _ = reading_project(tmp_path, [3, 3, 3, 0, 0, 0])
    project.close()
    code = main(["train", "--network", "guided", "--finding", "haemorrhage", "--project", str(tmp_path / "project"),
                 "--input-size", "32", "--epochs", "1", "--batch-size", "4", "--device", "cpu"])
    assert code == 0
    with open_project(tmp_path / "project") as project:
        (model,) = list_models(project.database, reader_id=find_reader(project.database, "Admin").id)   # snapshot: admins
    assert model.network == "guided:haemorrhage" and "val_auroc" in model.metrics
    assert any((tmp_path / "project" / "cache" / "photo-cache").rglob("*.png"))   # patients' photos stay in the project
    assert model.config["task"]["finding"] == "haemorrhage"
    # A clinic's run fine-tunes the shipped starter unless told otherwise.
    assert model.config["engine"]["init_weights"].endswith("weights/guided_haemorrhage.safetensors")
    assert len(model.label_snapshot["derivation"]) + len(model.label_snapshot["validation"]) == 6
    assert Path(model.path).is_file()
    card = Path(model.path).with_suffix(".md").read_text()   # the same card writer as train-seg's
    assert card.startswith(f"# {Path(model.path).stem}: guided") and "| val_auroc |" in card
    assert "`python main.py train --network guided --finding haemorrhage --project" in card
    assert "consensus labels of the project" in card


def test_train_command_names_a_photo_replaced_since_import_and_trains_on_the_rest(tmp_path, capsys):
    from main import main
    from storage.images import get_image

    project, ids = reading_project(tmp_path, [3, 3, 3, 0, 0, 0])
    replaced = get_image(project.database, ids[4]).path
    project.close()
    synthetic_fundus(replaced, mark=99)                       # another photograph under its name
    code = main(["train", "--network", "guided", "--finding", "haemorrhage", "--project", str(tmp_path / "project"),
                 "--input-size", "32", "--epochs", "1", "--batch-size", "4", "--device", "cpu",
                 "--start-from", "scratch"])
    captured = capsys.readouterr()
    assert code == 0 and "Registered as model" in captured.out
    [line] = [line for line in captured.err.splitlines() if "has changed since it was imported" in line]
    assert line.startswith(f"octant: {replaced} has changed") and line.endswith("It was left out of training.")


def test_dicom_photos_are_trained_on_like_jpegs(tmp_path):
    """One photo reader for the whole app: training decodes DICOM as import and the viewer do."""
    pytest.importorskip("pydicom")
    from main import main
    from storage.predictions import list_models
    from storage.project import open_project
    from storage.readers import find_reader

    project, _ = reading_project(tmp_path, [3, 3, 3, 0, 0, 0], suffix=".dcm")
    project.close()
    code = main(["train", "--network", "guided", "--finding", "haemorrhage", "--project", str(tmp_path / "project"),
                 "--input-size", "32", "--epochs", "1", "--batch-size", "4", "--device", "cpu"])
    assert code == 0
    with open_project(tmp_path / "project") as project:
        (model,) = list_models(project.database, reader_id=find_reader(project.database, "Admin").id)   # snapshot: admins
    assert len(model.label_snapshot["derivation"]) + len(model.label_snapshot["validation"]) == 6
    cached = sorted((tmp_path / "project" / "cache" / "photo-cache").rglob("*.png"))
    assert len(cached) == 6 and cv2.imread(str(cached[0])).max() > 100   # the photo, not a blank


def test_a_network_the_starter_does_not_fit_is_refused_unless_it_starts_from_scratch(tmp_path, capsys):
    from main import main

    project, _ = reading_project(tmp_path, [3, 3, 3, 0, 0, 0])
    project.close()
    args = ["train", "--network", "guided", "--finding", "haemorrhage", "--project", str(tmp_path / "project"),
            "--input-size", "32", "--width", "4", "--epochs", "1", "--batch-size", "4", "--device", "cpu"]
    assert main(args) == 1
    assert "train from scratch" in capsys.readouterr().err
    assert main(args + ["--start-from", "scratch", "--no-resume"]) == 0


def test_consensus_diagnosis_needs_a_majority_of_readers(tmp_path):
    from models.findings.data import consensus_diagnosis_photos
    from storage.readers import list_readers
    from storage.reading import ReaderSession

    project, ids = reading_project(tmp_path, [0, 0])
    readers = [r.id for r in list_readers(project.database) if r.role.value == "ophthalmologist"]
    for image_id, answers in zip(ids, (["PDR", "PDR", "no DR"], ["PDR", "no DR", None])):
        for reader, answer in zip(readers, answers):
            ReaderSession(project.database, reader).set_diagnosis(image_id, answer)
    classes = ["no DR", "mild NPDR", "moderate NPDR", "severe NPDR", "PDR"]
    photos = consensus_diagnosis_photos(project.database, classes, "train")
    assert [(p.label, p.source) for p in photos] == [(4, "consensus")]  # the second image has no majority
    project.close()


def test_k_folds_validate_every_confident_group_once_and_keep_twins_and_strata():
    items = [sample(f"p{i}", True, {1}, group=f"g{i}") for i in range(11)]
    items += [sample(f"n{i}", False, group=f"h{i}") for i in range(15)]
    items += [sample("twin", True, {1}, group="g0", confident=False)]   # makes p0's group ineligible
    items += [sample(f"u{i}", False, confident=False) for i in range(5)]
    folds = [split_derivation_validation(items, 0.2, seed=3, fold=(i, 5)) for i in range(1, 6)]
    validated = sorted(s.key for _, validation in folds for s in validation)
    eligible = sorted(s.key for s in items if s.confident and s.key != "p0")
    assert validated == eligible                                   # each eligible photo exactly once
    for derivation, validation in folds:
        assert len(derivation) + len(validation) == len(items)
        assert sum(s.present for s in validation) == 2 and sum(not s.present for s in validation) == 3
    assert split_derivation_validation(items, 0.2, seed=3, fold=(2, 5)) == folds[1]   # deterministic


def test_a_fold_outside_one_to_k_is_one_sentence():
    items = [sample(f"p{i}", True, {1}) for i in range(4)] + [sample(f"n{i}", False) for i in range(4)]
    with pytest.raises(OctantError, match="Fold 6/5 does not exist"):
        split_derivation_validation(items, 0.2, fold=(6, 5))
