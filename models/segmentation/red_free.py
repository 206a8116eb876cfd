"""Red-free fundus photos: told apart from colour ones in one place.

A red-free photo is the green channel (or a green-filtered exposure) shown in one tint: most
cameras show it grey, so its three channels are equal up to JPEG's colour noise (a single-channel
file decodes to the same: OpenCV replicates it); some export it green, red and blue (nearly) zero.
Either way every pixel's red and blue follow its green on one straight line (a tint times the green,
plus a camera's black level), no redder than grey; a colour fundus is red or orange, its red two to
four times its green and not in step with it. The networks learnt on colour photos, where the disc is pale orange and hard exudates yellow;
in grey the two look alike, so the pipeline reads such a photo differently, from its green.
"""
from __future__ import annotations

import cv2
import numpy as np

from annotate.fov import FieldOfView
from models.segmentation.disc_cup import DISC_PER_FOV

# Per pixel, how far red and blue lie from the photo's tint line (fitted to its lit pixels). JPEG's
# 4:2:0 colour noise keeps a grey photo within a few levels of grey and a green-only one's red and
# blue within 6 (IDRiD photos, quality 70); a colour fundus (red well above green) lies 50-150 off.
TINT_SPREAD = 12          # levels of 255: a pixel this close to the tint line is in tint
TINT_SHARE = 0.95         # a photo is red-free when this share of its lit pixels is in tint
REDDEST_TINT = 1.1        # red (and blue) on the line, at the median green, at most this times it: grey is 1
LIT_LEVEL = 20            # darker pixels (the black border, the darkest fovea) tell nothing
SAMPLE_SIDE = 256         # the check reads a sparse grid of about this many pixels a side

# Typical fundus colour at each green level: the median red and blue of the IDRiD-landmarks training
# photos' pixels (inside the FOV) whose green is that level, every 16 levels (blue smoothed where
# few pixels are that bright). The disc/cup network reads a red-free photo through it.
PSEUDO_GREEN = (0, 16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 255)
PSEUDO_RED = (0, 41, 91, 124, 147, 165, 182, 198, 213, 231, 253, 254, 254, 254, 254, 254, 254)
PSEUDO_BLUE = (0, 10, 10, 9, 14, 20, 29, 40, 52, 73, 78, 78, 82, 83, 94, 130, 147)

# How strongly vessel convergence pulls the disc on a red-free photo: the locator's disc logits, and
# the classical fallback's brightness score (in standard deviations), gain this times the vessel
# density around each point (0 to 1, the densest disc-sized window 1). Chosen on the IDRiD validation
# photos (bench_segmentation --red-free): for the locator 2 to 8 measure within 2 px of each other;
# the classical disc alone errs 127 px in grey, 117 / 110 / 79 / 89 px with 1 / 2 / 4 / 8.
VESSEL_PRIOR_WEIGHT = 4.0


def is_red_free(image: np.ndarray) -> bool:
    """Whether ``image`` (uint8, (h, w), or (h, w, 3) in any channel order) is a red-free photo:
    grey, green, or any tint between (module docstring)."""
    if image.ndim == 2 or image.shape[2] == 1:
        return True
    step = max(1, max(image.shape[:2]) // SAMPLE_SIDE)
    pixels = image[::step, ::step, :3].reshape(-1, 3).astype(np.float32)
    pixels = pixels[pixels.max(axis=1) >= LIT_LEVEL]
    if not len(pixels):
        return False   # a black picture: no_fundus_reason says what is wrong with it
    green, others = pixels[:, 1:2], pixels[:, [0, 2]]
    line = np.hstack([green, np.ones_like(green)])
    slope_and_level = np.linalg.lstsq(line, others, rcond=None)[0]   # red and blue against green
    typical = float(np.median(green))
    if (np.array([typical, 1.0]) @ slope_and_level > REDDEST_TINT * typical).any():
        return False   # redder than grey: a colour photo (or lit only in red or blue)
    off_tint = np.abs(others - line @ slope_and_level).max(axis=1)
    return bool((off_tint <= TINT_SPREAD).mean() >= TINT_SHARE)


def red_free_version(image: np.ndarray) -> np.ndarray:
    """A photo's green channel on all three channels: what a red-free camera shows of a colour
    photo (the bench, the tests), and how the pipeline reads every red-free photo, grey or tinted
    (the channel order does not matter, green is the middle one)."""
    if image.ndim == 2:
        image = image[..., None]
    return np.repeat(image[..., 1:2] if image.shape[2] > 1 else image[..., :1], 3, axis=2)


def pseudo_colour(grey_rgb: np.ndarray) -> np.ndarray:
    """A red-free photo (RGB, equal channels) in the colours of a typical fundus photo, from its green."""
    green = grey_rgb[..., 1]
    levels = np.arange(256)
    red = np.interp(levels, PSEUDO_GREEN, PSEUDO_RED).astype(np.uint8)
    blue = np.interp(levels, PSEUDO_GREEN, PSEUDO_BLUE).astype(np.uint8)
    return np.stack([red[green], green, blue[green]], axis=-1)


def vessel_convergence(vessel_prob: np.ndarray, fov: FieldOfView) -> np.ndarray:
    """Vessel density in a disc-sized window around each pixel, 1 at the densest (float32, the map's
    shape; ``fov`` in its pixels). The main vessels leave the eye through the disc, so the disc sits
    where they are densest, and an exudate, as bright as a disc in grey, sits among thin ones."""
    side = max(1, round(2 * fov.r * DISC_PER_FOV))
    density = cv2.blur(vessel_prob.astype(np.float32), (side, side), borderType=cv2.BORDER_CONSTANT)
    top = float(density.max())
    return density / top if top > 0 else density
