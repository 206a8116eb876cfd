"""The lesion maps' colours stand out on a fundus photo, from the disc and cup outlines and from
each other (the pairs that lie side by side also for red-green colour blindness), and a lesion
finding is shown in its map's colour."""
from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from storage.catalogue import DEFAULT_FINDINGS
from ui.assist import ModelSuggestion, overlay_layers, render_overlay
from ui.colours import CUP_COLOUR, DISC_COLOUR, LESION_ALPHA, LESION_COLOURS, finding_colours

# Retina of the six demo IDRiD photos (median, 15th and 90th percentile per channel), RGB.
FUNDUS = {"mid": (157, 71, 12), "dark": (132, 53, 3), "bright": (184, 103, 43)}
# Machado et al. 2009, severity 1, on linear RGB.
COLOUR_BLIND = {
    "deuteranopia": np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                              [-0.011820, 0.042940, 0.968881]]),
    "protanopia": np.array([[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                            [-0.003882, -0.048116, 1.051998]]),
}


def rgb(name: str) -> np.ndarray:
    return np.array([int(name[i:i + 2], 16) for i in (1, 3, 5)], float)


def seen(colour: np.ndarray, matrix: np.ndarray | None = None) -> np.ndarray:
    """CIELAB of an sRGB colour, as someone with the given colour blindness sees it."""
    linear = np.where(colour / 255 <= 0.04045, colour / 255 / 12.92, ((colour / 255 + 0.055) / 1.055) ** 2.4)
    if matrix is not None:
        linear = np.clip(linear @ matrix.T, 0, 1)
    srgb = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    return cv2.cvtColor(srgb.astype(np.float32).reshape(1, 1, 3), cv2.COLOR_RGB2Lab).reshape(3)


def difference(a: np.ndarray, b: np.ndarray, matrix: np.ndarray | None = None) -> float:
    return float(np.linalg.norm(seen(a, matrix) - seen(b, matrix)))   # CIE76 ΔE


@pytest.mark.parametrize("channel", sorted(LESION_COLOURS))
def test_each_lesion_map_stands_out_on_the_fundus_and_from_the_disc_and_cup(channel):
    colour, alpha = rgb(LESION_COLOURS[channel]), LESION_ALPHA / 255
    for matrix in (None, *COLOUR_BLIND.values()):
        for background in FUNDUS.values():
            drawn = alpha * colour + (1 - alpha) * np.array(background, float)
            assert difference(drawn, np.array(background, float), matrix) > 25, (channel, background)
    assert min(difference(colour, rgb(outline)) for outline in (DISC_COLOUR, CUP_COLOUR)) > 40


def test_the_lesion_maps_differ_from_each_other():
    for a, b in itertools.combinations(LESION_COLOURS.values(), 2):
        assert difference(rgb(a), rgb(b)) > 40, (a, b)
    # Red lesions (haemorrhages, microaneurysms) and bright ones (hard and soft exudates) lie side
    # by side: those pairs stay apart for red-green colour blindness too.
    for first, second in (("HE", "MA"), ("EX", "SE")):
        for matrix in COLOUR_BLIND.values():
            assert difference(rgb(LESION_COLOURS[first]), rgb(LESION_COLOURS[second]), matrix) > 25


def test_a_lesion_finding_has_its_maps_colour_and_every_finding_its_own():
    colours = finding_colours(DEFAULT_FINDINGS)
    for finding in DEFAULT_FINDINGS:
        if finding.lesion_channel:
            assert colours[finding.code].name().upper() == LESION_COLOURS[finding.lesion_channel]
    assert len({colour.name() for colour in colours.values()}) == len(DEFAULT_FINDINGS)
    # each shows as a dot on the answer panel's light background
    assert all(difference(rgb(colour.name().upper()), rgb("#FFFFFF")) > 30 for colour in colours.values())


def test_the_lesion_overlay_draws_each_map_in_its_colour_nearly_opaque(tmp_path):
    mask = np.zeros((40, 60), np.uint8)
    mask[10:20, 10:20] = 255
    cv2.imwrite(str(tmp_path / "haemorrhages.png"), mask)
    layers = overlay_layers("lesions", ModelSuggestion(mask_folder=tmp_path))
    assert [(path.name, mode) for path, _, mode in layers] == [("haemorrhages.png", "fill")]
    picture = render_overlay(layers, (60, 40))
    inside, outside = picture.pixelColor(15, 15), picture.pixelColor(40, 30)
    assert inside.alpha() == LESION_ALPHA and outside.alpha() == 0
    assert np.allclose([inside.red(), inside.green(), inside.blue()], rgb(LESION_COLOURS["HE"]), atol=2)
