"""``presegment`` over several processes (``torchrun``): each photo done by exactly one process,
the shards the same on every rerun, and a rerun does nothing."""
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
from sqlalchemy import func, select

from models.segmentation.pipeline import load_pipeline_models
from models.segmentation.presegment import presegment_to_folder
from storage.project import create_project, open_project
from storage.schema import Landmark, Prediction
from tests.models.fundus_synthetic import synthetic_fundus

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Four different photos; two share the name eye.png in different folders."""
    folder = tmp_path_factory.mktemp("photos")
    image = synthetic_fundus(240, 180)[0]
    flips = (None, 1, 0, -1)   # four different photos (the importer de-duplicates by content)
    for name, flip in zip(("a/eye.png", "b/eye.png", "b/other.png", "c/third.png"), flips):
        (folder / name).parent.mkdir(exist_ok=True)
        cv2.imwrite(str(folder / name), image if flip is None else cv2.flip(image, flip))
    return sorted(folder.rglob("*.png"))


def test_two_shards_cover_the_photos_once_with_the_names_one_process_gives(tmp_path, tiny_weights, photos):
    models, _ = load_pipeline_models(tiny_weights, "cpu")
    alone = presegment_to_folder(photos[:0], tmp_path / "none", models)   # nothing to do is not an error
    assert alone.done == 0
    written = {}
    for rank in (0, 1):
        summary = presegment_to_folder(photos, tmp_path / "out", models, shard=lambda i, rank=rank: i % 2 == rank)
        assert summary.done == 2 and summary.skipped == 0 and not summary.failed
        written[rank] = {folder.name for folder in (tmp_path / "out").iterdir()} - set().union(*written.values())
    assert written[0] == {"eye", "other"} and written[1] == {"eye_2", "third"}   # one process's names
    again = presegment_to_folder(photos, tmp_path / "out", models, shard=lambda i: i % 2 == 1)
    assert again.done == 0 and again.skipped == 2


def torchrun(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(REPO / "main.py"), "presegment", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)


def test_torchrun_presegments_each_project_photo_once_and_a_rerun_does_nothing(tmp_path, tiny_weights, photos,
                                                                                 capsys):
    import main

    folder = tmp_path / "clinic"
    create_project(folder, name="Clinic").close()
    assert main.main(["import", *map(str, photos), "--project", str(folder), "--quiet"]) == 0
    options = ("--project", str(folder), "--weights-dir", str(tiny_weights), "--device", "cpu")

    def stored() -> tuple[dict[int, int], int]:
        with open_project(folder) as project, project.database.reading() as session:
            per_image = dict(session.execute(select(Prediction.image_id, func.count()).group_by(Prediction.image_id)).all())
            return per_image, session.scalar(select(func.count()).select_from(Landmark))

    first = torchrun(*options)
    assert first.returncode == 0, first.stderr[-3000:]
    per_image, landmarks = stored()
    assert sorted(per_image.values()) == [1, 1, 1, 1] and landmarks == 4   # every photo once, by one process
    assert first.stderr.count("photos pre-segmented") == 1                 # rank 0 sums up for both
    progress = [line for line in first.stderr.splitlines() if "photo/s" in line or "s/photo" in line]
    assert progress and all(line.startswith("process 1 of 2") for line in progress)   # one bar: rank 0's
    assert "2/2" in progress[-1]                                                   # its half of the photos
    assert "4 photos pre-segmented, 0 already done, 0 skipped (unreadable, or changed since import) by 2 processes" in first.stderr
    assert all((folder / "predictions" / str(image_id) / "disc.png").is_file() for image_id in per_image)

    assert main.main(["presegment", *options]) == 0   # a rerun, here by one process, skips every photo
    assert "0 photos pre-segmented, 4 already done" in capsys.readouterr().err
    assert stored() == (per_image, landmarks)
