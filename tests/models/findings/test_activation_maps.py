"""Activation maps as Son et al. draw them (Fig. 3): bilinear upscale, 32 × 32 blur, normalised."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from models.findings.activation_maps import activation_heatmap, blur_window, overlay_activation


def test_activation_heatmap_is_bilinear_blurred_normalised_and_peaks_at_the_hot_cell():
    assert blur_window(512, 32) == 32  # the paper's 32 × 32 window at its 512-pixel input
    activation = np.zeros((8, 8), np.float32)
    activation[2, 5] = 1.0
    heat = activation_heatmap(activation, (128, 128))
    assert heat.shape == (128, 128) and heat.min() == 0.0 and heat.max() == pytest.approx(1.0)
    y, x = np.unravel_index(int(np.argmax(heat)), heat.shape)
    assert abs(y - 2.5 * 16) <= 8 and abs(x - 5.5 * 16) <= 8
    assert not activation_heatmap(np.full((4, 4), 0.3, np.float32), (32, 32)).any()  # flat: no place
    photo = np.full((64, 64, 3), 100, np.uint8)
    over = overlay_activation(photo, activation)
    hot = cv2.applyColorMap(np.array([[255]], np.uint8), cv2.COLORMAP_JET)[0, 0, ::-1]
    assert over.shape == photo.shape and np.argmax(over[20, 44]) == np.argmax(hot)  # red where active
