"""The pre-segmentation pipeline on a synthetic fundus: fallbacks and messages without weights,
masks at the original size with (tiny, untrained) weights, resumable batch output, predictions
stored in a project."""
import json

import cv2
import numpy as np
import pytest

from models.engine.weights import save_weights
from models.segmentation.lesions import LesionNetConfig, build_lesion_net
from models.segmentation.pipeline import MASK_NAMES, load_pipeline_models, run_pipeline
from models.segmentation.presegment import RESULT_FILE, presegment_project, presegment_to_folder
from tests.models.fundus_synthetic import synthetic_fundus
from tests.models.segmentation.tiny_pipeline import TINY


@pytest.fixture(scope="module")
def fundus():
    return synthetic_fundus(320, 240)


def test_missing_weights_give_classical_landmarks_and_a_message_per_network(tmp_path, fundus):
    image, disc, fovea, (cx, cy, r) = fundus
    models, messages = load_pipeline_models(tmp_path, "cpu")
    assert len(messages) == 4 and all("train-seg --task" in m for m in messages)
    assert any(m.startswith("landmarks:") and "classical" in m for m in messages)
    result = run_pipeline(image, models)
    assert result.landmark_method == "classical" and result.model_versions == {"landmarks": "classical"}
    assert np.hypot(*np.subtract(result.disc, disc)) < 0.25 * (2 * r / 8)
    assert result.mask("vessels") is None and result.region_map().shape == image.shape[:2]


def test_damaged_weights_are_named_and_skipped(tmp_path, tiny_weights):
    for name in TINY:
        (tmp_path / f"{name}.safetensors").write_bytes((tiny_weights / f"{name}.safetensors").read_bytes())
    (tmp_path / "vessels.safetensors").write_bytes(b"not a safetensors file")
    models, messages = load_pipeline_models(tmp_path, "cpu")
    assert len(messages) == 1 and messages[0].startswith("vessels:") and "damaged" in messages[0]
    assert set(models.loaded) == {"landmarks", "disc_cup", "lesions"}


def test_weights_of_another_task_that_fit_are_named_and_skipped(tmp_path, tiny_weights):
    # Trying the product: landmarks.safetensors copied over disc_cup.safetensors loaded without a word
    # (the two networks have one shape) and "segmented" the disc and cup with the landmark heatmaps.
    for name in TINY:
        (tmp_path / f"{name}.safetensors").write_bytes((tiny_weights / f"{name}.safetensors").read_bytes())
    config, build = TINY["disc_cup"]
    save_weights(build(config), tmp_path / "disc_cup.safetensors",
                 {"task": "landmarks", "config": config.to_dict(), "version": "landmarks-test"})
    models, messages = load_pipeline_models(tmp_path, "cpu")
    assert messages == [f"disc_cup: The weights file {tmp_path / 'disc_cup.safetensors'} holds the landmarks "
                        "network, not the disc_cup one; put the right file back or retrain it; the optic disc "
                        "and cup are not segmented (train them with `python main.py train-seg --task disc_cup`)."]
    assert set(models.loaded) == {"landmarks", "vessels", "lesions"}


def test_pipeline_reports_in_original_pixels_from_a_half_size_decode(tiny_weights, fundus):
    image, *_ = fundus
    models, messages = load_pipeline_models(tiny_weights, "cpu")
    assert messages == []
    from models.segmentation.pipeline import PipelineOptions
    half = cv2.resize(image, (160, 120), interpolation=cv2.INTER_AREA)
    result = run_pipeline(half, models, PipelineOptions(input_scale=0.5, original_shape=(240, 320)))
    for name in MASK_NAMES:
        mask = result.mask(name)
        assert mask.shape == (240, 320) and set(np.unique(mask)) <= {0, 255}
    assert abs(result.fov.r - fundus[3][2]) < 6
    assert set(result.lesion_regions) == {"microaneurysms", "haemorrhages", "hard_exudates", "soft_exudates"}
    assert result.model_versions["vessels"] == "vessels-test"
    json.dumps(result.to_json())


def test_a_detail_network_replaces_or_blends_into_the_lesion_networks_channels_it_has(tmp_path, tiny_weights, fundus):
    image, *_ = fundus
    for name in TINY:
        (tmp_path / f"{name}.safetensors").write_bytes((tiny_weights / f"{name}.safetensors").read_bytes())
    without, _ = load_pipeline_models(tmp_path, "cpu")
    config = LesionNetConfig(architecture="unet", channels=("MA", "EX"), decoder_channels=16, thresholds=(0.3, 0.4),
                             fov_diameter_px=160, preprocess="local_contrast")
    detail_net = build_lesion_net(config)
    save_weights(detail_net, tmp_path / "lesion_detail.safetensors",
                 {"name": "lesion_detail", "config": config.to_dict(), "version": "detail-test"})
    models, messages = load_pipeline_models(tmp_path, "cpu")
    assert messages == [] and models.versions()["lesion_detail"] == "detail-test"
    plain, detailed = run_pipeline(image, without), run_pipeline(image, models)
    assert detailed.thresholds["microaneurysms"] == 0.3 and detailed.thresholds["hard_exudates"] == 0.4
    for name in ("microaneurysms", "hard_exudates"):
        assert not np.allclose(plain.probability(name), detailed.probability(name))
    for name in ("haemorrhages", "soft_exudates"):
        assert np.allclose(plain.probability(name), detailed.probability(name))
    # Blended half and half, its maps are the mean of the lesion network's and its own.
    save_weights(detail_net, tmp_path / "lesion_detail.safetensors",
                 {"name": "lesion_detail", "config": {**config.to_dict(), "blend": 0.5}, "version": "detail-test"})
    halved = run_pipeline(image, load_pipeline_models(tmp_path, "cpu")[0])
    for name in ("microaneurysms", "hard_exudates"):
        mean = (plain.probability(name) + detailed.probability(name)) / 2
        assert np.allclose(halved.probability(name), mean, atol=1e-3)
    assert np.allclose(halved.probability("haemorrhages"), plain.probability("haemorrhages"))
    # A weights folder from before the detail network learnt EX names it after microaneurysms.
    (tmp_path / "lesion_detail.safetensors").rename(tmp_path / "microaneurysms.safetensors")
    assert load_pipeline_models(tmp_path, "cpu")[0].versions()["lesion_detail"] == "detail-test"


def test_a_batch_of_photos_gives_each_photo_its_own_result(tiny_weights, fundus):
    """Photos of different sizes in one batch: every network runs once per stage, and each photo
    gets what it gets alone (bf16 rounding aside)."""
    from models.segmentation.pipeline import PipelineOptions, run_pipeline_batch
    image, *_ = fundus
    models, _ = load_pipeline_models(tiny_weights, "cpu")
    photos = [image, cv2.flip(image, 1), cv2.resize(image, (400, 300))]
    batch = run_pipeline_batch(photos, models, [PipelineOptions() for _ in photos])
    for photo, together in zip(photos, batch):
        alone = run_pipeline(photo, models)
        assert together.shape == alone.shape and together.landmark_method == alone.landmark_method
        assert np.allclose(together.disc, alone.disc, atol=0.5) and np.allclose(together.fovea, alone.fovea, atol=0.5)
        for name in MASK_NAMES:
            assert np.abs(together.probability(name) - alone.probability(name)).max() < 0.02, name
        assert together.lesion_regions == alone.lesion_regions
    assert abs(batch[0].disc[0] - batch[1].disc[0]) > 10   # each photo's own disc, not a neighbour's


def test_batch_writes_one_folder_per_image_skips_bad_files_and_resumes(tmp_path, tiny_weights, fundus):
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "eye_a.png"), fundus[0])
    (photos / "eye_b.jpg").write_bytes(b"\xff\xd8\xff garbage")
    models, _ = load_pipeline_models(tiny_weights, "cpu")
    out = tmp_path / "out"
    summary = presegment_to_folder(sorted(photos.iterdir()), out, models, probabilities=True)
    assert summary.done == 1 and len(summary.failed) == 1 and "eye_b.jpg" in summary.failed[0][0]
    written = {p.name for p in (out / "eye_a").iterdir()}
    assert {f"{n}.png" for n in MASK_NAMES} | {"regions.png", RESULT_FILE, "vessels_probability.png"} <= written
    result = json.loads((out / "eye_a" / RESULT_FILE).read_text())
    assert result["width"] == 320 and len(result["disc"]) == 2 and "timings_s" in result
    assert cv2.imread(str(out / "eye_a" / "regions.png"), cv2.IMREAD_UNCHANGED).max() <= 8
    again = presegment_to_folder([photos / "eye_a.png"], out, models)
    assert again.skipped == 1 and again.done == 0


def test_pipeline_writes_predictions_for_a_small_project(tmp_project, tiny_weights, fundus):
    from annotate.services.photos import sha256_of_file
    from storage.images import add_image
    from storage.predictions import latest_prediction

    path = tmp_project.root / "eye.png"
    cv2.imwrite(str(path), fundus[0])
    image_id = add_image(tmp_project.database, path, sha256_of_file(path), 320, 240)
    models, _ = load_pipeline_models(tiny_weights, "cpu")
    summary = presegment_project(tmp_project, None, models)
    assert summary.done == 1
    stored = latest_prediction(tmp_project.database, image_id, "presegmentation")
    assert stored["model_versions"]["lesions"] == "lesions-test"
    assert {"haemorrhage", "microaneurysm", "hard_exudate", "cotton_wool_patch"} <= set(stored["finding_regions"])
    assert (tmp_project.root / stored["mask_folder"] / "disc.png").is_file()
    assert presegment_project(tmp_project, None, models).skipped == 1


def test_a_project_photo_replaced_since_import_is_skipped_with_a_sentence_and_the_rest_go_on(
        tmp_project, tiny_weights, fundus):
    # Photos are read where they were imported from: a camera numbering its files again put another
    # photo under a known name, and the models read it as the imported image.
    from annotate.services.photos import sha256_of_file
    from storage.images import add_image
    from storage.predictions import latest_model_landmarks, latest_prediction

    ids = []
    for name in ("kept", "replaced"):
        path = tmp_project.root / f"{name}.png"
        cv2.imwrite(str(path), fundus[0] if name == "kept" else cv2.flip(fundus[0], 1))
        ids.append(add_image(tmp_project.database, path, sha256_of_file(path), 320, 240))
    replaced = tmp_project.root / "replaced.png"
    cv2.imwrite(str(replaced), cv2.flip(fundus[0], 0))   # another photograph, same name and size
    models, _ = load_pipeline_models(tiny_weights, "cpu")
    summary = presegment_project(tmp_project, None, models, batch_size=2)
    assert summary.done == 1
    [(path, sentence)] = summary.failed
    assert path == str(replaced) and sentence.startswith(f"{replaced} has changed since it was imported")
    assert latest_prediction(tmp_project.database, ids[0], "presegmentation") is not None
    assert latest_prediction(tmp_project.database, ids[1], "presegmentation") is None
    assert latest_model_landmarks(tmp_project.database, ids[1]) is None


def test_batched_presegmentation_writes_what_one_at_a_time_writes_and_isolates_a_bad_file(tmp_path, tiny_weights,
                                                                                        fundus):
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "eye_a.png"), fundus[0])
    (photos / "eye_b.jpg").write_bytes(b"\xff\xd8\xff garbage")
    cv2.imwrite(str(photos / "eye_c.png"), cv2.flip(fundus[0], 1))
    models, _ = load_pipeline_models(tiny_weights, "cpu")
    seen = []
    batched = presegment_to_folder(sorted(photos.iterdir()), tmp_path / "batched", models, batch_size=3,
                                   progress=lambda event: seen.append((event.done, event.path.name, event.status)))
    assert batched.done == 2 and [name for name, _ in batched.failed] == [str(photos / "eye_b.jpg")]
    assert [done for done, *_ in seen] == [1, 2, 3] and ("eye_b.jpg", "failed") in [s[1:] for s in seen]
    presegment_to_folder(sorted(photos.iterdir()), tmp_path / "single", models, batch_size=1)
    for stem in ("eye_a", "eye_c"):
        together = json.loads((tmp_path / "batched" / stem / RESULT_FILE).read_text())
        alone = json.loads((tmp_path / "single" / stem / RESULT_FILE).read_text())
        assert np.allclose(together["disc"], alone["disc"], atol=0.5)
        assert together["lesion_regions"] == alone["lesion_regions"]


def test_presegmenting_a_readers_queue_stops_when_cancelled(tmp_project, tiny_weights, fundus):
    import threading

    from annotate.services.photos import sha256_of_file
    from storage.errors import CancelledError
    from storage.images import add_image
    from storage.predictions import latest_prediction

    ids = []
    for name, flip in (("first", None), ("second", 0), ("third", 1)):
        path = tmp_project.root / f"{name}.png"
        cv2.imwrite(str(path), fundus[0] if flip is None else cv2.flip(fundus[0], flip))
        ids.append(add_image(tmp_project.database, path, sha256_of_file(path), 320, 240))
    models, _ = load_pipeline_models(tiny_weights, "cpu")
    cancel = threading.Event()
    # Cancelled while the second photo runs: the photos already computed are kept, no more start.
    with pytest.raises(CancelledError, match="stopped after 2 photos"):
        presegment_project(tmp_project, None, models, image_ids=[ids[2], ids[0], ids[1]], cancel=cancel,
                           progress=lambda event: cancel.set())
    done = [latest_prediction(tmp_project.database, i, "presegmentation") is not None for i in ids]
    assert done == [True, False, True]   # in the queue's order: the third image first, the second never
