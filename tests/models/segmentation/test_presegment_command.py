"""``presegment`` as a user runs it: the project found like every other command's, and progress
in whole lines from the first photo when the output is a log or a pipe."""
import re
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

import main
from storage.images import list_images
from storage.predictions import latest_model_landmarks, latest_prediction
from storage.project import create_project, open_project
from tests.models.fundus_synthetic import synthetic_fundus

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    image = synthetic_fundus(320, 240)[0]
    for name in ("eye_a", "eye_b", "eye_c"):
        cv2.imwrite(str(folder / f"{name}.png"), image)
        image = cv2.flip(image, 1)   # a different photo (the importer de-duplicates by content)
    return folder


def test_presegment_stores_into_the_project_named_by_octant_project(tmp_path, tiny_weights, photos, monkeypatch,
                                                                    capsys):
    folder = tmp_path / "clinic"
    create_project(folder, name="Clinic").close()
    assert main.main(["import", str(photos / "eye_a.png"), "--project", str(folder), "--quiet"]) == 0
    monkeypatch.chdir(tmp_path)   # not a project: only the variable names it
    monkeypatch.setenv("OCTANT_PROJECT", str(folder))
    assert main.main(["presegment", "--weights-dir", str(tiny_weights), "--device", "cpu"]) == 0
    with open_project(folder) as project:
        (image,) = list_images(project.database)
        assert latest_prediction(project.database, image.id, "presegmentation") is not None
        assert latest_model_landmarks(project.database, image.id) is not None
    err = capsys.readouterr().err
    assert "1 photos pre-segmented" in err
    assert "octant: Pre-segmentation networks: PyTorch " in err   # which backend and precision, and why


def test_presegment_quiet_shows_no_progress_but_names_a_skipped_photo_and_sums_up(tmp_path, tiny_weights, photos,
                                                                                   capsys):
    (tmp_path / "in").mkdir()
    cv2.imwrite(str(tmp_path / "in" / "eye_a.png"), cv2.imread(str(photos / "eye_a.png")))
    (tmp_path / "in" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    capsys.readouterr()
    assert main.main(["presegment", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--quiet",
                      "--weights-dir", str(tiny_weights), "--device", "cpu"]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if "Pre-segmentation networks" not in line]
    assert len(lines) == 2 and "photo/s" not in "".join(lines) and "/2 " not in "".join(lines)   # no progress
    assert lines[0].startswith(f"octant: skipped {tmp_path / 'in' / 'broken.png'}")
    assert lines[1].startswith("1 photos pre-segmented, 0 already done, 1 skipped")


def test_presegment_without_a_project_or_out_says_where_results_can_go(tmp_path, tiny_weights, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OCTANT_PROJECT", raising=False)
    assert main.main(["presegment", "--weights-dir", str(tiny_weights), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--out DIR" in err and "--project DIR" in err


def test_presegment_prints_one_flushed_line_per_photo_when_not_on_a_terminal(tmp_path, tiny_weights, photos):
    """Read from a pipe while the command runs: a whole line for the first photo, then one per photo."""
    command = [sys.executable, str(REPO / "main.py"), "presegment", str(photos), "--out", str(tmp_path / "out"),
               "--weights-dir", str(tiny_weights), "--device", "cpu"]
    with subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=tmp_path) as run:
        first = run.stderr.readline()
        while first.startswith("octant:"):   # notes before the photos (none with all four networks)
            first = run.stderr.readline()
        rest = run.stderr.read()
        assert run.wait(timeout=240) == 0, rest
    assert "1/3" in first and "eye_a.png" in first and "\r" not in first
    lines = [line for line in rest.splitlines() if "/3 " in line]
    assert [re.search(r"\| (\d/3) ", line).group(1) for line in lines] == ["2/3", "3/3"]


def test_a_dicom_photo_is_imported_de_identified_and_presegmented_like_a_png(tmp_path, tiny_weights, photos, capsys):
    """One photo reader for the whole app: the pipeline reads the stored (de-identified) DICOM."""
    pytest.importorskip("pydicom")
    from tests.annotate.dicom_files import write_dicom

    image = cv2.imread(str(photos / "eye_a.png"))
    write_dicom(tmp_path / "Doe_Jane.dcm", image[:, :, ::-1], PatientName="Doe^Jane", PatientID="12345")
    folder = tmp_path / "clinic"
    create_project(folder, name="Clinic").close()
    assert main.main(["import", str(tmp_path / "Doe_Jane.dcm"), "--project", str(folder), "--quiet"]) == 0
    assert main.main(["presegment", "--project", str(folder), "--weights-dir", str(tiny_weights), "--device", "cpu"]) == 0
    with open_project(folder) as project:
        (record,) = list_images(project.database)
        assert record.path.suffix == ".dcm" and record.patient and "Doe" not in record.path.name
        payload = latest_prediction(project.database, record.id, "presegmentation")
        assert payload is not None and (folder / payload["mask_folder"] / "disc.png").is_file()
    assert "1 photos pre-segmented" in capsys.readouterr().err


def test_a_single_channel_grey_jpeg_is_imported_presegmented_and_named_as_red_free(tmp_path, tiny_weights, capsys):
    colour = synthetic_fundus(320, 240)[0]
    cv2.imwrite(str(tmp_path / "colour.png"), colour)
    cv2.imwrite(str(tmp_path / "red_free.jpg"), colour[..., 1])   # one channel: the green, as grey
    folder = tmp_path / "clinic"
    create_project(folder, name="Clinic").close()
    for name in ("colour.png", "red_free.jpg"):
        assert main.main(["import", str(tmp_path / name), "--project", str(folder), "--quiet"]) == 0
    assert main.main(["presegment", "--project", str(folder), "--weights-dir", str(tiny_weights),
                      "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "2 photos pre-segmented" in err and "1 of them was a red-free photo: no lesion regions" in err
    with open_project(folder) as project:
        stored = {Path(image.path).name: latest_prediction(project.database, image.id, "presegmentation")
                  for image in list_images(project.database)}
    assert stored["red_free.jpg"]["red_free"] and stored["red_free.jpg"]["lesion_regions"] == {}
    assert not stored["colour.png"]["red_free"] and stored["red_free.jpg"]["disc"] is not None
