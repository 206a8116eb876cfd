import math

import pytest
import torch

from models.engine.losses import (
    BCEDiceLoss,
    BCELoss,
    BoundaryLoss,
    DiceLoss,
    FocalLoss,
    LesionLoss,
    SpatialSoftmaxLoss,
    sobel_magnitude,
)

# logits 0 -> p = 0.5 everywhere; one positive pixel out of four.
LOGITS = torch.zeros(1, 1, 2, 2)
TARGET = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])


def test_dice_loss_matches_hand_value():
    eps = 1e-6
    expected = 1 - (2 * 0.5 + eps) / (4 * 0.5 + 1 + eps)
    assert DiceLoss()(LOGITS, TARGET).item() == pytest.approx(expected, abs=1e-6)


def test_bce_of_even_odds_is_log_two():
    assert BCELoss()(LOGITS, TARGET).item() == pytest.approx(math.log(2), abs=1e-6)


def test_focal_loss_weights_positives_by_alpha_and_easy_pixels_by_gamma():
    # each pixel: (1 - 0.5)^2 * ln 2, times 0.25 (positive) or 0.75 (negative)
    expected = math.log(2) * 0.25 * (0.25 + 3 * 0.75) / 4
    assert FocalLoss()(LOGITS, TARGET).item() == pytest.approx(expected, abs=1e-6)


def test_sobel_magnitude_of_a_vertical_edge():
    edge = torch.tensor([[0.0, 0.0, 1.0, 1.0]] * 3)[None, None]
    magnitude = sobel_magnitude(edge, eps=0.0)
    assert magnitude[0, 0, 1].tolist() == pytest.approx([0.0, 4.0, 4.0, 0.0])


def test_boundary_loss_damps_bce_on_edges_by_exp_minus_theta_gradient():
    edge = torch.tensor([[0.0, 0.0, 1.0, 1.0]] * 3)[None, None]
    flat = math.exp(-1.5 * math.sqrt(1e-6))
    expected = math.log(2) * (2 * flat + 2 * math.exp(-1.5 * math.sqrt(16 + 1e-6))) / 4
    assert BoundaryLoss()(torch.zeros_like(edge), edge).item() == pytest.approx(expected, abs=1e-6)


def test_lesion_loss_is_the_papers_weighted_sum():
    logits, target = torch.randn(2, 4, 8, 8), (torch.rand(2, 4, 8, 8) > 0.8).float()
    loss = LesionLoss()
    terms = loss.terms(logits, target)
    expected = 1.0 * terms["dice"] + 0.5 * terms["bce"] + 1.0 * terms["focal"] + 0.5 * terms["boundary"]
    assert loss(logits, target).item() == pytest.approx(expected.item(), rel=1e-6)


def test_bce_dice_is_bce_plus_one_minus_dice():
    value = BCEDiceLoss()(LOGITS, TARGET).item()
    assert value == pytest.approx(math.log(2) + DiceLoss()(LOGITS, TARGET).item(), abs=1e-6)


def test_spatial_softmax_of_uniform_logits_is_log_of_pixel_count():
    target = torch.zeros(1, 2, 4, 5)
    target[0, :, 1, 2] = 1
    assert SpatialSoftmaxLoss()(torch.zeros(1, 2, 4, 5), target).item() == pytest.approx(math.log(20), abs=1e-6)
