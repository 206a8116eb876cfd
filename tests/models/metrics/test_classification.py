import math

import numpy as np
import pytest

from models.metrics.classification import (
    accuracy,
    accuracy_standard_error,
    activation_in_regions,
    air_by_outcome,
    auroc,
    best_operating_point,
    confusion_matrix,
    guidance_table,
    paired_comparison,
    per_class_accuracy,
)


def test_auroc_of_the_textbook_example_is_three_quarters():
    assert auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)


def test_auroc_counts_tied_scores_as_one_half():
    assert auroc([0.5, 0.5, 0.5, 0.9], [0, 1, 0, 1]) == pytest.approx((0.5 + 0.5 + 1 + 1) / 4)


def test_auroc_is_one_for_perfect_and_zero_for_reversed_ranking():
    assert auroc([1, 2, 3, 4], [0, 0, 1, 1]) == 1.0
    assert auroc([4, 3, 2, 1], [0, 0, 1, 1]) == 0.0


def test_auroc_is_undefined_with_one_class():
    assert math.isnan(auroc([0.2, 0.3], [1, 1]))


def test_operating_point_maximises_the_harmonic_mean_and_prefers_fewer_false_alarms():
    point = best_operating_point([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    # thresholds 0.8 and 0.35 both give harmonic mean 2/3; the higher one wins
    assert (point.threshold, point.sensitivity, point.specificity) == (0.8, 0.5, 1.0)


def test_operating_point_of_separable_scores_is_perfect():
    point = best_operating_point([0.1, 0.2, 0.7, 0.9, 0.3], [0, 0, 1, 1, 0])
    assert (point.threshold, point.sensitivity, point.specificity) == (0.7, 1.0, 1.0)


def test_air_is_activation_inside_the_cue_over_all_activation():
    activation = np.array([[0.5, 0.1], [0.2, 0.2]])
    cue = np.array([[1, 0], [0, 1]])
    assert activation_in_regions(activation, cue) == pytest.approx(0.7 / 1.0)


def test_air_by_outcome_separates_true_positives_and_false_negatives():
    activations = np.array([[[0.9, 0.1]], [[0.2, 0.6]], [[0.5, 0.5]], [[0.3, 0.3]]])
    cues = np.array([[[1, 0]], [[1, 0]], [[0, 0]], [[1, 1]]])
    scores = [0.9, 0.2, 0.8, 0.7]
    labels = [1, 1, 1, 0]  # third is a positive without a cue: left out of AIR
    result = air_by_outcome(activations, cues, scores, labels, threshold=0.5)
    assert result["air_tp"] == pytest.approx(0.9) and result["n_tp"] == 1
    assert result["air_fn"] == pytest.approx(0.25) and result["n_fn"] == 1
    assert result["cue_tp"] == pytest.approx(0.5)   # the true positive's cue covers half its map


def test_air_leaves_out_incomplete_cues():
    activations = np.array([[[0.9, 0.1]], [[0.2, 0.6]]])
    cues = np.array([[[1, 0]], [[1, 0]]])
    result = air_by_outcome(activations, cues, [0.9, 0.8], [1, 1], threshold=0.5, cue_complete=[True, False])
    assert result["air_tp"] == pytest.approx(0.9) and result["n_tp"] == 1


def test_confusion_matrix_rows_are_true_classes_and_per_class_accuracy_reads_its_diagonal():
    matrix = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], classes=3)
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert per_class_accuracy(matrix) == pytest.approx([0.5, 1.0, 2 / 3])
    assert accuracy([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2]) == pytest.approx(4 / 6)


def test_guidance_table_has_the_papers_columns_and_figures():
    row = {"auroc": 0.9, "air_tp": 0.8, "air_fn": 0.5, "sensitivity": 0.7, "specificity": 0.9}
    table = guidance_table({"haemorrhage": {"with": row, "without": {**row, "air_tp": 0.6}}})
    assert "AIR (TP) with" in table and "| haemorrhage | 0.9000 | 0.9000 | 0.8000 | 0.6000 |" in table
    assert "haemorrhage (paper) | 0.9862 | 0.9895 | 0.8890 | 0.6388" in table


def test_accuracy_noise_of_84_photos_is_about_five_points():
    assert accuracy_standard_error(0.619, 84) == pytest.approx(math.sqrt(0.619 * 0.381 / 84))
    assert 0.052 < accuracy_standard_error(0.619, 84) < 0.054
    assert accuracy_standard_error(1.0, 84) == 0.0 and math.isnan(accuracy_standard_error(0.5, 0))


def test_paired_comparison_is_mcnemars_exact_test_as_statsmodels_computes_it():
    from statsmodels.stats.contingency_tables import mcnemar

    rng = np.random.default_rng(3)
    a, b = rng.random(84) < 0.62, rng.random(84) < 0.5
    found = paired_comparison(a, b)
    a_only, b_only = int((a & ~b).sum()), int((~a & b).sum())
    assert (found["a_only"], found["b_only"]) == (a_only, b_only)
    table = [[int((a & b).sum()), a_only], [b_only, int((~a & ~b).sum())]]
    assert found["p_value"] == pytest.approx(mcnemar(table, exact=True).pvalue)
    assert found["difference"] == pytest.approx(a.mean() - b.mean())
    # 10 photos right by A alone, 2 by B alone: p = 2·P(X ≤ 2 | 12, ½) = 2·79/4096
    ten_two = paired_comparison([True] * 10 + [False] * 2 + [True] * 5, [False] * 10 + [True] * 2 + [True] * 5)
    assert ten_two["p_value"] == pytest.approx(2 * 79 / 4096)
    assert paired_comparison([True, False], [True, False])["p_value"] == 1.0   # no discordant photo
    with pytest.raises(ValueError):
        paired_comparison([True], [True, False])
