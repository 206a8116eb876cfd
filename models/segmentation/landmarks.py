"""Optic disc and fovea centres: a learned heatmap locator, and a classical fallback that needs
no weights at all.

Learned: a small U-Net reads the photo letterboxed into a 512 × 384 canvas and outputs one heatmap
per landmark; a softmax over all pixels makes each a probability map (one disc, one fovea per
photo). The centre is the probability-weighted mean near the peak; the confidence is the
probability mass within ``peak_radius`` of it.

Classical: the disc is the brightest disc-sized blob inside the field of view; the fovea is the
darkest (avascular, pigmented) disc-sized spot about 2.5 disc diameters temporal to it, a little
below it, on the side of the FOV centre (Son et al. build their regions on
the same anatomy; ``docs/geometry.md``).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import nn

from annotate.fov import FieldOfView, detect_fov, fov_mask
from models.segmentation.cache import letterbox
from models.segmentation.common import LIGHT_ENCODER, NetConfig, build_smp, inference_context, rgb_to_tensor
from models.segmentation.disc_cup import DISC_PER_FOV

# Disc–fovea offset in units of the expected disc diameter (FOV diameter / 8), measured on 60
# IDRiD-landmarks training photos: 3.1 ± 0.19 apart, the fovea 0.33 ± 0.27 below the disc.
FOVEA_DISC_DIAMETERS = 3.1
FOVEA_BELOW_DISC = 0.33
CLASSICAL_WIDTH = 512          # the fallback works on a copy this wide


@dataclass
class LandmarkEstimate:
    disc: tuple[float, float]
    fovea: tuple[float, float]
    disc_confidence: float
    fovea_confidence: float
    method: str                   # "locator" | "locator disc, classical fovea" | "classical"


@dataclass
class LocatorConfig(NetConfig):
    encoder: str = LIGHT_ENCODER
    encoder_depth: int = 4
    decoder_channels: tuple[int, ...] = (64, 32, 16, 16)
    canvas: tuple[int, int] = (512, 384)      # (width, height), as the cache in seg_cache.py
    sigma_px: tuple[float, float] = (5.0, 7.0)  # target heatmap σ in canvas pixels: disc, fovea
    peak_radius: float = 12.0
    min_confidence: float = 0.2   # below it the classical fallback is used (chosen on IDRiD validation)
    encoder_weights_path: str | None = None   # imagenet-liteN or a local file (models/engine/pretrained.py)


def build_locator(config: LocatorConfig) -> nn.Module:
    return build_smp("Unet", config.encoder, config.encoder_weights_path, classes=2,
                     encoder_depth=config.encoder_depth, decoder_channels=config.decoder_channels)


def heatmap_targets(points: np.ndarray, canvas: tuple[int, int], sigma: tuple[float, float]) -> np.ndarray:
    """Gaussian heatmaps (2, H, W) float32 for canvas points [[disc x, y], [fovea x, y]]."""
    w, h = canvas
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    maps = [np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * s * s)) for (x, y), s in zip(points, sigma)]
    return np.stack(maps).astype(np.float32)


def decode_heatmaps(logits: torch.Tensor, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """(B, 2, H, W) logits -> centres (B, 2, 2) canvas px (continuous, pixel centres at +0.5) and
    confidences (B, 2): probability mass within ``radius`` of the peak."""
    b, c, h, w = logits.shape
    prob = torch.softmax(logits.float().reshape(b, c, -1), -1).reshape(b, c, h, w)
    peak = prob.reshape(b, c, -1).argmax(-1)
    py, px = (peak // w).float() + 0.5, (peak % w).float() + 0.5
    ys = torch.arange(h, device=logits.device).float().view(1, 1, h, 1) + 0.5
    xs = torch.arange(w, device=logits.device).float().view(1, 1, 1, w) + 0.5
    near = ((xs - px[..., None, None]) ** 2 + (ys - py[..., None, None]) ** 2) <= radius ** 2
    local = prob * near
    mass = local.sum((2, 3))
    cx = (local * xs).sum((2, 3)) / mass.clamp_min(1e-12)
    cy = (local * ys).sum((2, 3)) / mass.clamp_min(1e-12)
    return torch.stack([cx, cy], -1).cpu().numpy(), mass.cpu().numpy()


def locate_learned(model: nn.Module, image_rgb: np.ndarray, config: LocatorConfig,
                   device: torch.device) -> LandmarkEstimate:
    return locate_learned_batch(model, [image_rgb], config, device)[0]


def locate_learned_batch(model: nn.Module, images_rgb: list[np.ndarray], config: LocatorConfig,
                         device: torch.device, disc_priors: list[np.ndarray | None] | None = None,
                         ) -> list[LandmarkEstimate]:
    """The locator on several photos in one network call; coordinates in each input's pixels.
    ``disc_priors``: per photo, None or a map of its size added to the disc logits (a log-prior:
    +1 makes a place e times likelier), e.g. vessel convergence on a red-free photo."""
    boxed = [letterbox(image, config.canvas) for image in images_rgb]   # the training cache's letterbox
    with inference_context(device):
        logits = model(torch.stack([rgb_to_tensor(canvas) for canvas, *_ in boxed]).to(device)).float()
    if any(prior is not None for prior in disc_priors or []):
        added = np.zeros(tuple(logits.shape), np.float32)   # the network's output is read-only (inference mode)
        for i, prior in enumerate(disc_priors or []):
            if prior is not None:
                added[i, 0] = letterbox(prior.astype(np.float32), config.canvas)[0]
        logits = logits + torch.from_numpy(added).to(logits.device)
    centres, confidence = decode_heatmaps(logits, config.peak_radius)
    estimates = []
    for (_, scale, (dx, dy)), points, (disc_confidence, fovea_confidence) in zip(boxed, centres, confidence):
        disc, fovea = [((x - dx) / scale, (y - dy) / scale) for x, y in points]
        estimates.append(LandmarkEstimate(disc, fovea, float(disc_confidence), float(fovea_confidence), "locator"))
    return estimates


def _band(image: np.ndarray, small_sigma: float, large_sigma: float) -> np.ndarray:
    """Difference of Gaussians: structure at the scale of ``small_sigma`` against the slow
    illumination gradient of the photo."""
    return cv2.GaussianBlur(image, (0, 0), small_sigma) - cv2.GaussianBlur(image, (0, 0), large_sigma)


def _zscore(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    inside = values[mask]
    return (values - inside.mean()) / (inside.std() + 1e-6)


def locate_classical(image_rgb: np.ndarray, fov: FieldOfView | None = None,
                     disc: tuple[float, float] | None = None,
                     disc_prior: np.ndarray | None = None) -> LandmarkEstimate:
    """Disc and fovea from brightness and darkness alone (no weights); coordinates in the input's
    pixels. With ``disc`` given (e.g. the locator's, when only its fovea is in doubt) only the
    fovea is searched, around that disc. ``disc_prior``: a map of the input's size added to the
    disc's brightness score (in standard deviations), e.g. vessel convergence on a red-free photo."""
    h, w = image_rgb.shape[:2]
    if fov is None:
        fov = detect_fov(image_rgb[..., ::-1])
    s = min(1.0, CLASSICAL_WIDTH / w)
    small = cv2.resize(image_rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    small_fov = FieldOfView(fov.cx * s, fov.cy * s, fov.r * s)
    dd = 2 * small_fov.r * DISC_PER_FOV
    inside = fov_mask(small.shape[:2], small_fov)
    core = fov_mask(small.shape[:2], FieldOfView(small_fov.cx, small_fov.cy, max(1.0, small_fov.r - 0.3 * dd)))
    rgb = small.astype(np.float32)
    # Outside the FOV the photo is black: fill with the FOV's mean so its edge is not a contrast.
    for channel in range(3):
        rgb[..., channel][~inside] = rgb[..., channel][inside].mean() if inside.any() else 0
    brightness = rgb.mean(axis=2)
    bright = _zscore(_band(brightness, dd / 4, 2 * dd), core)
    if disc_prior is not None:
        bright += cv2.resize(disc_prior.astype(np.float32), (small.shape[1], small.shape[0]), interpolation=cv2.INTER_AREA)
    bright[~core] = -np.inf
    if disc is None:
        disc_y, disc_x = (int(v) for v in np.unravel_index(int(np.argmax(bright)), bright.shape))
    else:
        disc_x = int(np.clip(disc[0] * s - 0.5, 0, small.shape[1] - 1))
        disc_y = int(np.clip(disc[1] * s - 0.5, 0, small.shape[0] - 1))
    disc_confidence = float(np.clip(bright[disc_y, disc_x] / 6, 0, 1))

    dark = _zscore(-_band(rgb[..., 1], dd / 3, 2 * dd), core)
    ys, xs = np.mgrid[0:small.shape[0], 0:small.shape[1]].astype(np.float32)
    dist = np.hypot(xs - disc_x, ys - disc_y) / dd
    toward_centre = np.sign(small_fov.cx - disc_x) * (xs - disc_x) > 0
    prior = (-(((dist - FOVEA_DISC_DIAMETERS) / 0.6) ** 2) - ((ys - disc_y - FOVEA_BELOW_DISC * dd) / (0.6 * dd)) ** 2
             + 0.5 * toward_centre)
    score = dark + prior
    score[~core | (dist < 1.8) | (dist > 4.2)] = -np.inf
    if not np.isfinite(score).any():   # disc at the FOV edge of a tiny FOV: use the anatomy alone
        score = prior
    fovea_y, fovea_x = np.unravel_index(int(np.argmax(score)), score.shape)
    fovea_confidence = float(np.clip(dark[fovea_y, fovea_x] / 4, 0, 1))
    to_input = lambda x, y: ((x + 0.5) / s, (y + 0.5) / s)   # pixel centre in the input's pixels
    return LandmarkEstimate(to_input(disc_x, disc_y) if disc is None else (disc[0], disc[1]), to_input(fovea_x, fovea_y),
                            disc_confidence, fovea_confidence, "classical")


def choose_landmarks(learned: LandmarkEstimate | None, image_rgb: np.ndarray, fov: FieldOfView,
                     min_confidence: float, disc_prior: np.ndarray | None = None) -> LandmarkEstimate:
    """What the pipeline places: the locator's disc and fovea when it is confident of both and
    they are plausible; its disc with a classical fovea found around it when only the disc is
    confident (a whole classical answer would throw the good disc away, and on a photo whose
    brightest spot is not the disc, lose both); else the classical method (with ``disc_prior``)."""
    if learned is not None:
        confident = (learned.disc_confidence >= min_confidence, learned.fovea_confidence >= min_confidence)
        if all(confident) and plausible(learned, fov):
            return learned
        if confident[0]:
            fovea = locate_classical(image_rgb, fov, disc=learned.disc)
            return LandmarkEstimate(learned.disc, fovea.fovea, learned.disc_confidence, fovea.fovea_confidence,
                                    "locator disc, classical fovea")
    return locate_classical(image_rgb, fov, disc_prior=disc_prior)


def plausible(estimate: LandmarkEstimate, fov: FieldOfView) -> bool:
    """Disc–fovea distance within 1.5–4 disc diameters and both inside the FOV (±10 %)."""
    dd = 2 * fov.r * DISC_PER_FOV
    distance = np.hypot(estimate.fovea[0] - estimate.disc[0], estimate.fovea[1] - estimate.disc[1]) / dd
    inside = all(np.hypot(x - fov.cx, y - fov.cy) <= 1.1 * fov.r for x, y in (estimate.disc, estimate.fovea))
    return bool(1.5 <= distance <= 4.0 and inside)
