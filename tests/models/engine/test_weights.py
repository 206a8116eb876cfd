import pytest
import torch
from torch import nn

from models.engine.weights import load_weights, read_metadata, save_weights, starter_weights_path
from storage.errors import WeightsError


def small_net(width=4):
    return nn.Sequential(nn.Conv2d(3, width, 3), nn.BatchNorm2d(width), nn.ReLU())


def trained_net():
    net = small_net()
    net.train()
    net(torch.rand(4, 3, 8, 8) * 3 + 1)  # moves BN running stats away from their defaults
    return net


def test_round_trip_keeps_values_to_fp16_precision_and_bn_counter_as_int(tmp_path):
    source, target = trained_net(), small_net()
    path = save_weights(source, tmp_path / "net.safetensors", {"architecture": "small_net"})
    metadata = load_weights(target, path)
    assert metadata == {"architecture": "small_net"}
    for name, tensor in source.state_dict().items():
        loaded = target.state_dict()[name]
        assert loaded.dtype == tensor.dtype
        assert torch.allclose(loaded.float(), tensor.float(), rtol=1e-3, atol=1e-3), name
    assert target[1].num_batches_tracked.item() == 1


def test_floating_tensors_are_stored_as_fp16(tmp_path):
    from safetensors.torch import load_file

    path = save_weights(trained_net(), tmp_path / "net.safetensors", {})
    stored = load_file(str(path))
    assert stored["0.weight"].dtype == torch.float16
    assert stored["1.num_batches_tracked"].dtype == torch.int64


def test_int8_storage_keeps_each_weight_within_half_a_step_of_its_channel_scale(tmp_path):
    from safetensors.torch import load_file

    source, target = small_net(width=16), small_net(width=16)
    with torch.no_grad():
        source[0].weight.mul_(torch.arange(1, 17).float().view(16, 1, 1, 1))   # channels of different ranges
    path = save_weights(source, tmp_path / "net.safetensors", {"architecture": "small_net"}, int8=True)
    stored = load_file(str(path))
    assert stored["0.weight"].dtype == torch.int8 and stored["0.weight.int8_scale"].shape == (16,)
    assert stored["0.bias"].dtype == torch.float16 and stored["1.running_var"].dtype == torch.float16
    assert read_metadata(path)["storage"].startswith("int8")
    load_weights(target, path)   # the scales are not tensors of the network: a strict load still fits
    original, loaded = source[0].weight, target[0].weight
    step = original.abs().amax(dim=(1, 2, 3)) / 127
    assert ((loaded - original).abs().amax(dim=(1, 2, 3)) <= step / 2 + 1e-6).all()
    half = save_weights(source, tmp_path / "half.safetensors", {})
    assert path.stat().st_size < half.stat().st_size


def test_metadata_is_readable_without_loading_tensors(tmp_path):
    path = save_weights(small_net(), tmp_path / "net.safetensors", {"version": 2, "config": {"a": [1]}})
    assert read_metadata(path) == {"version": 2, "config": {"a": [1]}}


def test_missing_file_says_what_to_do(tmp_path):
    with pytest.raises(WeightsError, match="does not exist; train the model first"):
        load_weights(small_net(), tmp_path / "absent.safetensors")


def test_corrupt_file_is_reported_not_crashed_on(tmp_path):
    path = tmp_path / "broken.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all")
    with pytest.raises(WeightsError, match="broken.safetensors"):
        load_weights(small_net(), path)


def test_shape_mismatch_names_the_architecture(tmp_path):
    path = save_weights(small_net(width=4), tmp_path / "net.safetensors", {"architecture": "guided w4"})
    with pytest.raises(WeightsError, match="made for guided w4.*shape differs"):
        load_weights(small_net(width=8), path)


def test_starter_weights_path_is_none_for_unknown_names():
    assert starter_weights_path("no_such_network_here") is None
