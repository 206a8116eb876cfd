import pytest
import torch
from torch import nn

from models.segmentation.tiling import TileConfig, edge_ramp, predict_padded, predict_tiled, tile_starts


def small_net() -> nn.Module:
    """Three 3 × 3 convolutions: a receptive field of radius 3, smaller than the tile margin."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.Tanh(), nn.Conv2d(4, 4, 3, padding=1),
                         nn.Tanh(), nn.Conv2d(4, 3, 3, padding=1)).eval()


def test_tiles_cover_the_axis_and_end_flush():
    starts = tile_starts(1000, 352, 48)
    assert starts[0] == 0 and starts[-1] == 1000 - 352
    assert all(b - a <= 352 - 48 for a, b in zip(starts, starts[1:]))


def test_neighbouring_ramps_sum_to_one_in_the_overlap():
    left = edge_ramp(64, 16, 4, at_start=True, at_end=False)
    right = edge_ramp(64, 16, 4, at_start=False, at_end=True)
    overlap = left[-16:] + right[:16]
    assert torch.allclose(overlap, torch.ones(16))
    assert left[-4:].eq(0).all() and right[:4].eq(0).all()


def test_tiled_inference_equals_whole_image_inference():
    net = small_net()
    image = torch.randn(2, 101, 137)
    with torch.no_grad():
        whole = net(image[None])[0]
        tiled = predict_tiled(net, image, TileConfig(tile=48, overlap=16, margin=4, batch_size=3))
    assert tiled.shape == whole.shape
    assert torch.allclose(tiled, whole, atol=1e-5)


def test_an_image_smaller_than_a_tile_is_padded_and_cropped_back():
    net = small_net()
    image = torch.randn(2, 30, 20)
    with torch.no_grad():
        tiled = predict_tiled(net, image, TileConfig(tile=48, overlap=16, margin=4))
        whole = net(image[None])[0]
    assert tiled.shape == (3, 30, 20)
    assert torch.allclose(tiled[:, :27, :17], whole[:, :27, :17], atol=1e-5)   # away from the pad


def test_padded_inference_returns_the_input_size():
    out = predict_padded(lambda x: x[:, :1] * 2, torch.ones(3, 45, 70), multiple=32)
    assert out.shape == (1, 45, 70) and out.eq(2).all()


def test_overlap_must_exceed_twice_the_margin():
    with pytest.raises(ValueError):
        predict_tiled(small_net(), torch.zeros(2, 100, 100), TileConfig(tile=48, overlap=8, margin=4))
