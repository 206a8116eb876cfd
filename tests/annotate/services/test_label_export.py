"""COCO and PNG-mask exports (docs/labels.md), checked against pycocotools and the region geometry."""
from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest

from annotate.fov import FieldOfView, fov_mask
from annotate.geometry import region_label_map
from annotate.services.export import export_labels
from storage.assignment import assign_readers
from storage.images import NewImage, add_images
from storage.predictions import save_model_landmarks, save_prediction
from storage.readers import Role, add_reader
from storage.reading import ReaderSession
from tests.conftest import ADMIN_PASSPHRASE, make_admin

WIDTH, HEIGHT, FOV = 400, 300, (200.0, 150.0, 140.0)
LANDMARKS = {"Ahn": ((270.0, 150.0), (170.0, 155.0)), "Baek": ((272.0, 148.0), (168.0, 157.0)),
             "Cho": ((268.0, 152.0), (172.0, 153.0))}


@pytest.fixture()
def labelled(tmp_project):
    """Three photos read by three readers: haemorrhage in {1, 5} / {5, 6} (present by 2 of 3);
    drusen everywhere but the macula and the disc (a region union with a hole); the third photo
    has no reader landmarks but the model's."""
    db = tmp_project.database
    admin = make_admin(db)
    readers = {name: add_reader(db, f"Dr {name}", Role.OPHTHALMOLOGIST, acting_reader_id=admin.id)
               for name in LANDMARKS}
    ids = add_images(db, [NewImage(tmp_project.root / f"eye{i}.png", f"{i + 1:064x}", WIDTH, HEIGHT, "right",
                                   "train", fov=FOV) for i in range(3)])
    assign_readers(db)
    first, second, third = ids
    for name, reader in readers.items():
        session = ReaderSession(db, reader.id)
        disc, fovea = LANDMARKS[name]
        for image_id in (first, second):
            session.set_landmarks(image_id, disc, fovea)
        if name == "Ahn":
            session.set_regions(first, "haemorrhage", {1, 5})
        if name == "Baek":
            session.set_regions(first, "haemorrhage", {5, 6})
        session.set_regions(second, "drusen", {4, 5, 6, 7, 8})
        session.set_regions(third, "drusen", {1})
        for image_id in ids:
            session.mark_done(image_id)
    save_model_landmarks(db, third, (270.0, 150.0), (170.0, 155.0), "test")
    return tmp_project, readers, admin, ids


def expected_mask(regions, disc, fovea):
    inside = fov_mask((HEIGHT, WIDTH), FieldOfView(*FOV))
    codes = region_label_map(disc, fovea, (HEIGHT, WIDTH), inside)
    return np.isin(codes, list(regions))


def mean_landmarks():
    discs, foveas = zip(*LANDMARKS.values())
    return tuple(np.mean(discs, axis=0)), tuple(np.mean(foveas, axis=0))


def test_coco_loads_in_pycocotools_and_its_masks_are_the_chosen_regions(labelled, tmp_path):
    from pycocotools.coco import COCO

    project, readers, admin, ids = labelled
    export_labels(project, tmp_path / "labels.json", "coco", admin.id)
    coco = COCO(str(tmp_path / "labels.json"))
    names = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
    assert {"haemorrhage", "drusen"} <= set(names.values())
    annotations = coco.loadAnns(coco.getAnnIds())
    found = {(a["image_id"], names[a["category_id"]]): a for a in annotations}
    assert set(found) == {(ids[0], "haemorrhage"), (ids[1], "drusen"), (ids[2], "drusen")}
    assert found[ids[0], "haemorrhage"]["regions"] == [1, 5, 6]           # the union of the marking readers
    assert isinstance(found[ids[0], "haemorrhage"]["segmentation"], list)  # polygons
    assert isinstance(found[ids[1], "drusen"]["segmentation"], dict)       # a hole: RLE
    disc, fovea = mean_landmarks()
    for (image_id, finding), annotation in found.items():
        ours = expected_mask(annotation["regions"], disc, fovea)
        theirs = coco.annToMask(annotation).astype(bool)
        assert theirs.shape == (HEIGHT, WIDTH)
        assert (ours & theirs).sum() / (ours | theirs).sum() > 0.97, (image_id, finding)
    image = coco.loadImgs([ids[0]])[0]
    assert (image["file_name"], image["width"], image["height"]) == ("eye0.png", WIDTH, HEIGHT)


def test_masks_per_reader_consensus_final_and_presegmentation(labelled, tmp_path):
    project, readers, admin, ids = labelled
    (project.root / "predictions" / str(ids[0])).mkdir(parents=True)
    cv2.imwrite(str(project.root / "predictions" / str(ids[0]) / "haemorrhages.png"), np.full((HEIGHT, WIDTH), 255, np.uint8))
    save_prediction(project.database, ids[0], "presegmentation", {"mask_folder": f"predictions/{ids[0]}"}, "test")
    out = tmp_path / "masks"
    summary = export_labels(project, out, "masks", admin.id)
    rows = list(csv.DictReader(open(out / "index.csv", encoding="utf-8")))
    assert summary.files == len(rows) + 1 and all((out / r["file"]).is_file() for r in rows)
    ahn = readers["Ahn"].id

    def png(name):
        return cv2.imread(str(out / name), cv2.IMREAD_UNCHANGED)

    disc, fovea = LANDMARKS["Ahn"]
    assert np.array_equal(png(f"{ids[0]}/reader-{ahn}/haemorrhage.png") > 0, expected_mask({1, 5}, disc, fovea))
    assert np.array_equal(png(f"{ids[0]}/reader-{ahn}/regions.png"),
                          region_label_map(disc, fovea, (HEIGHT, WIDTH), fov_mask((HEIGHT, WIDTH), FieldOfView(*FOV))))
    disc, fovea = mean_landmarks()
    assert np.array_equal(png(f"{ids[0]}/consensus/haemorrhage.png") > 0, expected_mask({1, 5, 6}, disc, fovea))
    assert np.array_equal(png(f"{ids[0]}/final/haemorrhage.png") > 0, expected_mask({1, 5, 6}, disc, fovea))
    assert not (out / str(ids[0]) / "consensus" / "drusen.png").exists()      # nobody marked it there
    assert (out / str(ids[2]) / "final" / "drusen.png").is_file()            # drawn with the model's landmarks
    assert not (out / str(ids[2]) / f"reader-{ahn}").exists()                # the reader placed none
    assert png(f"{ids[0]}/presegmentation/haemorrhages.png").min() == 255
    assert {r["record"] for r in rows} == {"reader", "consensus", "final", "presegmentation"}


def test_masks_replace_an_earlier_export_whole(labelled, tmp_path):
    project, readers, admin, ids = labelled
    out = tmp_path / "masks"
    export_labels(project, out, "masks", admin.id)
    (out / str(ids[0]) / "stale.png").write_bytes(b"old")
    export_labels(project, out, "masks", admin.id)
    assert not (out / str(ids[0]) / "stale.png").exists() and (out / "index.csv").is_file()
    assert not (tmp_path / "masks.part").exists()


def test_masks_never_replace_a_folder_that_is_not_an_earlier_export(labelled, tmp_path, capsys, monkeypatch):
    # Trying the product: `export --format masks --out DIR --force` deleted everything in DIR (a file
    # kept there was gone), whatever DIR was: a home folder, the photos, the project itself.
    from main import main

    monkeypatch.setenv("OCTANT_CREDENTIAL", ADMIN_PASSPHRASE)
    project, readers, admin, ids = labelled
    kept = tmp_path / "documents"
    kept.mkdir()
    (kept / "letter.txt").write_text("precious")
    for folder in (kept, project.root):
        before = sorted(path.name for path in folder.iterdir())
        assert main(["export", "--out", str(folder), "--format", "masks", "--force",
                     "--project", str(project.root), "--as", "Admin"]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"octant: {folder} holds other files (") and err.endswith(
            "), not an earlier masks export; give a new or empty folder for the masks (nothing was deleted).\n")
        assert sorted(path.name for path in folder.iterdir()) == before
    assert (kept / "letter.txt").read_text() == "precious"


def test_the_export_command_tells_formats_from_names_and_refuses_mismatches(labelled, tmp_path, capsys, monkeypatch):
    from main import main

    monkeypatch.setenv("OCTANT_CREDENTIAL", ADMIN_PASSPHRASE)   # --as Admin signs in with it
    project, readers, admin, ids = labelled
    base = ["--project", str(project.root), "--as", "Admin"]
    assert main(["export", "--out", str(tmp_path / "c.json"), "--format", "coco", *base]) == 0
    assert json.loads((tmp_path / "c.json").read_text())["annotations"]
    assert main(["export", "--out", str(tmp_path / "m"), "--format", "masks", *base]) == 0
    assert (tmp_path / "m" / "index.csv").is_file()
    assert main(["export", "--out", str(tmp_path / "m.csv"), "--format", "masks", *base]) == 1
    assert "give a folder" in capsys.readouterr().err
    assert main(["export", "--out", str(tmp_path / "m"), *base]) == 1
    assert "add --format" in capsys.readouterr().err
