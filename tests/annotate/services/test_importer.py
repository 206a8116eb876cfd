"""Importing photographs: recursion, de-duplication, geometry, and bad files that do not stop it."""
from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from annotate.services.importer import find_image_files, guess_laterality, import_images, iter_report_lines
from storage.errors import CancelledError, InvalidRequestError, NotFoundError
from storage.images import list_images
from tests.annotate.fundus import write_corrupt_jpeg, write_photo, write_truncated_jpeg


@pytest.fixture()
def camera_folder(tmp_path) -> Path:
    """Three good photos (one nested, one upper-case suffix), a copy of one, and four bad files."""
    folder = tmp_path / "camera"
    write_photo(folder / "p001_R.jpg", seed=1)
    write_photo(folder / "visit2" / "p002_left.PNG", seed=2)
    write_photo(folder / "visit2" / "p003.tiff", seed=3)
    shutil.copy(folder / "p001_R.jpg", folder / "visit2" / "copy_of_p001.jpg")
    write_truncated_jpeg(folder / "truncated.jpg", seed=4)
    write_corrupt_jpeg(folder / "corrupt.jpeg")
    (folder / "notes.png").write_text("this is a text file with an image name")
    (folder / "readme.txt").write_text("ignored: not an image name")
    return folder


def test_imports_good_photos_and_reports_each_bad_file(tmp_project, camera_folder):
    seen = []
    report = import_images(tmp_project, [camera_folder], progress=seen.append)
    assert len(report.added) == 3
    assert [p.name for p in report.duplicates] == ["copy_of_p001.jpg"]   # p001_R.jpg sorts first
    failed = {p.name: reason for p, reason in report.failed}
    assert set(failed) == {"truncated.jpg", "corrupt.jpeg", "notes.png"}
    assert "truncated" in failed["truncated.jpg"] and "not a JPEG" in failed["notes.png"]
    assert [s.done for s in seen] == list(range(1, 8)) and seen[-1].total == 7
    images = list_images(tmp_project.database)
    assert {(i.width, i.height) for i in images} == {(96, 64)}
    assert all(i.split == "train" for i in images)
    lines = list(iter_report_lines(report))
    assert lines[0].startswith("Imported 3 new photographs; 1 already known; 3 could not be read")
    assert len(lines) == 4


def test_field_of_view_and_crop_are_stored(tmp_project, camera_folder):
    import_images(tmp_project, [camera_folder / "p001_R.jpg"])
    (image,) = list_images(tmp_project.database)
    cx, cy, r = image.fov
    assert (cx, cy, r) == pytest.approx((48.0, 32.0, 57.6), abs=2.5)   # drawn at w/2, h/2, 0.6·w
    assert image.crop == (0, 0, 96, 64)                                 # the circle overflows the photo
    assert image.laterality == "right"


def test_second_import_adds_nothing_and_loses_nothing(tmp_project, camera_folder):
    first = import_images(tmp_project, [camera_folder], split="test")
    again = import_images(tmp_project, [camera_folder])
    assert again.added == [] and len(again.duplicates) == 4
    images = list_images(tmp_project.database)
    assert sorted(i.id for i in images) == sorted(first.added)
    assert {i.split for i in images} == {"test"}



def test_importing_known_photos_into_the_other_set_says_they_stay_where_they_are(tmp_project, camera_folder):
    # `import --split test` of photos already in train printed only "3 already known": a user took
    # them for test photos. They stay (moving them is an admin's audited `split`), and it is said.
    import_images(tmp_project, [camera_folder / "p001_R.jpg", camera_folder / "visit2"])
    again = import_images(tmp_project, [camera_folder / "visit2"], split="test")
    assert {i.split for i in list_images(tmp_project.database)} == {"train"}
    assert sorted((p.name, kept) for p, kept in again.kept_split) == [
        ("copy_of_p001.jpg", "train"), ("p002_left.PNG", "train"), ("p003.tiff", "train")]
    lines = list(iter_report_lines(again))
    assert "3 of the already known photographs stay in the train set" in lines[1] and "`split" in lines[1]
    same = import_images(tmp_project, [camera_folder / "visit2"], split="train")
    assert same.kept_split == [] and len(list(iter_report_lines(same))) == 1

def test_cancel_keeps_what_was_imported(tmp_project, camera_folder):
    cancel = threading.Event()

    def stop_after_third(step):  # corrupt.jpeg, notes.png, p001_R.jpg (sorted): one photo imported
        if step.done == 3:
            cancel.set()

    with pytest.raises(CancelledError, match="run it again"):
        import_images(tmp_project, [camera_folder], progress=stop_after_third, cancel=cancel)
    assert len(list_images(tmp_project.database)) == 1


def test_copy_puts_photos_inside_the_project_with_relative_paths(tmp_project, camera_folder):
    import_images(tmp_project, [camera_folder / "p001_R.jpg", camera_folder / "visit2"], copy=True)
    images = list_images(tmp_project.database)
    assert len(images) == 3
    for image in images:
        assert image.path.is_file() and image.path.parent == tmp_project.root / "images"
    assert not list((tmp_project.root / "images").glob("*.part"))


def test_wrong_arguments_are_refused_before_anything_is_saved(tmp_project, camera_folder):
    with pytest.raises(NotFoundError, match="does not exist"):
        import_images(tmp_project, [camera_folder / "nope"])
    with pytest.raises(InvalidRequestError, match="train or test"):
        import_images(tmp_project, [camera_folder], split="validation")
    assert list_images(tmp_project.database) == []


def test_files_are_found_recursively_once_each(camera_folder):
    files = find_image_files([camera_folder, camera_folder / "p001_R.jpg"])
    assert len(files) == 7 and len(set(files)) == 7


@pytest.mark.parametrize(
    "name, eye",
    [("p1_L.jpg", "left"), ("P1_R.JPG", "right"), ("scan-OD-2020.png", "right"), ("left eye.tif", "left"),
     ("os_and_od.jpg", None), ("IDRiD_01.jpg", None), ("florida.jpg", None)],
)
def test_laterality_is_guessed_from_file_name_tokens(name, eye):
    assert guess_laterality(Path(name)) == eye


def test_importing_a_known_photo_without_geometry_fills_it_in(tmp_project, camera_folder):
    import hashlib

    from storage.images import add_image

    photo = camera_folder / "p001_R.jpg"
    add_image(tmp_project.database, photo, hashlib.sha256(photo.read_bytes()).hexdigest(), 96, 64)
    report = import_images(tmp_project, [photo])
    assert report.added == [] and report.duplicates == [photo.resolve()]
    (image,) = list_images(tmp_project.database)
    assert image.fov is not None and image.crop == (0, 0, 96, 64)
