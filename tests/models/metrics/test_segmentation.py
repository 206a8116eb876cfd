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


def maps(seed, saturated=False, size=(3, 64, 64)):
    rng = np.random.default_rng(seed)
    truth = rng.random(size) < 0.05
    noise = rng.random(size)
    if saturated:   # every score above 0.999, the lesions' slightly higher: the case fixed bins could not tell
        scores = 0.999 + 0.001 * np.clip(0.6 * noise + 0.4 * truth * rng.random(size), 0, 0.9999)
    else:
        scores = np.clip(0.5 * noise + 0.5 * truth * rng.random(size), 0, 1)
    return scores.astype(np.float32), truth


@pytest.mark.parametrize("saturated", [False, True])
def test_aupr_dice_and_iou_equal_scikit_learns_on_random_and_saturated_maps(saturated, monkeypatch):
    from sklearn.metrics import average_precision_score, f1_score, jaccard_score

    import models.metrics.segmentation as segmentation

    monkeypatch.setattr(segmentation, "COMPACT_EVERY", 5000)   # fold counts between images too
    scores, truth = maps(1, saturated)
    curve = PrecisionRecallCurve()
    for image_scores, image_truth in zip(scores, truth):
        curve.add(image_scores, image_truth)
    assert curve.average_precision() == pytest.approx(average_precision_score(truth.ravel(), scores.ravel()),
                                                      abs=1e-12)
    threshold = float(np.quantile(scores, 0.9))
    called = (scores >= np.float32(threshold)).ravel()
    assert curve.iou_at(threshold) == pytest.approx(jaccard_score(truth.ravel(), called), abs=1e-12)
    assert curve.dice_at(threshold) == pytest.approx(f1_score(truth.ravel(), called), abs=1e-12)
    best, best_threshold = curve.best_dice()
    assert best == pytest.approx(f1_score(truth.ravel(), (scores >= best_threshold).ravel()), abs=1e-12)
    assert all(f1_score(truth.ravel(), (scores >= t).ravel()) <= best + 1e-12 for t in np.quantile(scores, [0.5, 0.8, 0.95]))


def test_iou_of_hand_made_maps_inside_a_mask():
    from models.metrics.segmentation import iou

    pred = np.array([[1, 1, 0, 0]], bool)
    truth = np.array([[1, 0, 0, 1]], bool)
    assert iou(pred, truth) == pytest.approx(1 / 3)
    assert iou(pred, truth, mask=np.array([[1, 1, 1, 0]], bool)) == pytest.approx(1 / 2)
    assert iou(np.zeros(3), np.zeros(3)) == 1.0
