"""Kappas and reader accuracy against hand-computed values."""
from __future__ import annotations

import math

import numpy as np
import pytest

from annotate.agreement import (
    ReaderAccuracy,
    agreement_report,
    cohen_kappa,
    cohen_kappa_from_table,
    fleiss_kappa,
    pairwise_cohen_kappa,
    readers_against_consensus,
)
from annotate.consensus import consensus_for_project
from tests.annotate.test_consensus import Read, marks, normal

FINDINGS = ["haemorrhage", "drusen"]


def test_fleiss_kappa_of_the_textbook_example():
    # Fleiss (1971) as worked on Wikipedia: 10 items, 14 raters, 5 categories.
    counts = np.array([
        [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
    ])
    # By hand: Σ_i (Σ_j n_ij² − 14) = 182+46+56+80+60+84+44+32+52+52 = 688, so mean P_i = 688/(10·182)
    # = 0.378022; column totals 20, 28, 39, 21, 32 of 140 give P_e = 4170/19600 = 0.212755;
    # κ = (0.378022 − 0.212755) / (1 − 0.212755) = 0.209930.
    assert fleiss_kappa(counts) == pytest.approx(0.209930, abs=1e-6)


def test_cohen_kappa_of_the_textbook_example():
    # 50 items: yes/yes 20, yes/no 5, no/yes 10, no/no 15 → p_o = 0.7, p_e = 0.5·0.6 + 0.5·0.4 = 0.5, κ = 0.4.
    assert cohen_kappa_from_table([[15, 10], [5, 20]]) == pytest.approx(0.4)
    a = [1] * 25 + [0] * 25
    b = [1] * 20 + [0] * 5 + [1] * 10 + [0] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)


def test_kappa_is_undefined_when_everybody_always_says_the_same():
    assert math.isnan(cohen_kappa([1, 1, 1], [1, 1, 1]))
    assert math.isnan(fleiss_kappa([[0, 3], [0, 3]]))


@pytest.fixture()
def four_images():
    """Haemorrhage marks of readers 1, 2, 3 (slots shuffled per image); drusen never marked.

    image  r1 r2 r3   votes  consensus (k = 2)
      1     1  1  1     3     present
      2     0  0  0     0     absent
      3     1  1  0     2     present
      4     1  0  0     1     uncertain
    """
    table = {1: (1, 1, 1), 2: (0, 0, 0), 3: (1, 1, 0), 4: (1, 0, 0)}
    orders = {1: (1, 2, 3), 2: (3, 2, 1), 3: (2, 3, 1), 4: (3, 1, 2)}
    triples = []
    for image, row in table.items():
        for reader in orders[image]:
            read = marks(haemorrhage={5}) if row[reader - 1] else normal()
            triples.append((image, reader, read))
    triples.append((4, 9, Read(regions={"haemorrhage": frozenset({1})}, done=False)))  # not done: ignored
    return consensus_for_project(triples, FINDINGS)


def test_fleiss_kappa_per_finding_from_reads(four_images):
    # Items (no, yes): (0,3), (3,0), (1,2), (2,1): P_i = 1, 1, 1/3, 1/3 → mean 2/3;
    # p_yes = 6/12 → P_e = 1/2; κ = (2/3 − 1/2) / (1/2) = 1/3.
    report = agreement_report(four_images)
    assert report.fleiss_by_finding["haemorrhage"].kappa == pytest.approx(1 / 3)
    assert report.fleiss_by_finding["haemorrhage"].items == 4
    assert math.isnan(report.fleiss_by_finding["drusen"].kappa)
    # Pooled with 4 all-"no" drusen items: P_i mean = (8/3 + 4)/8 = 5/6; p_yes = 6/24 → P_e = 1/16 + 9/16
    # = 10/16; κ = (5/6 − 5/8) / (3/8) = 5/9.
    assert report.fleiss_overall.kappa == pytest.approx(5 / 9)


def test_pairwise_cohen_kappa_from_reads(four_images):
    # (1,2): p_o 3/4, p_e 3/4·2/4 + 1/4·2/4 = 1/2 → 0.5.  (1,3): p_o 2/4, p_e 3/16 + 3/16 → 0.2.
    # (2,3): p_o 3/4, p_e 2/16 + 6/16 → 0.5.
    pairs = {(p.reader_a, p.reader_b): p for p in pairwise_cohen_kappa(four_images, "haemorrhage")}
    assert set(pairs) == {(1, 2), (1, 3), (2, 3)}
    assert pairs[(1, 2)].kappa == pytest.approx(0.5)
    assert pairs[(1, 3)].kappa == pytest.approx(0.2)
    assert pairs[(2, 3)].kappa == pytest.approx(0.5)
    assert pairs[(1, 3)].items == 4 and pairs[(1, 3)].observed_agreement == pytest.approx(0.5)
    pooled = {(p.reader_a, p.reader_b): p for p in pairwise_cohen_kappa(four_images)}
    # Adding 4 agreeing "no" drusen items to (1,3): table [[5, 0], [2, 1]] → p_o 6/8,
    # p_e = (5·7 + 3·1)/64 = 38/64 → κ = (48 − 38)/(64 − 38) = 10/26.
    assert pooled[(1, 3)].items == 8
    assert pooled[(1, 3)].kappa == pytest.approx(10 / 26)


def test_each_reader_against_consensus(four_images):
    # Decided images: 1 present, 2 absent, 3 present. Reader 3 missed image 3.
    readers = {r.reader_id: r for r in readers_against_consensus(four_images, "haemorrhage")}
    assert set(readers) == {1, 2, 3}
    assert (readers[1].sensitivity, readers[1].specificity) == (1.0, 1.0)
    assert (readers[3].true_positive, readers[3].false_negative, readers[3].true_negative) == (1, 1, 1)
    assert readers[3].sensitivity == 0.5 and readers[3].specificity == 1.0
    pooled = {r.reader_id: r for r in readers_against_consensus(four_images)}
    assert pooled[3].true_negative == 1 + 4          # drusen is absent on all four images
    assert math.isnan(ReaderAccuracy(3, 0, 0, 0, 0).sensitivity)
