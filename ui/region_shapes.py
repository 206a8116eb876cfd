"""The eight disc–fovea regions as Qt paths, built once in the landmarks' own frame.

`geometry.md` defines every region through ``a = (p − disc)·u`` and ``b = (p − disc)·n`` and
lengths proportional to ``D = |fovea − disc|``. In the frame (a/D, b/D) the eight shapes never
change; only the similarity transform from that frame to image pixels does. So the paths are
built once (QPainterPath boolean operations, a few ms) and a landmark drag only swaps one
QTransform, which keeps the redraw far below a frame (16 ms). Clipping to the image and the field
of view is left to the painter (``canvas_items.RegionOverlay``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QPainterPath, QTransform

from annotate.geometry import DISC_RADIUS_FRACTION, FOVEA_RADIUS_FRACTION, REGION_NAMES

# Son et al. §2.1: disc circle radius 2/5·D, fovea circle radius 2/3·D (geometry.md, step 1).
DISC_RADIUS = DISC_RADIUS_FRACTION
FOVEA_RADIUS = FOVEA_RADIUS_FRACTION
# The common chord of the two circles (geometry.md, step 2), in units of D.
CHORD = (1.0 + DISC_RADIUS**2 - FOVEA_RADIUS**2) / 2.0

# Paths are built with D = FRAME_UNIT: Qt flattens curves with an absolute tolerance, so a frame
# where D = 1 would turn the circles into coarse polygons.
FRAME_UNIT = 1000.0

# Where each region's number is written, in the landmarks' frame (a/D, b/D; b points superior):
# candidates in order, the first that falls inside the image and field of view is used.
LABEL_ANCHORS: dict[int, tuple[tuple[float, float], ...]] = {
    1: ((1.0, 0.42), (1.0, -0.42)),
    2: ((-0.02, 0.24),),
    3: ((-0.02, -0.24),),
    4: ((1.9, 0.0), (1.75, 0.3), (1.75, -0.3)),
    5: ((1.05, 1.05), (0.55, 0.75), (1.6, 0.9), (0.3, 0.55)),
    6: ((1.05, -1.05), (0.55, -0.75), (1.6, -0.9), (0.3, -0.55)),
    7: ((-0.75, 0.75), (-0.5, 0.5), (-0.45, 0.25), (-1.0, 0.4)),
    8: ((-0.75, -0.75), (-0.5, -0.5), (-0.45, -0.25), (-1.0, -0.4)),
}


def display_name(code: int) -> str:
    """'superotemporal' -> 'Superotemporal', 'superior_disc' -> 'Superior disc'."""
    return REGION_NAMES[code].replace("_", " ").capitalize()


@dataclass(frozen=True)
class LandmarkFrame:
    """The similarity transform between the landmarks' frame and image pixels."""

    disc: tuple[float, float]
    fovea: tuple[float, float]

    @property
    def distance(self) -> float:
        return math.hypot(self.fovea[0] - self.disc[0], self.fovea[1] - self.disc[1])

    def axes(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """u (disc toward fovea, temporal) and n (perpendicular, pointing up in the image)."""
        d = self.distance
        ux, uy = (self.fovea[0] - self.disc[0]) / d, (self.fovea[1] - self.disc[1]) / d
        # The perpendicular with negative y is "superior"; on a vertical axis the same tie rule
        # as annotate.geometry.RegionGeometry, so drawing and hit-testing agree.
        nx, ny = (uy, -ux) if ux > 0 else (-uy, ux)
        return (ux, uy), (nx, ny)

    def to_image(self) -> QTransform:
        """QTransform mapping frame coordinates (a, b in units of D/FRAME_UNIT) to image pixels."""
        d = self.distance / FRAME_UNIT
        (ux, uy), (nx, ny) = self.axes()
        return QTransform(d * ux, d * uy, d * nx, d * ny, self.disc[0], self.disc[1])


def _circle(cx: float, cy: float, r: float) -> QPainterPath:
    path = QPainterPath()
    path.addEllipse(QPointF(cx, cy), r, r)
    return path


def _rect(x0: float, y0: float, x1: float, y1: float) -> QPainterPath:
    path = QPainterPath()
    path.addRect(QRectF(QPointF(x0, y0), QPointF(x1, y1)).normalized())
    return path


@lru_cache(maxsize=8)
def region_paths_in_frame(extent: float) -> dict[int, QPainterPath]:
    """The eight regions in the landmarks' frame (D = FRAME_UNIT), open ones cut at ±``extent``·D.

    ``extent`` only needs to reach past the image corners; the canvas clips to the image/FOV.
    """
    k = FRAME_UNIT
    e = float(extent) * k
    fovea = _circle(k, 0.0, FOVEA_RADIUS * k)
    disc = _circle(0.0, 0.0, DISC_RADIUS * k)
    beyond_chord = _rect(CHORD * k, -e, e, e)
    macula = fovea.intersected(beyond_chord)
    disc_part = disc.subtracted(beyond_chord)
    upper, lower = _rect(-e, 0.0, e, e), _rect(-e, -e, e, 0.0)
    taken = macula.united(disc_part)
    temporal = _rect(k, -FOVEA_RADIUS * k, e, FOVEA_RADIUS * k).subtracted(taken)
    taken_t = taken.united(temporal)
    temporal_half = _rect(0.0, -e, e, e)
    nasal_half = _rect(-e, -e, 0.0, e)
    paths = {
        1: macula,
        2: disc_part.intersected(upper),
        3: disc_part.intersected(lower),
        4: temporal,
        5: temporal_half.intersected(upper).subtracted(taken_t),
        6: temporal_half.intersected(lower).subtracted(taken_t),
        7: nasal_half.intersected(upper).subtracted(disc_part),
        8: nasal_half.intersected(lower).subtracted(disc_part),
    }
    return paths


def extent_for(frame: LandmarkFrame, width: int, height: int) -> float:
    """Smallest power of two (units of D) that reaches every image corner from the disc."""
    reach = max(math.hypot(cx - frame.disc[0], cy - frame.disc[1])
                for cx, cy in ((0, 0), (width, 0), (0, height), (width, height)))
    need = reach / max(frame.distance, 1e-6) + 1.0
    return float(2 ** math.ceil(math.log2(max(need, 4.0))))
