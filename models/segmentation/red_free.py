"""Red-free (grey) fundus photos: told apart from colour ones in one place.

A red-free photo is the green channel (or a green-filtered exposure) shown as grey, so its three
channels are equal, up to JPEG's colour noise; a single-channel file decodes to the same (OpenCV
replicates it). The networks learnt on colour photos, where the disc is pale orange and hard
exudates yellow; in grey the two look alike, so the pipeline treats such a photo differently.
"""
from __future__ import annotations

import numpy as np

# Per pixel, the spread between the brightest and darkest channel. JPEG's 4:2:0 colour noise keeps
# a grey photo's spread within a few levels; a colour fundus (red well above blue) spreads by 50-150.
GREY_SPREAD = 12          # levels of 255: a pixel whose channels lie within it counts as grey
GREY_SHARE = 0.95         # a photo is red-free when this share of its lit pixels is grey
LIT_LEVEL = 20            # darker pixels (the black border, the darkest fovea) tell nothing
SAMPLE_SIDE = 256         # the check reads a sparse grid of about this many pixels a side


def is_red_free(image: np.ndarray) -> bool:
    """Whether ``image`` (uint8, (h, w), or (h, w, 3) in any channel order) is a grey photo."""
    if image.ndim == 2 or image.shape[2] == 1:
        return True
    step = max(1, max(image.shape[:2]) // SAMPLE_SIDE)
    pixels = image[::step, ::step, :3].reshape(-1, 3)
    brightest, darkest = pixels.max(axis=1), pixels.min(axis=1)
    lit = brightest >= LIT_LEVEL
    if not lit.any():
        return False   # a black picture: no_fundus_reason says what is wrong with it
    spread = brightest[lit].astype(np.int16) - darkest[lit]
    return bool((spread <= GREY_SPREAD).mean() >= GREY_SHARE)


def red_free_version(image: np.ndarray) -> np.ndarray:
    """What a red-free camera shows of a colour photo: its green channel on all three channels
    (for the bench and the tests; the channel order does not matter, green is the middle one)."""
    return np.repeat(image[..., 1:2], 3, axis=2)
