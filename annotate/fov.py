"""Field of view of a fundus photograph and cropping of its black border.

A fundus camera images the retina through a circular aperture; outside it the photo is black.
Many sensors are wider than tall, so the circle is often cut off at the top and bottom (IDRiD's
4288 × 2848, DRIVE). ``detect_fov`` therefore fits the circle only to the part of the FOV's edge
that lies inside the image. The paper crops the black background before resizing (Son et al.,
section 3.1); ``crop_to_fov`` does that and keeps the mapping back to original pixels.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import ArrayLike

from storage.errors import BadImageError

# Detection works on a copy whose longer side is this many pixels: the edge of a 4288-px photo is
# then located to within about 4288 / 512 / 2 ≈ 4 px, far below a lesion's size.
DETECTION_SIDE = 512
# Brightness (0–255, smoothed max channel) below which a pixel counts as black border. The border
# of JPEG photos sits at 0–12; the darkest retina at the FOV edge stays above ~20.
BORDER_LEVEL_MAX = 20
# One pixel's brightest channel at or below this is border, for networks that mask it per pixel.
BLACK_PIXEL_LEVEL = 15
# A retina's brightness varies by more than this (standard deviation, 0–255) inside its field of
# view; a blank page or a flat colour does not. Above WHITE_LEVEL in every channel a pixel is white.
UNIFORM_LEVEL_STD = 4.0
WHITE_LEVEL = 240
COLOUR_MARGIN = 10
# Contour points closer than this (detection pixels) to the image edge belong to the cut, not the circle.
EDGE_MARGIN = 2


@dataclass(frozen=True)
class FieldOfView:
    """Circle of the field of view in original pixel coordinates (continuous, pixel centres at +0.5)."""

    cx: float
    cy: float
    r: float

    def as_tuple(self) -> tuple[float, float, float]:
        return (self.cx, self.cy, self.r)


@dataclass(frozen=True)
class CropMapping:
    """Maps points between a cropped (and possibly resized) photo and the original pixels.

    ``original = (x0, y0) + cropped / scale``; coordinates are continuous, so pixel centres map
    to pixel centres when the scale is 1.
    """

    x0: int
    y0: int
    scale_x: float = 1.0
    scale_y: float = 1.0

    def to_original(self, xy: ArrayLike) -> np.ndarray | tuple[float, float]:
        p = np.asarray(xy, dtype=np.float64)
        out = np.stack([p[..., 0] / self.scale_x + self.x0, p[..., 1] / self.scale_y + self.y0], axis=-1)
        return (float(out[0]), float(out[1])) if p.ndim == 1 else out

    def from_original(self, xy: ArrayLike) -> np.ndarray | tuple[float, float]:
        p = np.asarray(xy, dtype=np.float64)
        out = np.stack([(p[..., 0] - self.x0) * self.scale_x, (p[..., 1] - self.y0) * self.scale_y], axis=-1)
        return (float(out[0]), float(out[1])) if p.ndim == 1 else out


def _fit_circle(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Algebraic (Kåsa) least-squares circle: x² + y² = 2·cx·x + 2·cy·y + k."""
    design = np.stack([2 * x, 2 * y, np.ones_like(x)], axis=1)
    (cx, cy, k), *_ = np.linalg.lstsq(design, x * x + y * y, rcond=None)
    return float(cx), float(cy), float(math.sqrt(max(k + cx * cx + cy * cy, 0.0)))


def _robust_circle(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Circle fit that drops points far from the first fit (notches, labels burnt into the border)."""
    cx, cy, r = _fit_circle(x, y)
    for _ in range(2):
        residual = np.abs(np.hypot(x - cx, y - cy) - r)
        keep = residual <= max(1.5, 3.0 * float(np.median(residual)))
        if keep.sum() < 8 or keep.all():
            break
        x, y = x[keep], y[keep]
        cx, cy, r = _fit_circle(x, y)
    return cx, cy, r


def detect_fov(image_bgr: np.ndarray) -> FieldOfView:
    """Find the circular field of view of a fundus photo (BGR or grey, any size).

    A photo without a black border (already cropped) gets the circle through the image corners,
    so that nothing is masked. A photo with nothing brighter than the border raises BadImageError.
    """
    h, w = image_bgr.shape[:2]
    scale = min(1.0, DETECTION_SIDE / max(h, w))
    small = cv2.resize(image_bgr, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    if small.ndim == 3:  # brightest channel: the border is black in all three, the retina bright in red
        small = np.max(small[..., :3], axis=2) if small.shape[2] > 1 else small[..., 0]
    small = cv2.GaussianBlur(small.astype(np.uint8, copy=False), (5, 5), 0)
    sh, sw = small.shape
    level = min(BORDER_LEVEL_MAX, 0.25 * float(np.percentile(small, 90)))
    mask = (small > max(level, 3.0)).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count <= 1:
        raise BadImageError("The photo is black: no field of view was found; check that it is a fundus photograph.")
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    component = (labels == largest).astype(np.uint8)
    contours, _ = cv2.findContours(component, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    points = np.concatenate([c.reshape(-1, 2) for c in contours]).astype(np.float64)
    x, y = points[:, 0], points[:, 1]
    away = (x >= EDGE_MARGIN) & (x <= sw - 1 - EDGE_MARGIN) & (y >= EDGE_MARGIN) & (y <= sh - 1 - EDGE_MARGIN)
    sx, sy = w / sw, h / sh
    if away.sum() < 16:
        return FieldOfView(w / 2, h / 2, math.hypot(w, h) / 2)
    cx, cy, r = _robust_circle(x[away], y[away])
    # Contour points are centres of the outermost FOV pixels; the edge lies half a pixel further out.
    r += 0.5
    return FieldOfView(cx=(cx + 0.5) * sx, cy=(cy + 0.5) * sy, r=r * math.sqrt(sx * sy))


def no_fundus_reason(image_bgr: np.ndarray, fov: FieldOfView) -> str | None:
    """Why the picture inside ``fov`` cannot be a retina (None when it can be one).

    A retina is lit unevenly (vessels, disc, vignetting), is not blown out to white, and in a
    colour photo is red or orange, never blue. Grey (red-free) photos pass on the first two tests.
    """
    h, w = image_bgr.shape[:2]
    scale = min(1.0, DETECTION_SIDE / max(h, w))
    small = cv2.resize(image_bgr, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    if small.ndim == 2:
        small = small[..., None]
    inside = fov_mask(small.shape, FieldOfView(fov.cx * scale, fov.cy * scale, fov.r * scale))
    pixels = small[inside].reshape(-1, small.shape[2])[:, :3].astype(np.float32)
    if len(pixels) < 16:
        return "the field of view is too small to hold a retina"
    brightest = pixels.max(axis=1)
    if float(brightest.std()) < UNIFORM_LEVEL_STD:
        return "the picture is one flat colour"
    if float((pixels.min(axis=1) >= WHITE_LEVEL).mean()) > 0.5:
        return "the picture is mostly white"
    if pixels.shape[1] == 3:
        blue, _green, red = np.median(pixels, axis=0)
        if red + COLOUR_MARGIN < blue:
            return "its colours are not those of a retina (more blue than red)"
    return None


def fov_mask(shape: Sequence[int], fov: FieldOfView) -> np.ndarray:
    """bool (h, w): True where the pixel centre lies inside the FOV circle."""
    h, w = int(shape[0]), int(shape[1])
    ys = np.arange(h) + 0.5
    square = fov.r**2 - (ys - fov.cy) ** 2
    half = np.sqrt(np.maximum(square, 0.0))
    lo = np.clip(np.ceil(fov.cx - half - 0.5), 0, w).astype(np.int64)       # first column inside
    hi = np.clip(np.floor(fov.cx + half - 0.5) + 1, 0, w).astype(np.int64)  # one past the last
    hi = np.maximum(np.where(square < 0, lo, hi), lo)                       # rows that miss the circle
    # Each row is three runs (outside, inside, outside): fill them without a full-size comparison.
    lengths = np.stack([lo, hi - lo, w - hi], axis=1).ravel()
    values = np.tile(np.array([False, True, False]), h)
    return np.repeat(values, lengths).reshape(h, w)


def crop_box(fov: FieldOfView, shape: Sequence[int]) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1): the FOV's bounding square, in whole pixels, clipped to the image."""
    h, w = int(shape[0]), int(shape[1])
    x0 = max(0, math.floor(fov.cx - fov.r))
    y0 = max(0, math.floor(fov.cy - fov.r))
    x1 = min(w, math.ceil(fov.cx + fov.r))
    y1 = min(h, math.ceil(fov.cy + fov.r))
    if x1 <= x0 or y1 <= y0:
        return (0, 0, w, h)
    return (x0, y0, x1, y1)


def crop_to_fov(
    image: np.ndarray, fov: FieldOfView, size: tuple[int, int] | None = None
) -> tuple[np.ndarray, CropMapping]:
    """Cut the black border away (and resize to ``size`` = (w, h) if given, as for a network input)."""
    x0, y0, x1, y1 = crop_box(fov, image.shape)
    cropped = image[y0:y1, x0:x1]
    if size is None:
        return cropped, CropMapping(x0, y0)
    out_w, out_h = int(size[0]), int(size[1])
    resized = cv2.resize(cropped, (out_w, out_h), interpolation=cv2.INTER_AREA)
    return resized, CropMapping(x0, y0, out_w / (x1 - x0), out_h / (y1 - y0))
