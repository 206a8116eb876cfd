"""The region picture: tinted inside the field of view, untouched outside it."""
from __future__ import annotations

import numpy as np

from annotate.fov import FieldOfView
from annotate.overlay import REGION_COLOURS_BGR, render_region_overlay


def test_regions_are_tinted_inside_the_fov_only():
    photo = np.full((120, 160, 3), 100, np.uint8)
    fov = FieldOfView(80.0, 60.0, 55.0)
    drawn = render_region_overlay(photo, (110.0, 55.0), (60.0, 62.0), fov)
    assert drawn.shape == photo.shape
    assert np.array_equal(drawn[2, 2], photo[2, 2])                       # corner: outside the FOV
    macula_pixel = drawn[75, 50].astype(int)                              # below-left of the fovea
    expected = (0.65 * 100 + 0.35 * np.array(REGION_COLOURS_BGR[1])).round()
    assert np.abs(macula_pixel - expected).max() <= 1
    assert not np.array_equal(drawn, photo)
