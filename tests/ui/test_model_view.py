"""The model vs consensus queue reads each photo once, however many findings have a model."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

import ui.review.model_view as model_view


class _Runner:
    """Stands in for GuidedRunner: a fixed probability per model, the photo each call was given."""

    def __init__(self, probabilities: dict[int, float]) -> None:
        self.probabilities = probabilities
        self.given: list[object] = []

    def knows(self, model, record) -> bool:
        return False

    def probability(self, model, record, photo=None) -> float:
        self.given.append(photo)
        return self.probabilities[model.id]


def test_every_model_gets_the_photo_read_once(monkeypatch):
    reads = []
    photo = np.zeros((8, 8, 3), np.uint8)
    monkeypatch.setattr(model_view, "_read_as_imported", lambda record: reads.append(record.id) or photo)
    record = SimpleNamespace(id=3)
    data = SimpleNamespace(images=[record], consensus_state=lambda image_id, code: SimpleNamespace(state="present"))
    models = {"H": SimpleNamespace(id=1, metrics={"val_threshold": 0.5}),
              "E": SimpleNamespace(id=2, metrics={"val_threshold": 0.5})}
    runner = _Runner({1: 0.9, 2: 0.1})
    found = model_view.model_disagreements(data, models, runner)
    assert reads == [3] and runner.given == [photo, photo]
    assert found == {3: {"E": "model p = 0.10, consensus present"}}
