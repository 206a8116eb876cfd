"""Dashboard and report numbers against scikit-learn and statsmodels (oracles in tests only)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as sk
from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss

from annotate.consensus import consensus_for_project
from annotate.services.final_labels import FinalLabels
from models.metrics.classification import best_operating_point
from models.report.numbers import ALL, report_numbers
from storage.adjudication import AdjudicatedAnswers
from tests.annotate.test_consensus import Read

FINDINGS = ["haemorrhage", "drusen"]
CLASSES = ["no DR", "mild NPDR", "PDR"]


@pytest.fixture(scope="module")
def project():
    rng = np.random.default_rng(3)
    reads, predictions = [], {}
    for image in range(120):
        truth = {code: rng.random() < 0.4 for code in FINDINGS}
        grade = int(rng.integers(0, 3))
        for reader in rng.choice(6, size=3, replace=False):
            regions = {}
            for code in FINDINGS:
                if truth[code] != (rng.random() < 0.15):      # readers err 15 % of the time
                    regions[code] = frozenset(int(r) for r in np.flatnonzero(rng.random(8) < 0.3) + 1) or {1}
            said = grade if rng.random() < 0.8 else int(rng.integers(0, 3))
            reads.append((image, int(reader), Read(regions=regions, normal=not regions, diagnosis=CLASSES[said])))
        if image % 10:                                         # every tenth image has no prediction
            predictions[image] = {
                "findings": {code: {"probability": float(np.clip(rng.normal(0.3 + 0.4 * truth[code], 0.2), 0, 1)),
                                    "region_activation": rng.random(9).tolist()} for code in FINDINGS},
                "diagnosis": dict(zip(CLASSES, rng.dirichlet(np.ones(3) + np.eye(3)[grade] * 3).tolist())),
            }
    labels = FinalLabels(consensus_for_project(reads, FINDINGS), AdjudicatedAnswers(), "consensus")
    numbers = report_numbers(labels, predictions, {"haemorrhage": "Haemorrhage"}, CLASSES, {0: "Dr Zero"})
    return reads, predictions, labels, numbers


def test_prevalence_and_kappas(project):
    reads, _, labels, numbers = project
    c = labels.consensus
    for f, code in enumerate(FINDINGS):
        row = numbers.finding(code)
        assert (row.present, row.absent) == (int((c.state[:, f] == 1).sum()), int((c.state[:, f] == 0).sum()))
        assert row.prevalence == pytest.approx(row.present / (row.present + row.absent))
        votes = np.array([sum(code in r.regions for i, _, r in reads if i == image) for image in range(120)])
        assert row.kappa == pytest.approx(statsmodels_fleiss(np.stack([3 - votes, votes], 1), method="fleiss"))
        assert row.regional_kappa == pytest.approx(numbers.regional.fleiss_by_finding[f])
    assert numbers.finding("haemorrhage").name == "Haemorrhage" and numbers.finding("drusen").name == "drusen"
    assert numbers.images == 120 and numbers.predicted_images == 108 and numbers.kappa_items == 120


def test_model_curves_operating_point_and_air(project):
    _, predictions, labels, numbers = project
    c = labels.consensus
    for f, code in enumerate(FINDINGS):
        rows = [i for i in range(120) if c.state[c.row(i), f] in (0, 1) and i in predictions]
        y = np.array([c.state[c.row(i), f] == 1 for i in rows])
        s = np.array([predictions[i]["findings"][code]["probability"] for i in rows])
        model = numbers.finding(code).model
        assert (model.images, model.positives) == (len(rows), int(y.sum()))
        assert model.auroc == pytest.approx(sk.roc_auc_score(y, s))
        assert model.average_precision == pytest.approx(sk.average_precision_score(y, s))
        assert model.operating_point == best_operating_point(s, y)
        detected = s >= model.operating_point.threshold
        air = []
        for image in rows:
            mass = np.array(predictions[image]["findings"][code]["region_activation"])
            cue = c.image(image).findings[code].cue_regions
            air.append(sum(mass[r] for r in cue) / mass.sum())
        air = np.array(air)
        assert model.air_tp == pytest.approx(air[y & detected].mean())
        assert model.air_fn == pytest.approx(air[y & ~detected].mean()) or math.isnan(model.air_fn)
        assert model.n_tp == int((y & detected).sum())


def test_readers_against_consensus_and_diagnoses(project):
    reads, predictions, labels, numbers = project
    c = labels.consensus
    for reader in range(6):
        truth, said = [], []
        for image, who, read in reads:
            for f, code in enumerate(FINDINGS):
                if who == reader and c.state[c.row(image), f] in (0, 1):
                    truth.append(c.state[c.row(image), f] == 1)
                    said.append(code in read.regions)
        row = next(r for r in numbers.readers if r.reader_id == reader and r.finding == ALL)
        tn, fp, fn, tp = sk.confusion_matrix(truth, said, labels=[False, True]).ravel()
        assert row.images == len(truth)
        assert row.sensitivity == pytest.approx(tp / (tp + fn)) and row.specificity == pytest.approx(tn / (tn + fp))
        assert row.kappa == pytest.approx(sk.cohen_kappa_score(truth, said))
    assert next(r for r in numbers.readers if r.reader_id == 0).name == "Dr Zero"
    consensus_dx = {image.image_id: image.diagnosis for image in c.images()}
    pairs = [(consensus_dx[i], r.diagnosis) for i, _, r in reads if consensus_dx[i]]
    expected = sk.confusion_matrix([a for a, _ in pairs], [b for _, b in pairs], labels=CLASSES)
    assert (numbers.readers_diagnosis_confusion == expected).all()
    model_pairs = [(consensus_dx[i], max(p["diagnosis"], key=p["diagnosis"].get))
                   for i, p in predictions.items() if consensus_dx[i]]
    expected = sk.confusion_matrix([a for a, _ in model_pairs], [b for _, b in model_pairs], labels=CLASSES)
    assert (numbers.model_diagnosis_confusion == expected).all()


def test_a_project_without_predictions_or_reads_has_no_model_numbers():
    labels = FinalLabels(consensus_for_project([], FINDINGS), AdjudicatedAnswers(), "consensus")
    numbers = report_numbers(labels, {}, {}, CLASSES, {})
    assert numbers.images == 0 and all(f.model is None for f in numbers.findings)
    assert math.isnan(numbers.finding("drusen").prevalence) and numbers.readers == []


def test_red_free_photos_count_as_unscreened_and_a_note_says_how_many(project):
    _, predictions, labels, numbers = project
    withheld = {"findings": {}, "diagnosis": {}, "red_free": True}   # as `screen` stores a red-free photo
    red_free = {1: withheld, 2: withheld, 10: withheld}               # 10 had no prediction at all
    without = {image: payload for image, payload in predictions.items() if image not in red_free}
    expected = report_numbers(labels, without, {}, CLASSES, {})
    got = report_numbers(labels, {**without, **red_free}, {}, CLASSES, {})
    assert got.predicted_images == expected.predicted_images == numbers.predicted_images - 2
    assert (got.model_diagnosis_confusion == expected.model_diagnosis_confusion).all()
    for code in FINDINGS:
        model, alone = got.finding(code).model, expected.finding(code).model
        assert (model.images, model.auroc, model.air_tp) == (alone.images, alone.auroc, alone.air_tp)
    assert got.notes == ["3 labelled red-free photos are left out of the model's numbers: screening gives no finding "
                         "probability or diagnosis for red-free photos, as the networks learnt on colour photos."]
    assert expected.notes == []
