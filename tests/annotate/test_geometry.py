"""The eight regions: the table of docs/geometry.md, its invariances, refusals, polygons and masks."""
from __future__ import annotations

import math

import numpy as np
import pytest
import shapely

from annotate.fov import FieldOfView, fov_mask
from annotate.geometry import (
    REGION_NAMES,
    RegionGeometry,
    region_at,
    region_label_map,
    region_mask,
    region_polygons,
)
from storage.errors import GeometryError

SHAPE = (150, 220)                 # h, w: small, wider than tall like a fundus photo
DISC, FOVEA = (160.3, 70.6), (88.9, 78.2)   # right-eye-like: disc to the right of the fovea
SUPERIOR_TO_INFERIOR = {1: 1, 2: 3, 3: 2, 4: 4, 5: 6, 6: 5, 7: 8, 8: 7}


def table_region(disc, fovea, x, y) -> int:
    """docs/geometry.md's table read literally, one point at a time (independent of the module)."""
    D = math.dist(disc, fovea)
    u = ((fovea[0] - disc[0]) / D, (fovea[1] - disc[1]) / D)
    n = (u[1], -u[0]) if -u[0] < 0 else (-u[1], u[0])  # the normal whose y points up
    a = (x - disc[0]) * u[0] + (y - disc[1]) * u[1]
    b = (x - disc[0]) * n[0] + (y - disc[1]) * n[1]
    rd, rf = 0.4 * D, 2 * D / 3
    c = (D * D + rd * rd - rf * rf) / (2 * D)
    if (a - D) ** 2 + b * b <= rf * rf and a >= c:
        return 1
    if a * a + b * b <= rd * rd and a <= c:
        return 2 if b > 0 else 3
    if a >= D and abs(b) <= rf:
        return 4
    if a >= 0:
        return 5 if b > 0 else 6
    return 7 if b > 0 else 8


def test_label_map_matches_the_table_of_geometry_md_at_every_pixel():
    labels = region_label_map(DISC, FOVEA, SHAPE)
    expected = np.array(
        [[table_region(DISC, FOVEA, j + 0.5, i + 0.5) for j in range(SHAPE[1])] for i in range(SHAPE[0])]
    )
    assert labels.dtype == np.uint8
    assert np.array_equal(labels, expected)
    assert set(np.unique(labels)) == set(REGION_NAMES)


def test_every_fov_pixel_is_in_exactly_one_region_and_outside_pixels_in_none():
    fov = FieldOfView(110.0, 75.0, 90.0)
    inside = fov_mask(SHAPE, fov)
    labels = region_label_map(DISC, FOVEA, SHAPE, fov_mask=inside)
    assert np.all((labels > 0) == inside)
    polygons = region_polygons(DISC, FOVEA, SHAPE, fov=fov)
    area = sum(p.area for p in polygons.values())
    union = shapely.union_all(list(polygons.values())).area
    assert area == pytest.approx(union, rel=1e-9)          # no overlaps
    assert union == pytest.approx(shapely.box(0, 0, SHAPE[1], SHAPE[0]).intersection(
        shapely.Point(110, 75).buffer(90, quad_segs=64)).area, rel=1e-6)


def test_landmarks_name_the_expected_regions():
    g = RegionGeometry.from_landmarks(DISC, FOVEA, SHAPE)
    up = (g.n[0] * 5, g.n[1] * 5)
    assert region_at(DISC, FOVEA, FOVEA) == 1
    assert region_at(DISC, FOVEA, (DISC[0] + up[0], DISC[1] + up[1])) == 2
    assert region_at(DISC, FOVEA, (DISC[0] - up[0], DISC[1] - up[1])) == 3
    far_temporal = (DISC[0] + 1.8 * g.distance * g.u[0], DISC[1] + 1.8 * g.distance * g.u[1])
    assert region_at(DISC, FOVEA, far_temporal) == 4
    nasal_up = (DISC[0] - g.distance * g.u[0] + 30 * g.n[0], DISC[1] - g.distance * g.u[1] + 30 * g.n[1])
    assert region_at(DISC, FOVEA, nasal_up) == 7
    assert g.n[1] < 0  # superior points up the image


def test_region_at_agrees_with_the_label_map_and_is_zero_outside():
    labels = region_label_map(DISC, FOVEA, SHAPE)
    rng = np.random.default_rng(1)
    for i, j in rng.integers(0, [SHAPE[0], SHAPE[1]], size=(300, 2)):
        assert region_at(DISC, FOVEA, (j + 0.5, i + 0.5), shape=SHAPE) == labels[i, j]
    assert region_at(DISC, FOVEA, (-1.0, 10.0), shape=SHAPE) == 0
    assert region_at(DISC, FOVEA, (5.0, 5.0), shape=SHAPE, fov=FieldOfView(110, 75, 40)) == 0


def test_mirroring_the_photo_mirrors_the_map_and_keeps_every_name():
    w = SHAPE[1]
    labels = region_label_map(DISC, FOVEA, SHAPE)
    mirrored = region_label_map((w - DISC[0], DISC[1]), (w - FOVEA[0], FOVEA[1]), SHAPE)
    assert np.array_equal(mirrored, labels[:, ::-1])


def _rotate(p, angle, centre=(100.0, 80.0)):
    c, s = math.cos(angle), math.sin(angle)
    x, y = p[0] - centre[0], p[1] - centre[1]
    return (centre[0] + c * x - s * y, centre[1] + s * x + c * y)


@pytest.mark.parametrize("angle_degrees", [-35.0, 12.0, 50.0])
def test_rotation_moves_regions_with_the_landmarks(angle_degrees):
    angle = math.radians(angle_degrees)
    points = np.random.default_rng(2).uniform(-100, 300, size=(400, 2))
    disc, fovea = _rotate(DISC, angle), _rotate(FOVEA, angle)
    for p in points:
        assert region_at(disc, fovea, _rotate(p, angle)) == region_at(DISC, FOVEA, p)


def test_upside_down_photo_swaps_superior_and_inferior_names():
    points = np.random.default_rng(3).uniform(-100, 300, size=(400, 2))
    disc, fovea = _rotate(DISC, math.pi), _rotate(FOVEA, math.pi)
    for p in points:
        assert region_at(disc, fovea, _rotate(p, math.pi)) == SUPERIOR_TO_INFERIOR[region_at(DISC, FOVEA, p)]


@pytest.mark.parametrize("scale, shift", [(1.0, (37.25, -12.5)), (2.5, (0.0, 0.0)), (0.4, (3.0, 9.0))])
def test_translation_and_scale_of_both_landmarks_keep_every_region(scale, shift):
    move = lambda p: (p[0] * scale + shift[0], p[1] * scale + shift[1])  # noqa: E731
    points = np.random.default_rng(4).uniform(-100, 300, size=(400, 2))
    for p in points:
        assert region_at(move(DISC), move(FOVEA), move(p)) == region_at(DISC, FOVEA, p)


def test_scaled_photo_has_the_scaled_label_map():
    small = region_label_map((40.25, 30.75), (20.25, 32.75), (60, 80))
    large = region_label_map((80.5, 61.5), (40.5, 65.5), (120, 160))
    # Pixel (i, j) of the small map has its centre at the centre of the large map's 2×2 block,
    # i.e. at the shared corner of four pixels; compare where those four agree.
    blocks = large.reshape(60, 2, 80, 2).transpose(0, 2, 1, 3).reshape(60, 80, 4)
    unanimous = (blocks == blocks[..., :1]).all(axis=2)
    assert unanimous.mean() > 0.95
    assert np.array_equal(small[unanimous], blocks[..., 0][unanimous])


@pytest.mark.parametrize(
    "disc, fovea, words",
    [
        ((100.0, 70.0), (100.0, 70.0), "same place"),
        ((250.0, 70.0), (100.0, 70.0), "outside"),
        ((100.0, 70.0), (100.0, -3.0), "outside"),
        ((100.0, 70.0), (102.0, 70.5), "apart"),
        ((float("nan"), 70.0), (100.0, 70.0), "not a number"),
        ((float("inf"), 70.0), (100.0, 70.0), "not a number"),
    ],
)
def test_degenerate_landmarks_are_refused_with_a_sentence(disc, fovea, words):
    with pytest.raises(GeometryError, match=words):
        region_label_map(disc, fovea, SHAPE)
    with pytest.raises(GeometryError):
        region_polygons(disc, fovea, SHAPE)


def test_polygons_agree_with_the_label_map_away_from_their_edges():
    labels = region_label_map(DISC, FOVEA, SHAPE)
    polygons = region_polygons(DISC, FOVEA, SHAPE)
    jj, ii = np.meshgrid(np.arange(SHAPE[1]) + 0.5, np.arange(SHAPE[0]) + 0.5)
    drawn = np.zeros(SHAPE, np.uint8)
    for code, polygon in polygons.items():
        drawn[shapely.contains_xy(polygon, jj, ii)] = code
    edges = shapely.union_all([p.boundary for p in polygons.values()])
    far = shapely.distance(edges, shapely.points(jj, ii)) > 1.0
    assert np.array_equal(drawn[far], labels[far])
    assert (drawn == labels).mean() >= 0.99


def test_center_mask_at_full_resolution_is_the_label_map():
    labels = region_label_map(DISC, FOVEA, SHAPE)
    mask = region_mask([1, 4], DISC, FOVEA, SHAPE, SHAPE, mode="center")
    assert mask.dtype == np.float32
    assert np.array_equal(mask == 1.0, np.isin(labels, [1, 4]))


def test_area_mask_is_the_covered_fraction_of_each_cell():
    polygons = region_polygons(DISC, FOVEA, SHAPE)
    mask = region_mask([1], DISC, FOVEA, SHAPE, (15, 22), mode="area")  # 10 × 10-px cells
    for i, j in [(7, 8), (3, 3), (5, 5), (9, 11), (2, 9)]:
        cell = shapely.box(j * 10, i * 10, j * 10 + 10, i * 10 + 10)
        exact = polygons[1].intersection(cell).area / 100.0
        assert mask[i, j] == pytest.approx(exact, abs=0.05)
    assert mask.max() == 1.0 and mask.min() == 0.0
    assert mask.mean() == pytest.approx(polygons[1].area / (SHAPE[0] * SHAPE[1]), abs=0.01)


def test_mask_of_a_cropped_box_and_of_the_fov():
    fov = FieldOfView(110.0, 75.0, 60.0)
    inside = fov_mask(SHAPE, fov)
    all_codes = list(REGION_NAMES)
    whole = region_mask(all_codes, DISC, FOVEA, SHAPE, SHAPE, mode="center", fov_mask=inside)
    assert np.array_equal(whole == 1.0, inside)
    cropped = region_mask([1], DISC, FOVEA, SHAPE, (32, 32), mode="center", box=(50, 15, 170, 135))
    # Cell (i, j) of the 120-px box at 32 cells has its centre at 50 + (j + 0.5)·3.75.
    for i in range(32):
        for j in range(32):
            x, y = 50 + (j + 0.5) * 3.75, 15 + (i + 0.5) * 3.75
            assert cropped[i, j] == float(region_at(DISC, FOVEA, (x, y)) == 1)
    assert 0 < cropped.sum() < 32 * 32


def test_mask_computed_in_bands_equals_the_mask_in_one_go(monkeypatch):
    import annotate.geometry as geometry

    fov = FieldOfView(110.0, 75.0, 70.0)
    whole = region_mask([1, 5, 7], DISC, FOVEA, SHAPE, (30, 44), fov_mask=fov_mask(SHAPE, fov))
    monkeypatch.setattr(geometry, "MASK_SAMPLES_PER_BAND", 5000)    # 2 output rows per band
    banded = region_mask([1, 5, 7], DISC, FOVEA, SHAPE, (30, 44), fov_mask=fov_mask(SHAPE, fov))
    assert np.array_equal(whole, banded) and 0 < whole.mean() < 1
