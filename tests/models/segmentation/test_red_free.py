"""Red-free (grey) photos: told apart from colour ones, whichever way the file stores them."""
import cv2
import numpy as np

from models.segmentation.red_free import is_red_free, red_free_version
from tests.models.fundus_synthetic import synthetic_fundus


def test_a_colour_fundus_is_not_red_free():
    image_bgr, *_ = synthetic_fundus(320, 240)
    assert not is_red_free(image_bgr)


def test_the_green_channel_on_three_channels_is_red_free():
    image_bgr, *_ = synthetic_fundus(320, 240)
    grey = red_free_version(image_bgr)
    assert (grey[..., 0] == image_bgr[..., 1]).all() and (grey[..., 2] == image_bgr[..., 1]).all()
    assert is_red_free(grey)


def test_a_grey_jpeg_stays_red_free_through_colour_noise_and_single_channel_files():
    image_bgr, *_ = synthetic_fundus(320, 240)
    grey = red_free_version(image_bgr)
    ok, colour_jpeg = cv2.imencode(".jpg", grey, [cv2.IMWRITE_JPEG_QUALITY, 70])   # 4:2:0 chroma noise
    assert ok and is_red_free(cv2.imdecode(colour_jpeg, cv2.IMREAD_COLOR))
    ok, one_channel = cv2.imencode(".jpg", grey[..., 1])
    decoded = cv2.imdecode(one_channel, cv2.IMREAD_COLOR)   # as the importer decodes it: three equal channels
    assert ok and decoded.shape == grey.shape and is_red_free(decoded)
    assert is_red_free(grey[..., 1])


def test_a_black_picture_is_left_to_the_no_fundus_check():
    assert not is_red_free(np.zeros((64, 64, 3), np.uint8))
