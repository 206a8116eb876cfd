"""The drawn regions are the regions of docs/geometry.md: same pixels as annotate.geometry."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF

from annotate.geometry import region_at
from ui.region_shapes import LandmarkFrame, extent_for, region_paths_in_frame

SHAPE = (2848, 4288)  # h, w of an IDRiD photo
LANDMARKS = {
    "right eye": ((3300.0, 1350.0), (2100.0, 1500.0)),
    "left eye": ((950.0, 1300.0), (2200.0, 1420.0)),
    "tilted": ((1500.0, 900.0), (2300.0, 1900.0)),
    "vertical axis": ((2000.0, 700.0), (2000.0, 1900.0)),
}


def drawn_region(paths, frame: LandmarkFrame, x: float, y: float) -> list[int]:
    inverse, ok = frame.to_image().inverted()
    assert ok
    point = inverse.map(QPointF(x, y))
    return [code for code, path in paths.items() if path.contains(point)]


@pytest.mark.parametrize("name", sorted(LANDMARKS))
def test_drawn_regions_match_geometry_except_on_boundaries(qapp, name):
    disc, fovea = LANDMARKS[name]
    frame = LandmarkFrame(disc, fovea)
    paths = region_paths_in_frame(extent_for(frame, SHAPE[1], SHAPE[0]))
    rng = np.random.default_rng(1)
    mismatches = 0
    for x, y in rng.uniform((0, 0), (SHAPE[1], SHAPE[0]), size=(1500, 2)):
        expected = region_at(disc, fovea, (x, y), shape=SHAPE)
        drawn = drawn_region(paths, frame, x, y)
        if drawn != [expected]:
            # Allowed only within half a pixel of a boundary (curves are drawn as polygons).
            near = {region_at(disc, fovea, (x + dx, y + dy), shape=SHAPE)
                    for dx, dy in ((0.5, 0), (-0.5, 0), (0, 0.5), (0, -0.5))}
            assert len(near) > 1, (x, y, expected, drawn)
            mismatches += 1
    assert mismatches <= 3


def test_every_image_corner_is_inside_the_drawn_extent(qapp):
    disc, fovea = LANDMARKS["left eye"]
    frame = LandmarkFrame(disc, fovea)
    paths = region_paths_in_frame(extent_for(frame, SHAPE[1], SHAPE[0]))
    for corner in ((0.5, 0.5), (SHAPE[1] - 0.5, 0.5), (0.5, SHAPE[0] - 0.5),
                   (SHAPE[1] - 0.5, SHAPE[0] - 0.5)):
        assert len(drawn_region(paths, frame, *corner)) == 1


def test_superior_stays_up_in_both_eyes(qapp):
    for disc, fovea in (LANDMARKS["right eye"], LANDMARKS["left eye"]):
        frame = LandmarkFrame(disc, fovea)
        paths = region_paths_in_frame(8.0)
        above_disc = (disc[0], disc[1] - 0.2 * frame.distance)
        assert drawn_region(paths, frame, *above_disc) == [2]  # superior disc


def test_a_number_is_not_written_where_it_would_hang_off_the_photo(qapp):
    # A new-user trial: region 6's number sat on the bottom edge of an IDRiD photo (its anchor barely
    # inside), half of it or all of it below the picture; the next anchor, well inside, is used now.
    from PySide6.QtCore import QRectF
    from PySide6.QtGui import QPainterPath, QTransform

    from ui.region_shapes import number_position

    to_image = QTransform(200, 0, 0, -200, 500, 500)      # D = 200 px, b (superior) points up
    clip = QPainterPath()
    clip.addRect(QRectF(0, 0, 1000, 712))                 # the first anchor (1.05, -1.05) is at y = 710
    region = QPainterPath()
    region.addRect(QRectF(0, 0, 1000, 1000))
    point = number_position(6, region, to_image, clip)
    assert (point.x(), point.y()) == pytest.approx((610, 650))   # the second, (0.55, -0.75)
    clip = QPainterPath()
    clip.addRect(QRectF(0, 0, 1000, 1000))
    point = number_position(6, region, to_image, clip)
    assert (point.x(), point.y()) == pytest.approx((710, 710))   # with room, the first as before


def test_the_workstations_numbers_are_centred_on_their_anchors(qapp):
    from ui.canvas_items import RegionOverlay

    overlay = RegionOverlay()
    for number in overlay.numbers.values():
        box = number.transform().mapRect(number.boundingRect())
        assert box.center().x() == pytest.approx(0, abs=0.01) and box.center().y() == pytest.approx(0, abs=0.01)
