"""Projects with readers, images and assignments, built in a temporary folder."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from storage.assignment import assign_readers
from storage.images import NewImage, add_images
from storage.project import ProjectHandle
from storage.readers import ReaderInfo, Role, add_reader


def fake_sha(i: int) -> str:
    return f"{i:064x}"


def add_fake_images(project: ProjectHandle, train: int, test: int = 0) -> list[int]:
    images = [
        NewImage(project.root / f"img{i:04d}.jpg", fake_sha(i + 1), 64, 48,
                 "left" if i % 2 else "right", "train" if i < train else "test")
        for i in range(train + test)
    ]
    return [i for i in add_images(project.database, images) if i is not None]


@dataclass
class Clinic:
    project: ProjectHandle
    ophthalmologists: list[ReaderInfo]
    specialists: list[ReaderInfo]
    reviewer: ReaderInfo
    admin: ReaderInfo
    images: list[int]


@pytest.fixture
def clinic(tmp_project) -> Clinic:
    """3 ophthalmologists, 3 specialists, a reviewer and an admin; 6 train and 3 test images, assigned."""
    db = tmp_project.database
    ophthalmologists = [add_reader(db, f"Dr O{i}", Role.OPHTHALMOLOGIST) for i in range(3)]
    specialists = [
        add_reader(db, "Dr R0", Role.RETINA_SPECIALIST),
        add_reader(db, "Dr R1", Role.RETINA_SPECIALIST),
        add_reader(db, "Dr G0", Role.GLAUCOMA_SPECIALIST),
    ]
    reviewer = add_reader(db, "Reviewer", Role.REVIEWER)
    admin = add_reader(db, "Admin", Role.ADMIN)
    images = add_fake_images(tmp_project, train=6, test=3)
    assign_readers(db)
    return Clinic(tmp_project, ophthalmologists, specialists, reviewer, admin, images)
