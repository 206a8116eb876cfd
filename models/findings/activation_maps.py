"""Activation maps of the guided network drawn for people: plain numpy/OpenCV, no Qt.

``activation_heatmap`` and ``overlay_activation`` follow Son et al.'s Fig. 3 (§3.2): "activation
maps are upscaled through bilinear interpolation and blurred with 32 × 32 Gaussian filter for
natural visualization and normalized to [0, 1]" before being superimposed on the photo.

The 32-pixel window belongs to the paper's 512-pixel input, where one activation cell covers
16 pixels: the window spans two cells. At other sizes the window keeps that ratio (two cells), so
a 64-pixel thumbnail is blurred like the paper's figure shrunk. OpenCV needs an odd kernel, so the
window w becomes ksize w + 1 (33 at 512 px), with sigma = w / 6 so that ±3 sigma fill the window
(5.3 px at 512 px, OpenCV's own choice for ksize 33 is 5.3 as well).
"""
from __future__ import annotations

import cv2
import numpy as np

PAPER_INPUT_SIZE = 512
PAPER_MAP_SIZE = 32          # activation map at that input (models/findings/guided.py: S / 16)
PAPER_BLUR_WINDOW = 32       # pixels at the paper's input size (Fig. 3)
BLUR_CELLS = PAPER_BLUR_WINDOW / (PAPER_INPUT_SIZE / PAPER_MAP_SIZE)  # = 2 activation cells
OVERLAY_ALPHA = 0.6          # weight of the heat map where the activation is highest


def blur_window(side: int, map_size: int) -> int:
    """The paper's 32 px at 512 px input (two activation cells), kept in cells at other sizes."""
    return max(2, int(round(BLUR_CELLS * side / max(1, map_size))))


def activation_heatmap(activation: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """float32 (height, width) in [0, 1]: bilinear upscale, Gaussian blur, min–max normalised."""
    activation = np.asarray(activation, np.float32)
    height, width = size
    upscaled = cv2.resize(activation, (width, height), interpolation=cv2.INTER_LINEAR)
    window = blur_window(max(height, width), max(activation.shape))
    ksize = window + 1 if window % 2 == 0 else window
    blurred = cv2.GaussianBlur(upscaled, (ksize, ksize), sigmaX=window / 6, sigmaY=window / 6)
    low, high = float(blurred.min()), float(blurred.max())
    if high - low < 1e-12:  # a flat map carries no location: show it as no activation
        return np.zeros_like(blurred)
    return (blurred - low) / (high - low)


def overlay_activation(photo_rgb: np.ndarray, activation: np.ndarray,
                       alpha: float = OVERLAY_ALPHA) -> np.ndarray:
    """RGB uint8: the photo with the normalised activation as a JET heat map over it.

    The heat map's weight grows with the activation (``alpha`` × heat), so the photo stays
    readable where the network is not looking instead of being tinted blue all over.
    """
    heat = activation_heatmap(activation, photo_rgb.shape[:2])
    colour = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1]
    weight = (alpha * heat)[..., None]
    blended = photo_rgb.astype(np.float32) * (1 - weight) + colour.astype(np.float32) * weight
    return np.clip(blended + 0.5, 0, 255).astype(np.uint8)
