import numpy as np
import pytest
import torch

from models.segmentation.disc_cup import (
    DiscCupConfig,
    DiscCupResult,
    build_disc_cup_net,
    crop_disc,
    measure_disc,
    segment_disc_cup,
)
from models.segmentation.landmarks import LocatorConfig, build_locator
from models.segmentation.lesions import CBAM, LesionNetConfig, build_lesion_net, local_contrast, segment_lesions
from models.segmentation.vessels import STARTER_VESSELS, VesselNetConfig, build_vessel_net, segment_vessels

CPU = torch.device("cpu")


def test_cbam_keeps_the_feature_shape_and_only_rescales():
    x = torch.rand(2, 48, 8, 8)
    y = CBAM(48)(x)
    assert y.shape == x.shape and (y <= x + 1e-6).all()


@pytest.mark.parametrize("architecture, cbams", [("attention_deeplab", 2), ("deeplab", 0)])
def test_lesion_net_has_four_channels_and_cbam_after_aspp_and_low_level_projection(architecture, cbams):
    model = build_lesion_net(LesionNetConfig(architecture=architecture, decoder_channels=32)).eval()
    assert sum(isinstance(m, CBAM) for m in model.modules()) == cbams
    if cbams:
        assert isinstance(model.decoder.aspp[-1], CBAM) and isinstance(model.decoder.block1[-1], CBAM)
    with torch.no_grad():
        assert model(torch.rand(1, 3, 64, 64)).shape == (1, 4, 64, 64)


def test_segment_lesions_accepts_any_image_size():
    model = build_lesion_net(LesionNetConfig(decoder_channels=16)).eval()
    prob = segment_lesions(model, np.full((50, 70, 3), 120, np.uint8), CPU)
    assert prob.shape == (4, 50, 70) and prob.min() >= 0 and prob.max() <= 1


def test_microaneurysm_detail_net_predicts_its_channels_at_full_resolution_on_normalised_input():
    config = LesionNetConfig(architecture="unet", channels=("MA",), decoder_channels=16, thresholds=(0.5,),
                             preprocess="local_contrast", fov_diameter_px=60)
    model = build_lesion_net(config).eval()
    rng = np.random.default_rng(0)
    prob = segment_lesions(model, rng.integers(0, 255, (50, 70, 3), dtype=np.uint8), CPU, config)
    assert prob.shape == (1, 50, 70)
    with pytest.raises(ValueError, match="lesion channels"):
        build_lesion_net(LesionNetConfig(channels=("XX",)))


def test_local_contrast_removes_uneven_illumination_and_keeps_a_dark_spot():
    ramp = np.tile(np.linspace(60, 200, 120, dtype=np.float32), (120, 1))
    image = np.repeat(ramp[..., None], 3, axis=2)
    image[60:63, 60:63] -= 40                                   # a microaneurysm-sized dark spot
    out = local_contrast(image.astype(np.uint8), fov_diameter_px=120).astype(np.float32)
    background = np.delete(out[40:80, 20:100, 1], np.s_[38:45], axis=1)
    assert background.std() < 12 and abs(background.mean() - 128) < 10   # the ramp is gone
    assert out[61, 61, 1] < 128 - 60                                      # the spot stands out (×4 gain)


def test_vessel_unet_tiles_an_image_of_any_size():
    config = VesselNetConfig(encoder=STARTER_VESSELS.encoder, decoder_channels=(16, 8, 8, 8, 8), tile=64,
                             overlap=16, margin=4)
    model = build_vessel_net(config).eval()
    prob = segment_vessels(model, np.full((90, 70, 3), 100, np.uint8), config, CPU)
    assert prob.shape == (90, 70)


def test_attention_unetpp_outputs_one_channel_at_input_size():
    config = VesselNetConfig(architecture="attention_unetpp", encoder="resnet18", unetpp_filters=(4, 8, 8, 8, 8))
    model = build_vessel_net(config).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 1, 64, 64)).shape == (1, 1, 64, 64)
    assert len(model.gates) == 10   # one gate per nested node of a depth-5 U-Net++


def test_each_vessel_architecture_defaults_to_its_papers_encoder():
    assert VesselNetConfig().encoder == "resnet18"                               # Himbitskaya III-B
    config = VesselNetConfig(architecture="attention_unetpp", unetpp_filters=(4, 8, 8, 8, 8))
    assert config.encoder == "resnet34"                                          # Andrikevych section 2
    blocks = [len(getattr(build_vessel_net(config).encoder, f"layer{i}")) for i in range(1, 5)]
    assert blocks == [3, 4, 6, 3]                                                # ResNet-34, not ResNet-18's 2-2-2-2


def test_disc_cup_and_locator_output_two_channels():
    disc_cup = build_disc_cup_net(DiscCupConfig(decoder_channels=(16, 8, 8, 8))).eval()
    locator = build_locator(LocatorConfig(decoder_channels=(8, 8, 8, 8))).eval()
    with torch.no_grad():
        assert disc_cup(torch.rand(1, 3, 64, 64)).shape == (1, 2, 64, 64)
        assert locator(torch.rand(1, 3, 64, 96)).shape == (1, 2, 64, 96)


def test_disc_measurement_gives_centre_diameter_and_vertical_cup_to_disc_ratio():
    ys, xs = np.mgrid[0:64, 0:64] + 0.5
    disc = (np.hypot(xs - 30, ys - 34) <= 10).astype(np.float32)
    cup = (np.hypot(xs - 30, ys - 34) <= 5).astype(np.float32)
    (cx, cy), diameter, cdr = measure_disc(disc, cup, 0.5)
    assert (cx, cy) == pytest.approx((29.5, 33.5), abs=0.2)   # pixel indices of the centre
    assert diameter == 20 and cdr == pytest.approx(0.5, abs=0.06)
    assert measure_disc(np.zeros((8, 8)), np.zeros((8, 8)), 0.5) is None


def test_disc_crop_pastes_back_where_it_came_from():
    image = np.zeros((120, 160, 3), np.uint8)
    image[50:70, 90:110] = 255
    crop, matrix = crop_disc(image, (100.0, 60.0), 60.0, 32)
    result = DiscCupResult(crop[..., 0].astype(np.float32) / 255, crop[..., 0] * 0.0, matrix, None, None, None, True)
    pasted = result.paste(result.disc_prob, (240, 320), scale=2.0)
    assert pasted[120, 200] > 0.9 and pasted[40, 40] == 0


def test_segment_disc_cup_reports_when_no_disc_is_found():
    model = build_disc_cup_net(DiscCupConfig(decoder_channels=(16, 8, 8, 8))).eval()
    torch.nn.init.constant_(model.segmentation_head[0].bias, -20.0)   # predicts "no disc" everywhere
    result = segment_disc_cup(model, np.zeros((100, 100, 3), np.uint8), (50, 50), 20, DiscCupConfig(), CPU)
    assert not result.found and result.disc_centre is None and result.disc_prob.shape == (256, 256)


def test_blending_a_detail_map_resizes_it_onto_the_lesion_grid_and_mixes_only_its_channels():
    from models.segmentation.lesions import blend_detail

    probs = np.full((4, 8, 12), 0.2, np.float32)
    detail = np.full((2, 16, 24), 0.6, np.float32)   # at twice the lesion network's scale
    mixed = blend_detail(probs, detail, LesionNetConfig(channels=("MA", "EX"), blend=0.25))
    assert mixed.shape == probs.shape and np.allclose(probs, 0.2)    # a new array: the input is kept
    assert np.allclose(mixed[[0, 2]], 0.25 * 0.6 + 0.75 * 0.2) and np.allclose(mixed[[1, 3]], 0.2)
    replaced = blend_detail(probs, detail, LesionNetConfig(channels=("MA", "EX")))   # blend 1: replaces
    assert np.allclose(replaced[[0, 2]], 0.6)


def test_the_mirror_average_is_the_mean_of_the_photos_map_and_its_mirror_images_flipped_back():
    """Test-time augmentation (``LesionNetConfig.mirror_average``): one network call for the photo and
    its mirror image, the second map flipped back before averaging; photos of two sizes in one batch."""
    from models.segmentation.lesions import segment_prepared_batch

    torch.manual_seed(0)
    model = build_lesion_net(LesionNetConfig(decoder_channels=16)).eval()
    rng = np.random.default_rng(1)
    photos = [rng.integers(0, 255, (50, 70, 3), dtype=np.uint8), rng.integers(0, 255, (40, 64, 3), dtype=np.uint8)]
    plain = segment_prepared_batch(model, photos, CPU)
    mirrored = segment_prepared_batch(model, [np.ascontiguousarray(p[:, ::-1]) for p in photos], CPU)
    averaged = segment_prepared_batch(model, photos, CPU, mirror_average=True)
    for own, flipped, both in zip(plain, mirrored, averaged):
        assert both.shape == own.shape and both.dtype == np.float32
        assert np.allclose(both, (own + flipped[..., ::-1]) / 2, atol=1e-5)
        assert not np.allclose(both, own, atol=1e-4)   # the mirror image's map differs, so the mean does
    config = LesionNetConfig(decoder_channels=16, mirror_average=True)
    assert np.allclose(segment_lesions(model, photos[0], CPU, config), averaged[0], atol=1e-6)
