"""Which disc–fovea regions are suggested as holding a lesion of each type: the one rule the
workstation, ``presegment`` and the benches share.

A lesion type's probability map is cut at its pixel threshold into spots (8-connected). A spot
counts when it passes its type's ``SuggestionRule`` (against false suggestions on healthy eyes);
a region is suggested when the spots that count cover at least ``least_area`` × the disc's area of
it. Each spot's facts are measured once (``measure_spots``), so a bench can try many rules on them
(``spots_kept``, ``regions_suggested``): bench/bench_suggestions.py chose the shipped rules, which
each lesion network stores (``LesionNetConfig.peaks`` and ``suggestion_rules``; docs/benchmarks.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from annotate.fov import FieldOfView, fov_mask
from annotate.geometry import region_label_map
from models.segmentation.disc_cup import DISC_PER_FOV
from models.segmentation.stored_names import LESION_CHANNELS, LESION_NAMES

if TYPE_CHECKING:
    from models.segmentation.pipeline import PipelineResult


@dataclass(frozen=True)
class SuggestionRule:
    """What one lesion type's spots must pass to count towards a suggested region."""
    peak: float = 0.0              # the spot's most probable pixel reaches this (0: the threshold alone)
    least_area: float = 5e-4       # a region is suggested when counted spots cover this × the disc area of it
    max_vessel_share: float = 1.0  # at most this share of the spot's pixels lie on the vessel map (1: no limit)
    vessel_clearance: float = 0.0  # its pixels lie this far from the vessel map or more, on average (lesion-grid px)
    disc_clearance: float = 0.0    # the spot's centre lies this many disc diameters or more from the disc's centre
    rim_clearance: float = 0.0     # ... and this share of the FOV radius or more inside its rim
    least_spots: int = 1           # a region is suggested only with this many counted spots in it
    photo_least_spots: int = 1     # nothing of the type is suggested on a photo with fewer counted spots


@dataclass
class Spots:
    """The spots of one lesion type on one photo, one row each, on the lesion network's grid."""
    peak: np.ndarray               # (n,) most probable pixel
    region_pixels: np.ndarray      # (n, 8) pixels in each region (regions 1..8)
    vessel_share: np.ndarray       # (n,) share of the spot's pixels on the vessel map (0 without one)
    vessel_distance: np.ndarray    # (n,) mean distance of its pixels to the vessel map, grid px (inf without one)
    centre: np.ndarray             # (n, 2) x, y: the spot's mean pixel centre on the grid
    labels: np.ndarray             # (h, w) int32: 0 background, i + 1 the pixels of row i
    disc_distance: np.ndarray | None = None   # (n,) centre to disc centre, disc diameters (measure_photo)
    rim_distance: np.ndarray | None = None    # (n,) centre to FOV rim, share of the FOV radius (measure_photo)


def measure_spots(prob: np.ndarray, threshold: float, regions: np.ndarray,
                  vessels: np.ndarray | None = None) -> Spots:
    """The spots of ``prob`` at ``threshold``: their peaks, pixels per region (``regions``: a region
    label map 0..8 on the same grid) and share of pixels on ``vessels`` (a boolean map, or None)."""
    mask = prob >= threshold
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    labels = np.asarray(labels, np.int32)
    n = count - 1
    inside = np.asarray(labels[mask], np.intp)
    peak = np.zeros(count, np.float32)
    np.maximum.at(peak, inside, prob[mask].astype(np.float32))
    region_pixels = np.bincount(inside * 9 + regions[mask], minlength=count * 9).reshape(count, 9)[1:, 1:]
    area = np.bincount(inside, minlength=count)[1:]
    vessel_share, vessel_distance = np.zeros(n, np.float64), np.full(n, np.inf)
    if vessels is not None and n:
        vessel_share = np.bincount(labels[mask & vessels], minlength=count)[1:] / np.maximum(area, 1)
        if vessels.any():
            distance = cv2.distanceTransform((~vessels).astype(np.uint8), cv2.DIST_L2, 3)
            vessel_distance = np.bincount(inside, distance[mask], count)[1:] / np.maximum(area, 1)
    ys, xs = np.nonzero(mask)
    centre = np.stack([np.bincount(inside, xs + 0.5, count)[1:], np.bincount(inside, ys + 0.5, count)[1:]], axis=1)
    return Spots(peak[1:], region_pixels, vessel_share, vessel_distance, centre / np.maximum(area, 1)[:, None], labels)


def spots_kept(spots: Spots, rule: SuggestionRule) -> np.ndarray:
    """(n,) bool: the spots that count under ``rule``."""
    kept = (spots.peak >= rule.peak) & (spots.vessel_share <= rule.max_vessel_share)
    if rule.vessel_clearance > 0:
        kept &= spots.vessel_distance >= rule.vessel_clearance
    if rule.disc_clearance > 0 and spots.disc_distance is not None:
        kept &= spots.disc_distance >= rule.disc_clearance
    if rule.rim_clearance > 0 and spots.rim_distance is not None:
        kept &= spots.rim_distance >= rule.rim_clearance
    return kept


def regions_suggested(spots: Spots, kept: np.ndarray, disc_area: float,
                      rule: SuggestionRule) -> tuple[list[int], np.ndarray]:
    """The regions (1..8) ``rule`` suggests from the counted spots ``kept``, and the counted area
    in each region (8,), in disc areas."""
    counted = spots.region_pixels[kept]
    areas = counted.sum(axis=0) / disc_area
    if len(counted) < rule.photo_least_spots:
        return [], areas
    counts = (counted > 0).sum(axis=0)
    return [r + 1 for r in range(8) if areas[r] >= rule.least_area and counts[r] >= rule.least_spots], areas


def on_grid(prob: np.ndarray, to_map: np.ndarray, to_grid: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A map whose affine from original pixels is ``to_map``, resampled (bilinear) onto the grid whose
    affine is ``to_grid``, of ``shape`` (h, w); zero outside the map."""
    grid_to_original = cv2.invertAffineTransform(to_grid.astype(np.float64))
    matrix = to_map[:, :2].astype(np.float64) @ grid_to_original   # grid -> map, continuous coordinates
    matrix[:, 2] += to_map[:, 2]
    matrix[:, 2] += matrix[:, :2].sum(axis=1) * 0.5 - 0.5   # continuous -> OpenCV pixel centres
    return cv2.warpAffine(prob.astype(np.float32), matrix, (shape[1], shape[0]),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT)


@dataclass
class PhotoSpots:
    """Every lesion type's spots on one photo, and the disc's area on the lesion grid."""
    spots: dict[str, Spots]        # by channel (MA, HE, EX, SE)
    disc_area: float               # pixels of the lesion grid
    disc: tuple[float, float]      # disc centre on the lesion grid
    disc_diameter: float           # pixels of the lesion grid
    fov: FieldOfView               # on the lesion grid
    regions: np.ndarray            # (h, w) region label map 0..8 on the lesion grid


def measure_photo(result: PipelineResult) -> PhotoSpots:
    """The spots of each lesion layer of ``result`` at its threshold, on the lesion network's grid,
    with the regions of the result's disc and fovea and its vessel layer (when the vessel network
    ran). Raises ``GeometryError`` when disc and fovea cannot define regions."""
    first = result.layers[LESION_NAMES[LESION_CHANNELS[0]]]
    to_grid, shape = first.to_map, first.prob.shape
    k = float(to_grid[0, 0])
    point = lambda p: (p[0] * k + to_grid[0, 2], p[1] * k + to_grid[1, 2])
    fov = result.fov
    assert result.disc is not None and result.fovea is not None   # the pipeline places both before lesions
    grid_fov = FieldOfView(*point((fov.cx, fov.cy)), fov.r * k)
    regions = region_label_map(point(result.disc), point(result.fovea), shape, fov_mask(shape, grid_fov))
    vessel_layer, vessels = result.layers.get("vessels"), None
    if vessel_layer is not None:
        vessels = on_grid(vessel_layer.prob, vessel_layer.to_map, to_grid, shape) >= result.thresholds["vessels"]
    disc_diameter = result.disc_diameter or 2 * fov.r * DISC_PER_FOV
    spots = {channel: measure_spots(np.asarray(result.layers[LESION_NAMES[channel]].prob, np.float32),
                                    result.thresholds[LESION_NAMES[channel]], regions, vessels)
             for channel in LESION_CHANNELS}
    disc = point(result.disc)
    for found in spots.values():
        found.disc_distance = np.hypot(*(found.centre - disc).T) / (disc_diameter * k)
        found.rim_distance = 1 - np.hypot(found.centre[:, 0] - grid_fov.cx, found.centre[:, 1] - grid_fov.cy) / grid_fov.r
    return PhotoSpots(spots, float(np.pi * (disc_diameter * k / 2) ** 2), point(result.disc), disc_diameter * k,
                      grid_fov, regions)


def suggest(result: PipelineResult, photo: PhotoSpots, rules: dict[str, SuggestionRule]) -> None:
    """Fill ``result.lesion_regions`` and ``lesion_area_by_region`` by ``rules`` (per channel)."""
    for channel, spots in photo.spots.items():
        rule, name = rules.get(channel, SuggestionRule()), LESION_NAMES[channel]
        regions, areas = regions_suggested(spots, spots_kept(spots, rule), photo.disc_area, rule)
        result.lesion_area_by_region[name] = {r + 1: float(a) for r, a in enumerate(areas) if a > 0}
        result.lesion_regions[name] = regions
