"""The import, export and regions commands, run through main.py as a user would."""
from __future__ import annotations

import cv2
import pytest

import main
from storage.images import list_images
from storage.project import create_project
from storage.readers import Role, add_reader, create_first_admin
from storage.reading import ReaderSession
from tests.annotate.fundus import write_photo, write_truncated_jpeg
from tests.conftest import ADMIN_PASSPHRASE, add_reader_as_admin


@pytest.fixture()
def project_dir(tmp_path):
    folder = tmp_path / "clinic"
    create_project(folder, name="Clinic").close()
    return folder


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_import_shows_progress_and_lists_bad_files_with_a_non_zero_exit(project_dir, tmp_path, capsys):
    write_photo(tmp_path / "photos" / "a_L.jpg", seed=1)
    write_photo(tmp_path / "photos" / "b.png", seed=2)
    write_truncated_jpeg(tmp_path / "photos" / "c.jpg")
    code, out, err = run(capsys, "import", tmp_path / "photos", "--project", project_dir, "--split", "test")
    assert code == 1
    assert "Imported 2 new photographs; 0 already known; 1 could not be read." in out
    assert "skipped" in out and "c.jpg" in out and "truncated" in out
    assert "3/3" in err and "[" in err
    code, out, _ = run(capsys, "import", tmp_path / "photos" / "a_L.jpg", "--project", project_dir, "--quiet")
    assert code == 0 and "Imported 0 new photographs; 1 already known" in out


def test_export_needs_a_reviewer_or_admin_and_writes_the_file(project_dir, tmp_path, capsys, monkeypatch):
    code, _, err = run(capsys, "export", "--out", tmp_path / "x.csv", "--project", project_dir)
    assert code == 1 and err.startswith("octant: ") and err.count("\n") == 1 and "--as" in err
    from storage.project import open_project

    with open_project(project_dir) as project:
        boss = create_first_admin(project.database, "Boss", ADMIN_PASSPHRASE)
        add_reader(project.database, "Dr Kim", Role.OPHTHALMOLOGIST, acting_reader_id=boss.id)
    code, _, err = run(capsys, "export", "--out", tmp_path / "x.csv", "--as", "Dr Kim", "--project", project_dir)
    assert code == 1 and "reviewers and admins" in err
    monkeypatch.setenv("OCTANT_CREDENTIAL", "not the passphrase")   # an admin's name is not enough
    code, _, err = run(capsys, "export", "--out", tmp_path / "labels.json", "--as", "Boss", "--project", project_dir)
    assert code == 1 and "not right for Boss" in err and not (tmp_path / "labels.json").exists()
    monkeypatch.setenv("OCTANT_CREDENTIAL", ADMIN_PASSPHRASE)
    code, out, _ = run(capsys, "export", "--out", tmp_path / "labels.json", "--as", "Boss", "--project", project_dir)
    assert code == 0 and (tmp_path / "labels.json").is_file() and "Exported 0 reads of 0 images" in out
    code, _, err = run(capsys, "export", "--out", tmp_path / "labels.txt", "--as", "Boss", "--project", project_dir)
    assert code == 1 and "--format" in err


def test_regions_of_a_photo_file(tmp_path, capsys):
    photo = write_photo(tmp_path / "eye.png", size=(160, 120))
    code, out, _ = run(capsys, "regions", photo, "--disc", "110,55", "--fovea", "60,62", "--out", tmp_path / "map.png")
    assert code == 0, out
    drawn = cv2.imread(str(tmp_path / "map.png"))
    assert drawn.shape == (120, 160, 3) and not (drawn == cv2.imread(str(photo))).all()


def test_regions_refuses_degenerate_landmarks_in_one_line(tmp_path, capsys):
    photo = write_photo(tmp_path / "eye.png", size=(160, 120))
    code, _, err = run(capsys, "regions", photo, "--disc", "80,60", "--fovea", "80,60", "--out", tmp_path / "m.png")
    assert code == 1 and err.startswith("octant: The disc and fovea are at the same place") and err.count("\n") == 1
    with pytest.raises(SystemExit):
        main.main(["regions", str(photo), "--disc", "80", "--fovea", "1,2", "--out", str(tmp_path / "m.png")])


def test_regions_of_a_project_image_uses_stored_landmarks(project_dir, tmp_path, capsys):
    write_photo(tmp_path / "photos" / "a.jpg", size=(160, 120))
    run(capsys, "import", tmp_path / "photos", "--project", project_dir, "--quiet")
    from storage.assignment import assign_readers
    from storage.project import open_project

    with open_project(project_dir) as project:
        readers = [add_reader_as_admin(project.database, f"Dr {i}", Role.OPHTHALMOLOGIST) for i in range(3)]
        assign_readers(project.database)
        (image,) = list_images(project.database)
        ReaderSession(project.database, readers[0].id).set_landmarks(image.id, disc=(110.0, 55.0), fovea=(60.0, 62.0))
    out_png = tmp_path / "map.png"
    code, _, err = run(capsys, "regions", image.id, "--out", out_png, "--project", project_dir)
    assert code == 1 and "--as READER" in err
    code, _, err = run(capsys, "regions", image.id, "--out", out_png, "--project", project_dir, "--as", "Dr 0")
    assert code == 0, err
    assert cv2.imread(str(out_png)).shape == (120, 160, 3)
    code, _, err = run(capsys, "regions", 99, "--out", out_png, "--project", project_dir, "--as", "Dr 0")
    assert code == 1 and "no image number 99" in err


def test_regions_without_a_reader_uses_the_models_stored_landmarks(project_dir, tmp_path, capsys):
    write_photo(tmp_path / "photos" / "a.jpg", size=(160, 120))
    run(capsys, "import", tmp_path / "photos", "--project", project_dir, "--quiet")
    from storage.predictions import save_model_landmarks
    from storage.project import open_project

    with open_project(project_dir) as project:
        (image,) = list_images(project.database)
        save_model_landmarks(project.database, image.id, (100.0, 50.0), (50.0, 60.0), "landmarks-old")
        save_model_landmarks(project.database, image.id, (110.0, 55.0), (60.0, 62.0), "landmarks-new")
    code, _, err = run(capsys, "regions", image.id, "--out", tmp_path / "model.png", "--project", project_dir)
    assert code == 0, err
    code, _, err = run(capsys, "regions", image.id, "--out", tmp_path / "given.png", "--project", project_dir,
                       "--disc", "110,55", "--fovea", "60,62")
    assert code == 0, err
    # The newest model landmarks, exactly: the same picture as those landmarks given by hand.
    assert (cv2.imread(str(tmp_path / "model.png")) == cv2.imread(str(tmp_path / "given.png"))).all()
