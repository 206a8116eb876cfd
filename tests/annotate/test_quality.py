"""Readers' scores against gold, against scikit-learn's confusion matrix and kappa."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from sklearn.metrics import cohen_kappa_score, confusion_matrix

from annotate.quality import scores_against_gold
from tests.annotate.test_consensus import Read, marks, normal

FINDINGS = ["haemorrhage", "drusen"]


def test_scores_against_gold_equal_sklearn():
    gold = {1: SimpleNamespace(findings={"haemorrhage": frozenset({1, 5})}, diagnosis="mild NPDR"),
            2: SimpleNamespace(findings={}, diagnosis=None),
            3: SimpleNamespace(findings={"drusen": frozenset({3})}, diagnosis="no DR")}
    reads = [(1, 7, marks(haemorrhage={1, 6}, diagnosis="mild NPDR")), (2, 7, marks(drusen={2})),
             (3, 7, normal("mild NPDR")), (4, 7, marks(drusen={1})),                   # image 4 is not gold
             (1, 8, Read(ungradable=True)), (3, 8, marks(drusen={3}, diagnosis="no DR")),
             (2, 8, Read(regions={"drusen": frozenset({4})}, done=False))]          # not done: not scored
    first, second = scores_against_gold(reads, gold, FINDINGS)
    truth = [True, False, False, False, False, True]
    said = [True, False, False, True, False, False]
    tn, fp, fn, tp = confusion_matrix(truth, said, labels=[False, True]).ravel()
    assert (first.reader_id, first.images) == (7, 3)
    assert (first.findings.true_positive, first.findings.false_negative,
            first.findings.true_negative, first.findings.false_positive) == (tp, fn, tn, fp)
    assert first.findings.kappa == pytest.approx(cohen_kappa_score(truth, said))
    assert (first.regions.true_positive, first.regions.false_negative, first.regions.false_positive) == (1, 2, 2)
    assert (first.diagnoses_right, first.diagnoses_asked) == (1, 2) and first.diagnosis_accuracy == 0.5
    assert (second.reader_id, second.images, second.findings.true_positive, second.diagnosis_accuracy) == (8, 1, 1, 1.0)


def test_intra_reader_agreement_equals_sklearn_kappa():
    from annotate.quality import intra_reader_agreement

    firsts = {(1, 7): dict(regions={"haemorrhage": [1, 5]}, ungradable=False, diagnosis="PDR"),
              (2, 7): dict(regions={}, ungradable=False, diagnosis="no DR"),
              (3, 7): dict(regions={"drusen": [2]}, ungradable=False, diagnosis=None),
              (4, 7): dict(regions={}, ungradable=True, diagnosis=None)}             # ungradable first: left out
    reads = [(1, 7, marks(haemorrhage={1}, diagnosis="PDR")), (2, 7, marks(drusen={4}, diagnosis="mild NPDR")),
             (3, 7, marks(drusen={2})), (4, 7, normal()), (5, 7, normal())]
    (score,) = intra_reader_agreement(reads, firsts, FINDINGS)
    was = [True, False, False, False, False, True]
    now = [True, False, False, True, False, True]
    assert score.repeats == 3 and score.kappa == pytest.approx(cohen_kappa_score(was, now))
    assert (score.regions.true_positive, score.regions.false_negative, score.regions.false_positive) == (2, 1, 1)
    assert (score.diagnoses_same, score.diagnoses_both) == (1, 2)
