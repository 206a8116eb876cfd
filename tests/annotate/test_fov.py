"""Field of view on synthetic fundus photos, and the crop mapping back to original pixels."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from annotate.fov import CropMapping, FieldOfView, crop_box, crop_to_fov, detect_fov, fov_mask
from storage.errors import BadImageError
from tests.annotate.fundus import synthetic_fundus


@pytest.mark.parametrize(
    "w, h, cx, cy, r",
    [
        (300, 200, 150.0, 100.0, 118.0),    # cut at top and bottom, like IDRiD
        (1430, 950, 700.0, 480.0, 560.0),   # larger than the detection size: downscaled
        (280, 290, 140.0, 146.0, 120.0),    # whole circle, like DRIVE
    ],
)
def test_detects_the_circle_even_when_cut_at_top_and_bottom(w, h, cx, cy, r):
    fov = detect_fov(synthetic_fundus(w, h, cx, cy, r))
    tolerance = max(1.5, 0.006 * w)
    assert fov.cx == pytest.approx(cx, abs=tolerance)
    assert fov.cy == pytest.approx(cy, abs=tolerance)
    assert fov.r == pytest.approx(r, abs=tolerance)


def test_detection_survives_jpeg_compression():
    image = synthetic_fundus(300, 200, 148.0, 102.0, 116.0, seed=3)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 60])
    fov = detect_fov(cv2.imdecode(data, cv2.IMREAD_COLOR))
    assert (fov.cx, fov.cy, fov.r) == pytest.approx((148.0, 102.0, 116.0), abs=2.0)


def test_a_photo_without_border_keeps_every_pixel_and_a_black_one_is_refused():
    bright = np.full((60, 80, 3), 120, np.uint8)
    assert fov_mask((60, 80), detect_fov(bright)).all()
    with pytest.raises(BadImageError, match="black"):
        detect_fov(np.zeros((60, 80, 3), np.uint8))


def test_fov_mask_tests_pixel_centres():
    fov = FieldOfView(20.3, 14.8, 9.7)
    mask = fov_mask((30, 40), fov)
    yy, xx = np.mgrid[0:30, 0:40] + 0.5
    assert np.array_equal(mask, (xx - 20.3) ** 2 + (yy - 14.8) ** 2 <= 9.7**2)
    assert not fov_mask((30, 40), FieldOfView(-50, -50, 5)).any()


def test_crop_keeps_pixels_and_maps_points_both_ways():
    image = synthetic_fundus(300, 200, 150.0, 100.0, 80.0)
    fov = FieldOfView(150.0, 100.0, 80.0)
    cropped, mapping = crop_to_fov(image, fov)
    assert crop_box(fov, image.shape) == (70, 20, 230, 180)
    assert cropped.shape[:2] == (160, 160)
    assert np.array_equal(cropped[5, 7], image[25, 77])
    assert mapping.to_original((7.5, 5.5)) == (77.5, 25.5)
    points = np.array([[10.0, 20.0], [150.25, 99.5], [0.0, 0.0]])
    assert np.allclose(mapping.to_original(mapping.from_original(points)), points)


def test_resized_crop_maps_back_to_original_pixels():
    image = synthetic_fundus(300, 200, 150.0, 100.0, 118.0)
    fov = detect_fov(image)
    network_input, mapping = crop_to_fov(image, fov, size=(64, 64))
    x0, y0, x1, y1 = crop_box(fov, image.shape)
    assert network_input.shape == (64, 64, 3)
    assert mapping.to_original((0.0, 0.0)) == pytest.approx((x0, y0))
    assert mapping.to_original((64.0, 64.0)) == pytest.approx((x1, y1))
    assert isinstance(mapping, CropMapping)
    assert np.allclose(mapping.from_original(mapping.to_original(np.array([[3.0, 60.0]]))), [[3.0, 60.0]])
