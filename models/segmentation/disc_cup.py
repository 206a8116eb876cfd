"""Optic disc and cup: a U-Net with two sigmoid channels (0 disc, 1 cup; Himbitskaya et al. III-A,
Table I) run on a 256 × 256 crop around the located disc, so the cup is seen in detail.

The crop spans ``crop_disc_diameters`` disc diameters. A first pass uses the expected disc size
(1/8 of the FOV diameter on 45° photos); a second pass re-centres and re-sizes the crop on the
disc the first pass found, which makes the result independent of how good the first guess was.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import nn

from models.segmentation.common import LIGHT_ENCODER, NetConfig, build_smp, inference_context, rgb_to_tensor

DISC_PER_FOV = 1 / 8     # disc diameter / FOV diameter on 45° fundus photos (IDRiD ≈ 430 / 3450)
PLAUSIBLE_DIAMETER = (0.5, 2.0)   # a found disc this many times the expected diameter is believed


@dataclass
class DiscCupConfig(NetConfig):
    encoder: str = LIGHT_ENCODER
    encoder_depth: int = 4
    decoder_channels: tuple[int, ...] = (128, 64, 32, 16)
    crop_size: int = 256                  # Himbitskaya III-A: input (3, 256, 256)
    crop_disc_diameters: float = 3.0
    threshold: float = 0.5
    encoder_weights_path: str | None = None   # imagenet-liteN or a local file (models/engine/pretrained.py)


@dataclass
class DiscCupResult:
    disc_prob: np.ndarray          # (N, N) float32, crop pixels
    cup_prob: np.ndarray
    crop_matrix: np.ndarray        # 2 × 3 affine: image pixels -> crop pixels
    disc_centre: tuple[float, float] | None    # image pixels; None when no disc was found
    disc_diameter: float | None
    cup_to_disc: float | None      # vertical cup-to-disc ratio
    found: bool

    def paste(self, prob: np.ndarray, shape: tuple[int, int], scale: float = 1.0) -> np.ndarray:
        """A crop map drawn back into an image of ``shape`` (h, w) whose pixels are ``scale`` times
        the pipeline image's (e.g. the original photo)."""
        matrix = self.crop_matrix.astype(np.float64).copy()
        matrix[:, :2] /= scale
        return cv2.warpAffine(prob, matrix, (shape[1], shape[0]), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def build_disc_cup_net(config: DiscCupConfig) -> nn.Module:
    return build_smp("Unet", config.encoder, config.encoder_weights_path, classes=2,
                     encoder_depth=config.encoder_depth, decoder_channels=config.decoder_channels)


def crop_matrix(centre: tuple[float, float], side: float, size: int) -> np.ndarray:
    """Affine map from image pixels to a ``size``² crop of ``side`` image pixels around ``centre``."""
    s = size / side
    cx, cy = centre
    return np.array([[s, 0, size / 2 - s * cx], [0, s, size / 2 - s * cy]], np.float32)


def crop_disc(image_rgb: np.ndarray, centre: tuple[float, float], side: float, size: int) -> tuple[np.ndarray, np.ndarray]:
    matrix = crop_matrix(centre, side, size)
    crop = cv2.warpAffine(image_rgb, matrix, (size, size), flags=cv2.INTER_AREA if side > size else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return crop, matrix


def measure_disc(disc_prob: np.ndarray, cup_prob: np.ndarray, threshold: float) -> tuple[tuple[float, float], float, float] | None:
    """Centre (crop px), diameter (crop px) and vertical cup-to-disc ratio of the largest disc blob."""
    disc = (disc_prob >= threshold).astype(np.uint8)
    count, labels, stats, centroids = cv2.connectedComponentsWithStats(disc)
    if count < 2:
        return None
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    height = stats[best, cv2.CC_STAT_HEIGHT]
    diameter = float(max(stats[best, cv2.CC_STAT_WIDTH], height))
    cup_rows = np.nonzero(((cup_prob >= threshold) & (labels == best)).any(axis=1))[0]
    cdr = float((cup_rows[-1] - cup_rows[0] + 1) / height) if cup_rows.size else 0.0
    return (float(centroids[best][0]), float(centroids[best][1])), diameter, cdr


def _predict_batch(model: nn.Module, crops: list[np.ndarray], device: torch.device) -> list[tuple[np.ndarray, np.ndarray]]:
    with inference_context(device):
        prob = torch.sigmoid(model(torch.stack([rgb_to_tensor(crop) for crop in crops]).to(device))).float().cpu().numpy()
    return [(p[0], p[1]) for p in prob]


def segment_disc_cup(model: nn.Module, image_rgb: np.ndarray, centre_guess: tuple[float, float],
                     disc_diameter_guess: float, config: DiscCupConfig, device: torch.device) -> DiscCupResult:
    """Two passes on 256² crops: around the guess, then around the disc the first pass found.
    A blob whose diameter is not within PLAUSIBLE_DIAMETER × the guess is not taken for the disc."""
    return segment_disc_cup_batch(model, [image_rgb], [centre_guess], [disc_diameter_guess], config, device)[0]


def segment_disc_cup_batch(model: nn.Module, images_rgb: list[np.ndarray], centre_guesses: list[tuple[float, float]],
                           diameter_guesses: list[float], config: DiscCupConfig,
                           device: torch.device) -> list[DiscCupResult]:
    """``segment_disc_cup`` for several photos: each pass is one network call on the photos still
    being refined."""
    centres, sides = list(centre_guesses), [config.crop_disc_diameters * d for d in diameter_guesses]
    last: list = [None] * len(images_rgb)      # (disc prob, cup prob, matrix) of the latest pass
    results: list[DiscCupResult | None] = [None] * len(images_rgb)
    active = list(range(len(images_rgb)))
    for _ in range(2):
        if not active:
            break
        crops = [crop_disc(images_rgb[i], centres[i], sides[i], config.crop_size) for i in active]
        probs = _predict_batch(model, [crop for crop, _ in crops], device)
        still = []
        for i, (_, matrix), (disc_prob, cup_prob) in zip(active, crops, probs):
            last[i] = (disc_prob, cup_prob, matrix)
            measured = measure_disc(disc_prob, cup_prob, config.threshold)
            if measured is None:
                continue
            (u, v), diameter, cdr = measured
            scale = matrix[0, 0]
            if not PLAUSIBLE_DIAMETER[0] <= diameter / scale / diameter_guesses[i] <= PLAUSIBLE_DIAMETER[1]:
                continue   # a blob far from a disc's size (e.g. a bright patch): keep the last plausible pass
            centres[i] = ((u - matrix[0, 2]) / scale, (v - matrix[1, 2]) / scale)
            diameter_px = diameter / scale
            results[i] = DiscCupResult(disc_prob, cup_prob, matrix, centres[i], diameter_px, cdr, True)
            sides[i] = config.crop_disc_diameters * diameter_px
            still.append(i)
        active = still
    return [result if result is not None else _not_found(*last[i]) for i, result in enumerate(results)]


def _not_found(disc_prob: np.ndarray, cup_prob: np.ndarray, crop_matrix: np.ndarray) -> DiscCupResult:
    """The last pass's maps where no plausible disc was found."""
    return DiscCupResult(disc_prob, cup_prob, crop_matrix, None, None, None, False)
