"""The eight disc–fovea regions as Qt paths, built once in the landmarks' own frame.

`docs/geometry.md` defines every region through ``a = (p − disc)·u`` and ``b = (p − disc)·n`` and
lengths proportional to ``D = |fovea − disc|``. In the frame (a/D, b/D) the eight shapes never
change; only the similarity transform from that frame to image pixels does. The shapes are
``annotate.geometry.canonical_region_shapes`` (the one construction), turned into QPainterPaths
once per extent, and a landmark drag only swaps one QTransform, which keeps the redraw far below a
frame (16 ms). Clipping to the image and the field of view (``fov_clip_path``) is left to the painter.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import shapely
from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QPainterPath, QPolygonF, QTransform

from annotate.geometry import REGION_NAMES, canonical_region_shapes, region_extent

# Where each region's number is written, in the landmarks' frame (a/D, b/D; b points superior):
# candidates in order, the first that falls inside the image and field of view is used.
# An anchor counts as inside only with this much room (in D) on every side: a number's glyph is
# about 0.06 D at the fitted zoom, so one whose anchor was barely inside hung off the photo's edge.
LABEL_ROOM = 0.06
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


def xy_pair(point: Sequence[float]) -> tuple[float, float]:
    """A stored landmark (a list after a JSON round trip) as the (x, y) tuple the drawing takes."""
    x, y = point
    return (x, y)


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
        """QTransform mapping frame coordinates (a/D, b/D) to image pixels."""
        d = self.distance
        (ux, uy), (nx, ny) = self.axes()
        return QTransform(d * ux, d * uy, d * nx, d * ny, self.disc[0], self.disc[1])


def _path(geometry: shapely.Geometry) -> QPainterPath:
    """A shapely (multi)polygon as one QPainterPath; odd-even fill keeps any hole a hole."""
    path = QPainterPath()
    for polygon in shapely.get_parts(geometry):
        if polygon.geom_type != "Polygon" or polygon.is_empty:
            continue
        for ring in (polygon.exterior, *polygon.interiors):
            path.addPolygon(QPolygonF([QPointF(x, y) for x, y in ring.coords]))
            path.closeSubpath()
    return path


@lru_cache(maxsize=8)
def region_paths_in_frame(extent: float) -> dict[int, QPainterPath]:
    """The eight regions in the landmarks' frame (D = 1), open ones cut at ±``extent``·D.

    ``extent`` only needs to reach past the image corners; the canvas clips to the image/FOV.
    """
    return {code: _path(shape) for code, shape in canonical_region_shapes(extent).items()}


def extent_for(frame: LandmarkFrame, width: int, height: int) -> float:
    """Smallest power of two (units of D) that reaches every image corner from the disc."""
    return region_extent(frame.disc, frame.distance, width, height)


def fov_clip_path(width: float, height: float, fov: tuple[float, float, float] | None) -> QPainterPath:
    """Image rectangle ∩ field-of-view circle (cx, cy, r), in image pixels: where regions exist."""
    clip = QPainterPath()
    clip.addRect(QRectF(0, 0, width, height))
    if fov is not None:
        circle = QPainterPath()
        circle.addEllipse(QPointF(fov[0], fov[1]), fov[2], fov[2])
        clip = clip.intersected(circle)
    return clip


def number_position(code: int, placed: QPainterPath, to_image: QTransform,
                    clip: QPainterPath) -> QPointF | None:
    """Where region ``code``'s number goes, in image pixels; None when none of it is visible.

    The first of its ``LABEL_ANCHORS`` inside image ∩ FOV with ``LABEL_ROOM`` around it (the number
    is drawn centred there); failing those (a thin strip left at the
    edge of the field of view), a point inside the visible part itself (shapely's
    ``representative_point``), so that no visible region goes without its number.
    """
    for a, b in LABEL_ANCHORS[code]:
        room = [to_image.map(QPointF(a + da, b + db)) for da, db in
                ((0, 0), (-LABEL_ROOM, -LABEL_ROOM), (LABEL_ROOM, -LABEL_ROOM),
                 (-LABEL_ROOM, LABEL_ROOM), (LABEL_ROOM, LABEL_ROOM))]
        if all(clip.contains(point) for point in room):
            return room[0]
    visible = placed.intersected(clip)
    if visible.isEmpty():
        return None
    parts = [shapely.Polygon([(p.x(), p.y()) for p in polygon.toList()])
             for polygon in visible.toFillPolygons() if polygon.size() >= 3]
    shape = shapely.union_all([part.buffer(0) for part in parts])
    if shape.is_empty or shape.area < 1.0:
        return None
    point = shape.representative_point()
    return QPointF(point.x, point.y)
