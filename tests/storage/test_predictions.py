"""Predictions and the trained-model registry."""
from __future__ import annotations

import pytest

from storage.errors import NotFoundError
from storage.images import add_image
from storage.predictions import (
    activate_model,
    latest_prediction,
    latest_predictions,
    list_models,
    register_model,
    save_prediction,
)


def test_the_latest_prediction_of_a_kind_is_returned(tmp_project):
    db = tmp_project.database
    image = add_image(db, "a.jpg", "a" * 64, 10, 10)
    assert latest_prediction(db, image, "regions") is None
    save_prediction(db, image, "regions", {"haemorrhage": [1, 2]}, "guided-1")
    save_prediction(db, image, "regions", {"haemorrhage": [3]}, "guided-2")
    save_prediction(db, image, "lesions", {"path": "predictions/1.png"}, "lesions-1")
    assert latest_prediction(db, image, "regions") == {"haemorrhage": [3]}
    with pytest.raises(NotFoundError):
        save_prediction(db, 999, "regions", {}, "guided-1")


def test_the_latest_predictions_of_every_image_in_one_call(tmp_project):
    db = tmp_project.database
    first, second, third = (add_image(db, f"{n}.jpg", n * 64, 10, 10) for n in "abc")
    save_prediction(db, first, "findings", {"v": 1}, "m1")
    save_prediction(db, second, "findings", {"v": 2}, "m1")
    save_prediction(db, first, "findings", {"v": 3}, "m2")
    save_prediction(db, third, "regions", {"v": 4}, "m1")
    assert latest_predictions(db, "findings") == {first: {"v": 3}, second: {"v": 2}}
    assert latest_predictions(db, "nothing") == {}


def test_one_active_model_per_network(tmp_project):
    db = tmp_project.database
    first = register_model(db, "vessels A", "vessels", {"dice": 0.8}, {"epochs": 5}, {"images": 20}, "models/a", active=True)
    second = register_model(db, "vessels B", "vessels", {"dice": 0.82}, {"epochs": 9}, {"images": 20}, "models/b")
    other = register_model(db, "lesions", "lesions", {}, {}, {}, "models/c", active=True)
    activate_model(db, second)
    active = {m.id: m.active for m in list_models(db)}
    assert active == {first: False, second: True, other: True}
    assert list_models(db, "vessels")[1].metrics == {"dice": 0.82}


def test_a_version_naming_every_pre_segmentation_network_is_stored(tmp_project):
    # Pre-segmentation stores "disc_cup=…;landmarks=…;lesion_detail=…;lesions=…;vessels=…" (about
    # 250 characters); PostgreSQL refused it in a VARCHAR(120), so no photo could be pre-segmented there.
    from storage.predictions import latest_model_landmarks, save_model_landmarks

    db = tmp_project.database
    image = add_image(db, "a.jpg", "a" * 64, 10, 10)
    version = ";".join(f"{network}={network}-unet-202612041827-blend0.5-{'x' * 30}"
                       for network in ("disc_cup", "landmarks", "lesion_detail", "lesions", "vessels"))
    assert len(version) > 250
    save_prediction(db, image, "presegmentation", {"width": 10}, version)
    save_model_landmarks(db, image, (3.0, 4.0), (6.0, 5.0), version)
    assert latest_prediction(db, image, "presegmentation") == {"width": 10}
    assert latest_model_landmarks(db, image) is not None
