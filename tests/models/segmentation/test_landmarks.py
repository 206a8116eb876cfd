import numpy as np
import pytest
import torch

from annotate.fov import FieldOfView
from models.segmentation.landmarks import (
    LandmarkEstimate,
    LocatorConfig,
    build_locator,
    choose_landmarks,
    decode_heatmaps,
    heatmap_targets,
    locate_classical,
    locate_learned,
    plausible,
)
from tests.models.fundus_synthetic import synthetic_fundus


@pytest.mark.parametrize("right_eye", [True, False])
def test_classical_fallback_finds_disc_and_fovea_on_a_synthetic_fundus(right_eye):
    image_bgr, disc, fovea, (cx, cy, r) = synthetic_fundus(right_eye=right_eye)
    estimate = locate_classical(image_bgr[..., ::-1].copy())
    dd = 2 * r / 8
    assert np.hypot(*np.subtract(estimate.disc, disc)) < 0.25 * dd
    assert np.hypot(*np.subtract(estimate.fovea, fovea)) < 0.5 * dd
    assert estimate.method == "classical"
    assert plausible(estimate, FieldOfView(cx, cy, r))


def test_heatmap_decoding_recovers_a_planted_point_with_high_confidence():
    points = np.array([[40.3, 21.7], [10.5, 30.5]], np.float32)
    targets = heatmap_targets(points, (64, 48), (2.0, 2.0))
    logits = torch.from_numpy(np.log(targets + 1e-9))[None] * 3   # a sharp, confident map
    centres, confidence = decode_heatmaps(logits, radius=6)
    assert centres[0] == pytest.approx(points, abs=0.1)
    assert (confidence > 0.99).all()


def test_learned_locator_maps_back_to_image_pixels():
    config = LocatorConfig(decoder_channels=(8, 8, 8, 8), canvas=(64, 48))
    model = build_locator(config).eval()
    estimate = locate_learned(model, np.zeros((300, 500, 3), np.uint8), config, torch.device("cpu"))
    for x, y in (estimate.disc, estimate.fovea):
        assert -20 <= x <= 520 and -20 <= y <= 320
    assert 0 <= estimate.disc_confidence <= 1


def test_implausible_landmarks_are_refused():
    fov = FieldOfView(320, 240, 220)
    assert not plausible(LandmarkEstimate((300, 240), (305, 240), 1, 1, "locator"), fov)   # too close
    assert not plausible(LandmarkEstimate((200, 240), (900, 240), 1, 1, "locator"), fov)   # outside the FOV


def test_the_classical_method_fills_in_only_what_the_locator_is_unsure_of():
    image_bgr, disc, fovea, (cx, cy, r) = synthetic_fundus(seed=1)
    image, fov, dd = image_bgr[..., ::-1].copy(), FieldOfView(cx, cy, r), 2 * r / 8
    sure = LandmarkEstimate(disc, fovea, 0.9, 0.9, "locator")
    assert choose_landmarks(sure, image, fov, 0.2) is sure
    # Sure of the disc only: its disc stays, the fovea is searched around it (and found).
    half_sure = LandmarkEstimate((disc[0] + 3, disc[1] - 2), (cx, cy), 0.9, 0.05, "locator")
    chosen = choose_landmarks(half_sure, image, fov, 0.2)
    assert chosen.method == "locator disc, classical fovea" and chosen.disc == half_sure.disc
    assert np.hypot(*np.subtract(chosen.fovea, fovea)) < 0.5 * dd
    unsure = LandmarkEstimate((cx, cy), (cx, cy), 0.05, 0.05, "locator")
    assert choose_landmarks(unsure, image, fov, 0.2).method == "classical"
    assert choose_landmarks(None, image, fov, 0.2).method == "classical"
