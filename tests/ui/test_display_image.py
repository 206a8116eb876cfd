"""Display copies and view aids: reduced decode, original pixels kept, the file never touched."""
from __future__ import annotations

import hashlib

import cv2
import numpy as np
import pytest

from storage.errors import BadImageError
from tests.ui.conftest import write_fundus
from ui.display_image import ViewAids, apply_view_aids, decode_for_display, reduction_for, to_qimage


def test_reduction_keeps_the_long_side_at_display_size():
    assert reduction_for(4288, 2848) == 2
    assert reduction_for(1429, 949) == 1
    assert reduction_for(8000, 6000, long_side=1000) == 8


def test_decoded_copy_maps_back_to_original_pixels(tmp_path):
    path = write_fundus(tmp_path / "eye.jpg", seed=0, size=(512, 384))
    display = decode_for_display(path, (512, 384), long_side=200)
    assert display.bgr.shape[:2] == (192, 256)
    assert display.scale == pytest.approx(2.0)
    assert display.original_size == (512, 384)


def test_view_aids_change_only_the_copy(tmp_path):
    path = write_fundus(tmp_path / "eye.jpg", seed=1)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    bgr = decode_for_display(path).bgr
    kept = bgr.copy()
    for aids in (ViewAids(green_channel=True), ViewAids(clahe=True),
                 ViewAids(brightness=40, contrast=1.8, green_channel=True, clahe=True)):
        shown = apply_view_aids(bgr, aids)
        assert shown.shape == bgr.shape and shown is not bgr
    assert np.array_equal(bgr, kept)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_green_channel_shows_green_as_grey():
    bgr = np.dstack([np.full((4, 4), v, np.uint8) for v in (10, 120, 200)])
    shown = apply_view_aids(bgr, ViewAids(green_channel=True))
    assert (shown == 120).all()


def test_brightness_and_contrast_saturate_instead_of_wrapping():
    bgr = np.array([[[0, 128, 255]]], np.uint8)
    assert apply_view_aids(bgr, ViewAids(contrast=2.0)).tolist() == [[[0, 128, 255]]]
    assert apply_view_aids(bgr, ViewAids(brightness=-100)).tolist() == [[[0, 28, 155]]]
    assert not ViewAids().active and ViewAids(clahe=True).active


def test_qimage_owns_its_pixels():
    bgr = np.zeros((3, 5, 3), np.uint8)
    bgr[1, 2] = (255, 0, 0)  # blue
    image = to_qimage(bgr)
    del bgr
    assert (image.width(), image.height()) == (5, 3)
    assert image.pixelColor(2, 1).blue() == 255 and image.pixelColor(2, 1).red() == 0


def _truncated_jpeg(path):
    """A real JPEG cut in half: libjpeg alone would fill the missing half with grey."""
    ok, data = cv2.imencode(".jpg", np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8))
    path.write_bytes(data.tobytes()[: len(data) // 2])


@pytest.mark.parametrize("damage", ["not a photo", "truncated", "empty", "missing"])
def test_a_broken_file_is_refused_with_one_sentence_naming_it(tmp_path, damage):
    path = tmp_path / "broken.jpg"
    if damage == "not a photo":
        path.write_bytes(b"not a photo at all")
    elif damage == "truncated":
        _truncated_jpeg(path)
    elif damage == "empty":
        path.write_bytes(b"")
    with pytest.raises(BadImageError) as refused:
        decode_for_display(path, (64, 64))
    message = str(refused.value)
    assert "broken.jpg" in message and message.endswith(".") and "\n" not in message
    assert "Traceback" not in message


def test_fitted_copy_is_shrunk_to_the_window_and_keeps_the_aspect():
    from ui.display_image import render_shown

    bgr = np.zeros((1424, 2144, 3), np.uint8)
    shown = render_shown(bgr, ViewAids(), fit_size=(1000, 800))
    assert (shown.full.width(), shown.full.height()) == (2144, 1424)
    assert (shown.fitted.width(), shown.fitted.height()) == (1000, 664)
    assert render_shown(bgr, ViewAids(), fit_size=(4000, 3000)).fitted is None
