"""Region-level agreement against statsmodels' Fleiss kappa and scikit-learn's confusion matrix."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix
from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss

from annotate.agreement import fleiss_by_finding, regional_agreement
from annotate.consensus import ABSENT, PRESENT, consensus_for_project
from tests.annotate.test_consensus import Read, marks, normal

FINDINGS = ["haemorrhage", "drusen"]


def test_the_issues_example_finding_kappa_one_but_regions_disagree():
    # Every reader marks haemorrhage on the same images, in different regions: finding-level κ is 1.
    reads = []
    for image, (a, b, c) in enumerate([({1, 5}, {1, 6}, {1}), ({2}, {3}, {2, 3}), (set(), set(), set())]):
        for reader, regions in zip((1, 2, 3), (a, b, c)):
            reads.append((image, reader, marks(haemorrhage=regions) if regions else normal()))
    consensus = consensus_for_project(reads, FINDINGS)
    per_finding, _ = fleiss_by_finding(consensus)
    assert per_finding["haemorrhage"].kappa == pytest.approx(1.0)
    result = regional_agreement(consensus)
    assert result.fleiss_by_finding[0] < 0.5
    assert result.fleiss[0, 0] == pytest.approx(1.0)        # region 1: all agree (2 marked, 1 not)
    assert result.confusion[0, 5, 6] == result.confusion[0, 6, 5] == 1   # 5 met 6 once each way
    assert (result.confusion[0] == result.confusion[0].T).all()


@pytest.fixture(scope="module")
def random_project():
    rng = np.random.default_rng(7)
    reads = []
    for image in range(60):
        for reader in rng.choice(5, size=3, replace=False):
            regions = {}
            for code in FINDINGS:
                if rng.random() < 0.45:
                    regions[code] = frozenset(int(r) for r in np.flatnonzero(rng.random(8) < 0.3) + 1) or {4}
            reads.append((image, int(reader) + 10, Read(regions=regions, normal=not regions)))
    return reads, consensus_for_project(reads, FINDINGS)


def test_fleiss_per_finding_and_region_equals_statsmodels(random_project):
    reads, consensus = random_project
    result = regional_agreement(consensus)
    by_image: dict[int, list] = {}
    for image, _, read in reads:
        by_image.setdefault(image, []).append(read)
    for f, code in enumerate(FINDINGS):
        tables = []
        for region in range(1, 9):
            votes = np.array([sum(region in r.regions.get(code, ()) for r in rs) for rs in by_image.values()])
            table = np.stack([3 - votes, votes], axis=1)
            tables.append(table)
            assert result.fleiss[f, region - 1] == pytest.approx(statsmodels_fleiss(table, method="fleiss"))
        assert result.fleiss_by_finding[f] == pytest.approx(statsmodels_fleiss(np.concatenate(tables), method="fleiss"))
    assert result.items == 60 and not math.isnan(result.fleiss_overall)


def test_each_reader_against_the_consensus_union_equals_sklearn(random_project):
    reads, consensus = random_project
    result = regional_agreement(consensus)
    for reader_id in range(10, 15):
        for f, code in enumerate(FINDINGS):
            truth, said = [], []
            for image, reader, read in reads:
                state = consensus.state[consensus.row(image), f]
                if reader != reader_id or state not in (PRESENT, ABSENT):
                    continue
                cue = consensus.image(image).findings[code].cue_regions
                truth += [region in cue for region in range(1, 9)]
                said += [region in read.regions.get(code, ()) for region in range(1, 9)]
            tn, fp, fn, tp = confusion_matrix(truth, said, labels=[False, True]).ravel()
            mine = result.reader_accuracy(reader_id, code)
            assert (mine.true_positive, mine.false_negative, mine.true_negative, mine.false_positive) == (tp, fn, tn, fp)
        pooled = result.reader_accuracy(reader_id)
        parts = [result.reader_accuracy(reader_id, code) for code in FINDINGS]
        assert pooled.true_positive == sum(p.true_positive for p in parts)
        assert result.reader_accuracy(reader_id, "drusen", 3).true_positive == result.reader_counts[
            list(result.reader_ids).index(reader_id), 1, 2, 0]


def test_regional_confusion_counts_every_ordered_pair(random_project):
    reads, consensus = random_project
    expected = np.zeros((len(FINDINGS), 9, 9), np.int64)
    by_image: dict[int, list] = {}
    for image, _, read in reads:
        by_image.setdefault(image, []).append(read)
    for rs in by_image.values():
        for a, b in itertools.permutations(rs, 2):
            for f, code in enumerate(FINDINGS):
                for i in a.regions.get(code) or {0}:
                    for j in b.regions.get(code) or {0}:
                        expected[f, i, j] += 1
    assert (regional_agreement(consensus).confusion == expected).all()


def test_ungradable_reads_cast_no_regional_vote():
    reads = [(1, 1, marks(drusen={2})), (1, 2, marks(drusen={2})), (1, 3, Read(ungradable=True)),
             (2, 1, normal()), (2, 2, marks(drusen={2})), (2, 3, normal())]
    result = regional_agreement(consensus_for_project(reads, FINDINGS))
    assert result.items == 2
    assert result.confusion[1].sum() == 2 + 6          # image 1: one pair both ways; image 2: three pairs
    assert result.reader_accuracy(3).true_positive + result.reader_accuracy(3).false_negative == 0
