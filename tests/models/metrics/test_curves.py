"""ROC and precision–recall curves against scikit-learn (the oracle; not an install dependency)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as sk

from models.metrics.classification import auroc
from models.metrics.curves import area_under_roc, average_precision, precision_recall_curve, roc_curve


@pytest.mark.parametrize("n, decimals, seed", [(12, 1, 0), (200, 2, 1), (500, 6, 2)])
def test_curves_equal_sklearn(n, decimals, seed):
    rng = np.random.default_rng(seed)
    labels = rng.random(n) < 0.35
    scores = np.round(np.clip(rng.normal(0.5 + 0.2 * labels, 0.2), 0, 1), decimals)   # ties at 1-2 decimals
    roc = roc_curve(scores, labels)
    fpr, tpr, thresholds = sk.roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(roc.false_positive_rate, fpr)
    np.testing.assert_allclose(roc.true_positive_rate, tpr)
    np.testing.assert_allclose(roc.thresholds, thresholds)
    assert area_under_roc(roc) == pytest.approx(sk.roc_auc_score(labels, scores))
    assert area_under_roc(roc) == pytest.approx(auroc(scores, labels))
    pr = precision_recall_curve(scores, labels)
    precision, recall, pr_thresholds = sk.precision_recall_curve(labels, scores)
    np.testing.assert_allclose(pr.precision, precision)
    np.testing.assert_allclose(pr.recall, recall)
    np.testing.assert_allclose(pr.thresholds, pr_thresholds)
    assert average_precision(scores, labels) == pytest.approx(sk.average_precision_score(labels, scores))


def test_one_class_only_gives_undefined_areas():
    assert math.isnan(area_under_roc(roc_curve([0.1, 0.9], [True, True])))
    assert math.isnan(average_precision([0.1, 0.9], [False, False]))
    with pytest.raises(ValueError):
        roc_curve([0.1, 0.2], [True])
