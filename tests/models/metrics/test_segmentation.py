import numpy as np
import pytest

from models.metrics.segmentation import PrecisionRecallCurve, dice


def test_dice_of_hand_made_maps_inside_a_mask():
    pred = np.array([[1, 1, 0, 0]], bool)
    truth = np.array([[1, 0, 0, 1]], bool)
    assert dice(pred, truth) == pytest.approx(0.5)
    assert dice(pred, truth, mask=np.array([[1, 1, 1, 0]], bool)) == pytest.approx(2 / 3)
    assert dice(np.zeros(3), np.zeros(3)) == 1.0


def test_average_precision_of_a_ranking_with_one_false_positive_on_top():
    curve = PrecisionRecallCurve()
    curve.add(np.array([0.9, 0.7, 0.5, 0.1]), np.array([0, 1, 1, 0]))
    # recall 0.5 at precision 1/2, recall 1 at precision 2/3
    assert curve.average_precision() == pytest.approx(0.5 * 0.5 + 0.5 * 2 / 3)
    best, threshold = curve.best_dice()
    assert best == pytest.approx(2 * 2 / (3 + 2)) and 0.1 < threshold <= 0.5
    assert curve.dice_at(0.6) == pytest.approx(2 * 1 / (2 + 2))


def test_average_precision_without_positives_is_undefined():
    curve = PrecisionRecallCurve()
    curve.add(np.array([0.2, 0.4]), np.array([0, 0]))
    assert np.isnan(curve.average_precision())
