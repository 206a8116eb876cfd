"""Red-free photos (grey or green-tinted): told apart from colour ones, whichever way the file stores them."""
import cv2
import numpy as np
import pytest
import torch

from annotate.fov import FieldOfView
from models.segmentation.landmarks import LocatorConfig, build_locator, locate_classical, locate_learned_batch
from models.segmentation.lesions import LESION_NAMES
from models.segmentation.pipeline import load_pipeline_models, run_pipeline_batch
from models.segmentation.red_free import (
    VESSEL_PRIOR_WEIGHT,
    is_red_free,
    pseudo_colour,
    red_free_version,
    vessel_convergence,
)
from models.segmentation.stored_names import RED_FREE_NOTE
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


def test_a_dark_or_a_reddish_colour_fundus_is_not_red_free():
    image_bgr, *_ = synthetic_fundus(320, 240)
    dark = (image_bgr * 0.15).astype(np.uint8)   # lit only a little above the black border
    reddish = (image_bgr * np.array([0.4, 0.4, 1.0])).astype(np.uint8)   # BGR: green and blue faded
    ok, colour_jpeg = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, 70])
    assert ok and not is_red_free(cv2.imdecode(colour_jpeg, cv2.IMREAD_COLOR))
    assert not is_red_free(dark) and not is_red_free(reddish) and not is_red_free(reddish[..., ::-1])


def test_a_green_export_is_red_free_with_red_and_blue_zero_faint_or_jpeg_noisy():
    image_bgr, *_ = synthetic_fundus(320, 240)
    green = image_bgr * np.array([0, 1, 0], np.uint8)
    assert is_red_free(green) and is_red_free(green[..., ::-1])   # either channel order
    ok, jpeg = cv2.imencode(".jpg", green, [cv2.IMWRITE_JPEG_QUALITY, 70])
    assert ok and is_red_free(cv2.imdecode(jpeg, cv2.IMREAD_COLOR))
    g = image_bgr[..., 1].astype(np.float32)
    faint = np.stack([0.1 * g + 4, g, 0.15 * g + 6], axis=-1).astype(np.uint8)   # a camera's leak into red and blue
    assert is_red_free(faint)
    assert (red_free_version(faint) == red_free_version(image_bgr)).all()   # read from the same green


def test_a_colour_photo_with_a_few_green_labels_is_not_red_free():
    image_bgr, *_ = synthetic_fundus(320, 240)
    labelled = image_bgr.copy()
    labelled[:40] = (0, 255, 0)   # a camera's green caption band over a sixth of the picture
    assert not is_red_free(labelled)


def test_a_black_picture_is_left_to_the_no_fundus_check():
    assert not is_red_free(np.zeros((64, 64, 3), np.uint8))


def test_pseudo_colour_gives_grey_the_colours_of_a_fundus_and_keeps_black_black():
    grey = np.repeat(np.array([[[0], [60], [120]]], np.uint8), 3, axis=2)
    coloured = pseudo_colour(grey)
    assert (coloured[0, 0] == 0).all()
    for red, green, blue in coloured[0, 1:].astype(int):
        assert red > green > blue
    assert (coloured[..., 1] == grey[..., 1]).all()   # the green, which the vessels are read from, is kept


def test_vessel_convergence_is_densest_at_the_disc_not_at_a_bright_spot():
    image_bgr, disc, fovea, (cx, cy, r) = synthetic_fundus(320, 240)
    vessels = np.zeros(image_bgr.shape[:2], np.float32)
    for angle in np.linspace(0.3, 5.9, 6):   # the synthetic photo's vessels, leaving the disc
        end = (int(disc[0] + 90 * np.cos(angle)), int(disc[1] + 90 * np.sin(angle)))
        cv2.line(vessels, (int(disc[0]), int(disc[1])), end, 1.0, 3)
    density = vessel_convergence(vessels, FieldOfView(cx, cy, r))
    y, x = np.unravel_index(int(np.argmax(density)), density.shape)
    assert np.hypot(x - disc[0], y - disc[1]) < 2 * r / 8 / 2 and density.max() == pytest.approx(1.0)


def test_a_disc_prior_moves_the_locators_disc_and_leaves_its_fovea():
    config = LocatorConfig(decoder_channels=(8, 8, 8, 8), canvas=(64, 48))
    model = build_locator(config).eval()
    image = np.zeros((240, 320, 3), np.uint8)
    prior = np.zeros((240, 320), np.float32)
    prior[150:160, 60:70] = 50.0   # far stronger than an untrained network's logits
    plain, steered = locate_learned_batch(model, [image, image], config, torch.device("cpu"), [None, prior])
    assert np.hypot(steered.disc[0] - 65, steered.disc[1] - 155) < 10 and steered.disc_confidence > 0.9
    assert steered.fovea == pytest.approx(plain.fovea)


def test_the_pipeline_reads_a_red_free_photo_as_one_and_suggests_no_lesions(tiny_weights):
    image_bgr, *_ = synthetic_fundus(320, 240)
    models, _ = load_pipeline_models(tiny_weights, "cpu")
    green = image_bgr * np.array([0, 1, 0], np.uint8)
    colour, grey, tinted = run_pipeline_batch([image_bgr, red_free_version(image_bgr), green], models)
    assert not colour.red_free and RED_FREE_NOTE not in colour.messages and "haemorrhages" in colour.layers
    for red_free in (grey, tinted):
        assert red_free.red_free and RED_FREE_NOTE in red_free.messages and red_free.to_json()["red_free"]
        assert red_free.lesion_regions == {} and not any(name in red_free.layers for name in LESION_NAMES.values())
        assert red_free.disc is not None and red_free.fovea is not None
        assert "vessels" in red_free.layers and "disc" in red_free.layers
    # Read from the same green, a green export gets the grey photo's disc, fovea and vessels.
    assert tinted.disc == pytest.approx(grey.disc) and tinted.fovea == pytest.approx(grey.fovea)
    assert (tinted.layers["vessels"].prob == grey.layers["vessels"].prob).all()


def test_the_vessels_keep_the_classical_disc_off_an_exudate_brighter_than_it():
    image_bgr, disc, fovea, (cx, cy, r) = synthetic_fundus(320, 240)
    exudate = (int(cx + 0.2 * r), int(cy + 0.45 * r))   # below the macula, far from the disc
    cv2.circle(image_bgr, exudate, 7, (120, 255, 255), -1)   # bright yellow: in grey, brighter than the disc
    grey = red_free_version(image_bgr)[..., ::-1]
    fov, dd = FieldOfView(cx, cy, r), 2 * r / 8
    vessels = np.zeros(grey.shape[:2], np.float32)
    for angle in np.linspace(0.3, 5.9, 6):
        end = (int(disc[0] + 90 * np.cos(angle)), int(disc[1] + 90 * np.sin(angle)))
        cv2.line(vessels, (int(disc[0]), int(disc[1])), end, 1.0, 3)
    fooled = locate_classical(grey, fov)
    assert np.hypot(fooled.disc[0] - exudate[0], fooled.disc[1] - exudate[1]) < 0.5 * dd   # the reported problem
    guided = locate_classical(grey, fov, disc_prior=VESSEL_PRIOR_WEIGHT * vessel_convergence(vessels, fov))
    assert np.hypot(*np.subtract(guided.disc, disc)) < 0.5 * dd
