"""A picture of the eight regions over a photograph (for the ``regions`` command and reports)."""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from annotate.fov import FieldOfView, fov_mask
from annotate.geometry import REGION_NAMES, region_label_map, region_polygons

# One colour per region (BGR), chosen to stay apart on an orange fundus; index = region code.
REGION_COLOURS_BGR: dict[int, tuple[int, int, int]] = {
    1: (60, 220, 255),    # macula: yellow
    2: (255, 140, 40),    # superior disc: blue
    3: (200, 60, 20),     # inferior disc: dark blue
    4: (80, 200, 80),     # temporal: green
    5: (230, 90, 200),    # superotemporal: violet
    6: (150, 40, 150),    # inferotemporal: purple
    7: (240, 220, 90),    # superonasal: cyan
    8: (150, 150, 40),    # inferonasal: teal
}
OVERLAY_ALPHA = 0.35


def render_region_overlay(
    image_bgr: np.ndarray,
    disc: Sequence[float],
    fovea: Sequence[float],
    fov: FieldOfView | None = None,
    alpha: float = OVERLAY_ALPHA,
) -> np.ndarray:
    """The photo with translucent regions, their outlines, names, and the two landmarks."""
    h, w = image_bgr.shape[:2]
    inside = fov_mask((h, w), fov) if fov is not None else None
    labels = region_label_map(disc, fovea, (h, w), fov_mask=inside)
    palette = np.zeros((256, 1, 3), np.uint8)   # a lookup table: code -> colour
    for code, colour in REGION_COLOURS_BGR.items():
        palette[code, 0] = colour
    tint = cv2.LUT(cv2.merge([labels, labels, labels]), palette)
    blended = cv2.addWeighted(image_bgr, 1 - alpha, tint, alpha, 0)
    out = image_bgr.copy()
    np.copyto(out, blended, where=(labels > 0)[:, :, None])
    # Outlines where the region changes (a morphological gradient of the codes); thicker on large
    # photos so that they survive downscaling on screen.
    thickness = max(2, round(max(h, w) / 800))
    kernel = np.ones((thickness, thickness), np.uint8)
    edges = cv2.morphologyEx(labels, cv2.MORPH_GRADIENT, kernel)
    out[edges > 0] = (255, 255, 255)
    scale = max(0.35, max(h, w) / 1600)
    for (x, y), colour in ((disc, (255, 255, 255)), (fovea, (0, 0, 0))):
        cv2.drawMarker(out, (int(round(x)), int(round(y))), colour, cv2.MARKER_CROSS,
                       max(8, int(20 * scale)), max(1, thickness))
    for code, polygon in region_polygons(disc, fovea, (h, w), fov=fov).items():
        if polygon.is_empty:
            continue
        point = polygon.representative_point()
        _label(out, REGION_NAMES[code], (int(point.x), int(point.y)), scale)
    return out


def _label(image: np.ndarray, text: str, centre: tuple[int, int], scale: float) -> None:
    font = cv2.FONT_HERSHEY_SIMPLEX
    weight = max(1, int(round(2 * scale)))
    (tw, th), _ = cv2.getTextSize(text, font, scale, weight)
    origin = (centre[0] - tw // 2, centre[1] + th // 2)
    cv2.putText(image, text, origin, font, scale, (0, 0, 0), weight + 2, cv2.LINE_AA)
    cv2.putText(image, text, origin, font, scale, (255, 255, 255), weight, cv2.LINE_AA)
