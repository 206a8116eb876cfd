"""Readers' chosen regions as pixels and polygons, for export (``docs/labels.md``).

A region exists only relative to a pair of landmarks (disc and fovea; ``annotate.geometry``). A
reader's regions are drawn with that reader's landmarks; the consensus and the final labels with
the mean of the readers' landmarks (as training draws its cues), else the model's landmarks from
pre-segmentation. Everything is in the photograph's original pixels and inside its field of view.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import shapely

from annotate.fov import FieldOfView, fov_mask
from annotate.geometry import region_label_map, region_polygons
from storage.images import ImageRecord
from storage.labels import Landmarks, ReadState


def shared_landmarks(reads: Iterable[ReadState], model: Landmarks | None = None) -> Landmarks | None:
    """The mean of the readers' landmarks (finished reads first, as training takes them), else ``model``."""
    states = list(reads)
    marks = [s.landmarks for s in states if s.done and s.landmarks is not None] or \
            [s.landmarks for s in states if s.landmarks is not None]
    if not marks:
        return model
    disc_x, disc_y = np.mean([m.disc for m in marks], axis=0)
    fovea_x, fovea_y = np.mean([m.fovea for m in marks], axis=0)
    disc, fovea = (float(disc_x), float(disc_y)), (float(fovea_x), float(fovea_y))
    return Landmarks(disc, fovea, "manual")


def region_code_map(image: ImageRecord, landmarks: Landmarks) -> np.ndarray:
    """uint8 (height, width): region code 1..8 of every pixel, 0 outside the field of view."""
    shape = (image.height, image.width)
    inside = fov_mask(shape, FieldOfView(*image.fov)) if image.fov else None
    return region_label_map(landmarks.disc, landmarks.fovea, shape, inside)


def regions_mask(code_map: np.ndarray, regions: Iterable[int]) -> np.ndarray:
    """uint8 0/255 mask of the union of ``regions`` in a ``region_code_map``."""
    wanted = np.zeros(9, bool)
    wanted[[int(c) for c in regions]] = True
    return wanted[code_map].astype(np.uint8) * 255


def regions_shape(image: ImageRecord, landmarks: Landmarks, regions: Iterable[int]) -> shapely.Geometry:
    """The union of ``regions`` as a shapely geometry, clipped to the photo and its field of view."""
    fov = FieldOfView(*image.fov) if image.fov else None
    polygons = region_polygons(landmarks.disc, landmarks.fovea, (image.height, image.width), fov)
    return shapely.union_all([polygons[int(code)] for code in regions])


def outer_rings(geometry: shapely.Geometry) -> tuple[list[list[float]], bool]:
    """Each polygon's outline as [x1, y1, x2, y2, ...] (COCO's polygon form), and whether any
    polygon has a hole (which that form cannot say)."""
    parts = [g for g in shapely.get_parts(geometry) if isinstance(g, shapely.Polygon) and not g.is_empty]
    rings = []
    for polygon in parts:
        coords = np.asarray(polygon.exterior.coords)[:-1]
        if len(coords) >= 3:
            rings.append([round(float(v), 2) for v in coords.ravel()])
    return rings, any(len(p.interiors) for p in parts)


def uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO's uncompressed run-length encoding of a 0/1 mask: run lengths in column-major order,
    starting with a run of zeros."""
    flat = (np.asarray(mask).ravel(order="F") > 0).astype(np.int8)
    changes = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0] + counts
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": counts}
