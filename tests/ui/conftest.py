"""UI test set-up: offscreen Qt, private QSettings, and a tiny project three readers share."""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PySide6.QtCore import QSettings  # noqa: E402

PHOTO_SIZE = (256, 192)  # width, height
DISC = (80.0, 96.0)      # where the tests place landmarks, original pixels
FOVEA = (170.0, 100.0)


def write_fundus(path: Path, seed: int, size: tuple[int, int] = PHOTO_SIZE) -> Path:
    """A small synthetic fundus JPEG: orange field of view, a bright disc, a darker macula."""
    w, h = size
    rng = np.random.default_rng(seed)
    image = np.zeros((h, w, 3), np.uint8)
    cv2.circle(image, (w // 2, h // 2), int(0.48 * h) + 20, (40, 90, 190), -1)
    cv2.circle(image, (int(DISC[0]), int(DISC[1])), 12, (150, 220, 250), -1)
    cv2.circle(image, (int(FOVEA[0]), int(FOVEA[1])), 14, (20, 50, 120), -1)
    noise = rng.integers(0, 12, image.shape, dtype=np.uint8)
    image = cv2.add(image, noise)
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    path.write_bytes(data.tobytes())
    return path


@dataclass
class ReadingProject:
    folder: Path
    project: object        # storage.project.ProjectHandle
    readers: dict          # name -> ReaderInfo
    image_ids: list


def make_reading_project(folder: Path, images: int = 3):
    from annotate.services.importer import import_images
    from storage.assignment import assign_readers
    from storage.project import create_project
    from storage.readers import add_reader
    from tests.conftest import make_admin

    project = create_project(folder, name="UI test clinic")
    photos = [write_fundus(folder / "photos" / f"eye_{i}.jpg", seed=i) for i in range(images)]
    report = import_images(project, photos)
    admin = make_admin(project.database)
    readers = {name: add_reader(project.database, name, role="ophthalmologist", acting_reader_id=admin.id)
               for name in ("Ana", "Ben", "Cleo")}
    readers["Admin"] = admin
    assign_readers(project.database, readers_per_image=3)
    return ReadingProject(folder, project, readers, sorted(report.added))


@pytest.fixture(autouse=True)
def private_settings(tmp_path_factory, monkeypatch):
    """Window layout and recent projects go to a temporary folder, never the user's; the
    workstation does not pre-segment ahead (the starter networks) unless a test turns it on."""
    folder = tmp_path_factory.mktemp("qsettings")
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    monkeypatch.setenv("OCTANT_DATA_DIR", str(folder))
    from ui.workstation_settings import workstation_settings

    workstation_settings().setValue("model/presegment_ahead", False)
    workstation_settings().setValue("project/daily_backup", False)  # tests/ui/test_backup_actions.py turns it on


@pytest.fixture
def reading_project(tmp_path):
    made = make_reading_project(tmp_path / "project")
    yield made
    made.project.close()


@pytest.fixture
def clinic(reading_project):
    """The reading project with a reader who has a PIN (Ana), a reviewer (Rhea) and the admin,
    each signing in with their own credential (tests/ui/admin_actions.py)."""
    from storage.readers import reset_pin
    from tests.conftest import add_reader_as_admin
    from tests.ui.admin_actions import ANA_PIN, RHEA_PIN

    db = reading_project.project.database
    reset_pin(db, reading_project.readers["Ana"].id, ANA_PIN, acting_reader_id=reading_project.readers["Admin"].id)
    reading_project.readers["Rhea"] = add_reader_as_admin(db, "Rhea", "reviewer", RHEA_PIN)
    return reading_project


def order_by_the_model(reading_project) -> list:
    """Predictions that put the reading project's third image first in the model's reading order
    (the first is near certain, the second has none), and that order switched on; returns the
    images in the order expected."""
    from storage.predictions import FINDINGS_PREDICTION, save_prediction
    from storage.project import update_settings

    db = reading_project.project.database
    first, second, third = reading_project.image_ids
    for image, probability in ((first, 0.95), (third, 0.5)):
        save_prediction(db, image, FINDINGS_PREDICTION,
                        {"findings": {"haemorrhage": {"probability": probability, "threshold": 0.5}}}, "guided:test")
    update_settings(db, reading_order="model_uncertainty")
    return [third, first, second]
