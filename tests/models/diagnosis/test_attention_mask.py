import numpy as np
import pytest
import torch

from models.diagnosis.attention_mask import (
    MASK_WEIGHTS,
    AttentionClassifier,
    AttentionConfig,
    AttentionTask,
    DiagnosisDataset,
    attention_mask,
    attention_train_config,
    diagnosis_report,
)
from models.engine.training import train

TINY = "tinynet_e"  # the smallest EfficientNet-family network in timm keeps tests fast


def test_attention_mask_matches_a_hand_built_example():
    disc = np.array([[1.0, 1.0, 0.0, 0.0]])
    cup = np.array([[0.0, 1.0, 0.0, 0.0]])
    vessels = np.array([[0.0, 0.0, 1.0, 0.0]])
    # disc only 0.9; disc + cup 0.9 + 1.0; vessel 0.8; background 0.2
    assert np.allclose(attention_mask(disc, cup, vessels), [[0.9, 1.9, 0.8, 0.2]])


def test_soft_masks_use_the_maximum_as_their_union_and_weights_are_configurable():
    m = attention_mask(np.array([0.5]), np.array([0.0]), np.array([0.25]), weights={"background": 0.4})
    assert m[0] == pytest.approx(0.9 * 0.5 + 0.8 * 0.25 + 0.4 * (1 - 0.5))
    t = attention_mask(torch.tensor([0.5]), torch.tensor([0.0]), torch.tensor([0.25]))
    assert t.item() == pytest.approx(0.9 * 0.5 + 0.8 * 0.25 + 0.2 * 0.5)
    assert MASK_WEIGHTS == {"disc": 0.9, "cup": 1.0, "vessels": 0.8, "background": 0.2}


def test_classifier_head_is_gap_dense_224_dropout_dense_classes():
    net = AttentionClassifier(AttentionConfig(classes=["a", "b", "c"], backbone=TINY))
    head = list(net.head)
    assert head[0].out_features == 224 and isinstance(head[1], torch.nn.ReLU)
    assert head[2].p == 0.3 and head[3].out_features == 3
    net.eval()
    assert net(torch.rand(2, 3, 32, 32)).shape == (2, 3)


def test_paper_training_defaults():
    assert AttentionConfig().backbone == "efficientnet_b0" and AttentionConfig().input_size == 224
    config = attention_train_config()
    assert (config.optimizer, config.lr, config.batch_size, config.epochs, config.early_stopping_patience) == (
        "adam", 1e-4, 8, 30, 5)


def tiny_diagnoses(masked: bool, count: int = 8):
    rng = np.random.default_rng(0)
    photos = [rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in range(count)]
    maps = [np.zeros((32, 32, 3), np.uint8) for _ in range(count)]
    for m in maps:
        m[8:16, 8:16, 0] = 255  # a disc
    return DiagnosisDataset(photos, maps if masked else None, [i % 2 for i in range(count)])


def test_masked_input_is_the_photo_times_the_mask_and_the_baseline_is_the_photo():
    masked, plain = tiny_diagnoses(True), tiny_diagnoses(False)
    image, mask, _ = masked[0]
    assert mask[0, 10, 10].item() == pytest.approx(0.9) and mask[0, 0, 0].item() == pytest.approx(0.2)
    task = AttentionTask(AttentionConfig(classes=["a", "b"]), masked, masked)
    assert torch.allclose(task.inputs(image[None], mask[None]), image[None] * mask[None])
    base = AttentionTask(AttentionConfig(classes=["a", "b"], masked=False), plain, plain)
    image, mask, _ = plain[0]
    assert torch.equal(base.inputs(image[None], mask[None]), image[None])


def test_one_epoch_trains_and_reports_accuracy(tmp_path):
    data = tiny_diagnoses(True)
    task = AttentionTask(AttentionConfig(classes=["a", "b"], backbone=TINY), data, data)
    result = train(task, attention_train_config(epochs=1, batch_size=4, device="cpu"), tmp_path)
    assert {"val_loss", "val_accuracy"} <= set(result.best_metrics)


def test_diagnosis_report_has_accuracy_per_class_and_confusion():
    logits = np.array([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
    report = diagnosis_report(logits, np.array([0, 1, 1]), ["no DR", "PDR"])
    assert report["accuracy"] == pytest.approx(2 / 3)
    assert report["confusion_matrix"] == [[1, 0], [1, 1]]
    assert report["per_class_accuracy"] == {"no DR": 1.0, "PDR": 0.5}


def test_binary_masks_threshold_the_structure_maps_at_one_half_as_the_paper_does():
    maps = np.zeros((4, 4, 3), np.uint8)
    maps[0, 0, 0] = 200    # disc probability 0.78: in the disc
    maps[0, 1, 0] = 100    # 0.39: not
    maps[0, 2, 2] = 140    # vessel 0.55: a vessel
    photo = np.full((4, 4, 3), 255, np.uint8)
    soft = DiagnosisDataset([photo], [maps], [0])[0][1][0]
    binary = DiagnosisDataset([photo], [maps], [0], soft_mask=False)[0][1][0]
    assert binary[0, 0].item() == pytest.approx(0.9) and binary[0, 1].item() == pytest.approx(0.2)
    assert binary[0, 2].item() == pytest.approx(0.8) and binary[3, 3].item() == pytest.approx(0.2)
    assert soft[0, 1].item() == pytest.approx(0.9 * 100 / 255 + 0.2 * (1 - 100 / 255), rel=1e-5)
    assert {round(float(v), 4) for v in binary.numpy().ravel()} == {0.2, 0.8, 0.9}


def test_a_packaged_encoder_start_is_applied_when_the_task_builds_its_network(monkeypatch):
    from models.engine import pretrained

    asked = []
    monkeypatch.setattr(pretrained, "apply_encoder_weights", lambda module, spec: asked.append((module, spec)))
    data = tiny_diagnoses(False, 2)
    model = AttentionTask(AttentionConfig(classes=["a", "b"], backbone=TINY, encoder_weights="imagenet-lite0"),
                          data, data).build_model()
    assert asked == [(model.backbone, "imagenet-lite0")]


def test_fine_tuning_builds_the_network_of_the_file_it_starts_from(tmp_path):
    from models.diagnosis.attention_mask import fine_tuning_config
    from models.engine.weights import save_weights

    made = AttentionConfig(backbone=TINY, input_size=64, soft_mask=False, mask_weights={**MASK_WEIGHTS, "background": 0.3})
    path = save_weights(AttentionClassifier(made), tmp_path / "start.safetensors",
                        {"architecture": f"attention-mask {TINY}", "config": made.to_dict()})
    asked = AttentionConfig(classes=["healthy", "glaucoma"], masked=False)     # a form's defaults
    adopted = fine_tuning_config(asked, path)
    assert (adopted.backbone, adopted.input_size, adopted.soft_mask) == (TINY, 64, False)
    assert adopted.mask_weights["background"] == 0.3
    assert adopted.classes == ["healthy", "glaucoma"] and adopted.masked is False    # the run's own
    bare = save_weights(AttentionClassifier(made), tmp_path / "bare.safetensors", {})
    assert fine_tuning_config(asked, bare) == asked                   # a file that says nothing changes nothing


def test_the_shipped_starter_fine_tunes_from_default_settings():
    from models.diagnosis.attention_mask import fine_tuning_config
    from models.engine.weights import load_matching_weights, starter_for

    starter = starter_for("attention-mask")
    assert starter is not None
    config = fine_tuning_config(AttentionConfig(classes=["healthy", "glaucoma", "AMD"]), starter)
    start = load_matching_weights(AttentionClassifier(config), starter)
    assert start["loaded_share"] > 0.95 and all(name.startswith("head.3") for name in start["kept_initial"])


def test_structure_maps_drawn_by_other_weights_are_cached_apart(tmp_path, monkeypatch):
    """A new disc/cup starter must not be served the old one's cached maps."""
    import models.diagnosis.attention_mask as attention
    from models.diagnosis.attention_mask import cached_structure_maps, structure_fingerprint
    from models.findings.data import GradedPhoto

    drawn = []

    def fake_maps(crop, size, models, device, guess):
        drawn.append(models[0].weight.item())
        return np.full((size, size, 3), len(drawn), np.uint8)

    monkeypatch.setattr(attention, "structure_maps", fake_maps)
    monkeypatch.setattr("annotate.services.photos.read_fundus", lambda path, reduce=1: np.zeros((40, 40, 3), np.uint8))
    photo = GradedPhoto(key="p1", image_path=tmp_path / "p1.jpg", label=0, source="test")
    old = (torch.nn.Linear(1, 1, bias=False), None, torch.nn.Linear(1, 1, bias=False), None)
    new = (torch.nn.Linear(1, 1, bias=False), None, old[2], None)
    with torch.no_grad():
        old[0].weight.fill_(1.0)
        new[0].weight.fill_(2.0)
    assert structure_fingerprint(old) != structure_fingerprint(new)
    first = cached_structure_maps(photo, (0, 0, 40, 40), 8, old, None, tmp_path)
    again = cached_structure_maps(photo, (0, 0, 40, 40), 8, old, None, tmp_path)
    other = cached_structure_maps(photo, (0, 0, 40, 40), 8, new, None, tmp_path)
    assert drawn == [1.0, 2.0]                     # the old weights' maps came from the cache once
    assert first[0, 0, 0] == again[0, 0, 0] == 1 and other[0, 0, 0] == 2


def frozen_and_trained(model: AttentionClassifier) -> tuple[dict, dict]:
    """Copies of the frozen modules' tensors (parameters and BatchNorm statistics) and of the rest's
    parameters, by name."""
    frozen_ids = {id(t) for m in model.frozen_modules() for t in [*m.parameters(), *m.buffers()]}
    frozen = {n: t.detach().clone() for n, t in [*model.named_parameters(), *model.named_buffers()]
              if id(t) in frozen_ids}
    trained = {n: p.detach().clone() for n, p in model.named_parameters() if id(p) not in frozen_ids}
    return frozen, trained


def test_frozen_blocks_keep_their_weights_and_statistics_while_the_rest_trains(tmp_path):
    from models.engine.training import load_best
    from models.engine.weights import save_weights

    data = tiny_diagnoses(True)
    config = AttentionConfig(classes=["a", "b"], backbone=TINY, frozen_blocks=2)
    task = AttentionTask(config, data, data)
    start = task.build_model()
    start_file = save_weights(start, tmp_path / "start.safetensors", {}, torch.float32)   # a pretrained start
    frozen_before, trained_before = frozen_and_trained(start)
    assert any(".running_mean" in name for name in frozen_before)     # BatchNorm statistics are watched too
    engine = attention_train_config(epochs=1, batch_size=4, device="cpu", init_weights=str(start_file))
    result = train(task, engine, tmp_path / "run")
    after = task.build_model()
    load_best(after, tmp_path / "run")
    frozen_after, trained_after = frozen_and_trained(after)
    assert all(torch.equal(frozen_before[n], frozen_after[n]) for n in frozen_before)
    assert all(not torch.equal(trained_before[n], trained_after[n]) for n in ("head.0.weight", "head.3.weight"))
    assert not torch.equal(trained_before["backbone.blocks.2.0.conv_pw.weight"],
                           trained_after["backbone.blocks.2.0.conv_pw.weight"])   # the first unfrozen block
    assert result.best_metrics


def test_frozen_modules_stay_in_eval_mode_and_out_of_the_optimizer():
    from models.engine.training import _build_optimizer

    model = AttentionClassifier(AttentionConfig(classes=["a", "b"], backbone=TINY, frozen_blocks=1)).train()
    assert not model.backbone.bn1.training and not model.backbone.blocks[0].training
    assert model.backbone.blocks[1].training and model.head.training
    optimised = {id(p) for group in _build_optimizer(attention_train_config(), model).param_groups
                 for p in group["params"]}
    assert id(model.backbone.conv_stem.weight) not in optimised and id(model.head[0].weight) in optimised
    assert id(model.backbone.blocks[1][0].conv_pw.weight) in optimised


def test_frozen_blocks_are_recorded_in_the_file_which_loads_as_an_ordinary_network(tmp_path):
    from models.engine.weights import load_weights, read_metadata, save_weights

    config = AttentionConfig(classes=["a", "b"], backbone=TINY, frozen_blocks=3)
    assert AttentionConfig(**config.to_dict()) == config
    path = save_weights(AttentionClassifier(config), tmp_path / "grade.safetensors", {"config": config.to_dict()})
    assert read_metadata(path)["config"]["frozen_blocks"] == 3
    whole = AttentionClassifier(AttentionConfig(classes=["a", "b"], backbone=TINY))    # as a clinic fine-tunes it
    load_weights(whole, path)
    assert all(p.requires_grad for p in whole.parameters())
    assert AttentionConfig(**{k: v for k, v in config.to_dict().items() if k != "frozen_blocks"}).frozen_blocks == 0


def test_more_frozen_blocks_than_the_encoder_has_is_one_sentence():
    from storage.errors import OctantError

    with pytest.raises(OctantError, match=r"^--frozen-blocks 9 does not fit the tinynet_e encoder, which has 7 "
                                          r"blocks; give a number from 0 to 7\.$"):
        AttentionClassifier(AttentionConfig(backbone=TINY, frozen_blocks=9))


def test_freezing_layers_of_a_network_from_scratch_is_refused_in_one_line(capsys, tmp_path):
    import main

    code = main.main(["train", "--network", "attention-mask", "--reference", "idrid", "--data", str(tmp_path),
                      "--frozen-blocks", "4", "--encoder-weights", "none", "--run-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and err.count("\n") == 1
    assert "--frozen-blocks 4 would keep randomly initialised layers untrained" in err
    assert not (tmp_path / "run").exists()
