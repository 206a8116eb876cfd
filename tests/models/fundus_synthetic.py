"""A synthetic fundus photo for the segmentation and landmark tests: orange retina in a black
border, a bright disc, a dark fovea 2.5 disc diameters temporal to it, a few dark vessels."""
from __future__ import annotations

import cv2
import numpy as np


def synthetic_fundus(width: int = 640, height: int = 480, right_eye: bool = True, seed: int = 0):
    """Returns (image_bgr uint8, disc (x, y), fovea (x, y), fov (cx, cy, r))."""
    rng = np.random.default_rng(seed)
    cx, cy, r = width / 2, height / 2, 0.46 * height
    dd = 2 * r / 8
    disc = (cx - 1.25 * dd if right_eye else cx + 1.25 * dd, cy - 0.1 * dd)
    fovea = (disc[0] + (2.5 * dd if right_eye else -2.5 * dd), disc[1] + 0.2 * dd)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
    radius = np.hypot(xs - cx, ys - cy)
    shade = 1.0 - 0.35 * (radius / r) ** 2                       # vignetting toward the FOV edge
    image = np.stack([40 * shade, 85 * shade, 185 * shade], -1)  # BGR: orange-red retina
    fovea_dip = np.exp(-((xs - fovea[0]) ** 2 + (ys - fovea[1]) ** 2) / (2 * (0.35 * dd) ** 2))
    image *= (1 - 0.45 * fovea_dip)[..., None]
    for angle in np.linspace(0.3, 5.9, 6):                       # vessels leave the disc
        end = (disc[0] + 3.5 * dd * np.cos(angle), disc[1] + 3.5 * dd * np.sin(angle))
        cv2.line(image, (int(disc[0]), int(disc[1])), (int(end[0]), int(end[1])), (20, 30, 90), 3)
    disc_glow = np.exp(-((xs - disc[0]) ** 2 + (ys - disc[1]) ** 2) / (2 * (0.3 * dd) ** 2))
    image += disc_glow[..., None] * np.array([120, 150, 60])
    image += rng.normal(0, 3, image.shape)
    image[radius > r] = 0
    return np.clip(image, 0, 255).astype(np.uint8), disc, fovea, (cx, cy, r)
