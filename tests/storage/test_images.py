"""Images: relative paths, duplicates by hash, geometry."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from storage.audit import audit_events
from storage.errors import InvalidRequestError, NotFoundError
from storage.images import add_image, find_image_by_sha256, get_image, list_images, set_image_geometry
from storage.schema import Image


def test_paths_inside_the_project_are_stored_relative(tmp_project, tmp_path):
    db = tmp_project.database
    inside = add_image(db, tmp_project.root / "photos" / "a.jpg", "a" * 64, 640, 480, "left", "train")
    outside = add_image(db, tmp_path / "elsewhere.jpg", "b" * 64, 640, 480, None, "test")
    with db.reading() as session:
        stored = dict(session.execute(select(Image.id, Image.path)).all())
    assert stored[inside] == "photos/a.jpg" and stored[outside] == str((tmp_path / "elsewhere.jpg").resolve())
    assert get_image(db, inside).path == tmp_project.root / "photos" / "a.jpg"
    assert [i.split for i in list_images(db)] == ["train", "test"]


def test_the_same_photograph_is_not_added_twice(tmp_project):
    db = tmp_project.database
    assert add_image(db, "a.jpg", "c" * 64, 10, 10) is not None
    assert add_image(db, "copy-of-a.jpg", "c" * 64, 10, 10) is None
    assert find_image_by_sha256(db, "c" * 64).path.name == "a.jpg"
    assert find_image_by_sha256(db, "d" * 64) is None
    with pytest.raises(InvalidRequestError):
        add_image(db, "b.jpg", "e" * 64, 10, 10, split="validation")


def test_field_of_view_and_crop_are_stored_and_audited(tmp_project):
    db = tmp_project.database
    image = add_image(db, "a.jpg", "f" * 64, 100, 80)
    set_image_geometry(db, image, fov=(50.0, 40.0, 38.5), crop=(11, 1, 89, 79))
    record = get_image(db, image)
    assert record.fov == (50.0, 40.0, 38.5) and record.crop == (11, 1, 89, 79)
    event = audit_events(db, "image", image)[-1]
    assert event.action == "set_geometry" and event.before["fov_r"] is None and event.after["fov_r"] == 38.5
    with pytest.raises(NotFoundError):
        set_image_geometry(db, 999, fov=(1, 1, 1))


def test_an_image_and_its_geometry_are_added_in_one_action(tmp_project):
    db = tmp_project.database
    image = add_image(db, "b.jpg", "9" * 64, 100, 80, "right", "test", fov=(50, 40, 39), crop=(11, 1, 89, 79))
    record = get_image(db, image)
    assert record.fov == (50.0, 40.0, 39.0) and record.crop == (11, 1, 89, 79) and record.laterality == "right"
    assert [e.action for e in audit_events(db, "image", image)] == ["create"]
