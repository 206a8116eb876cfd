"""Nothing is written into the source tree at run time.

The main commands a test can run cheaply run as a user would (``python main.py ...``, from the
checkout's root), with HOME and the XDG folders in a temporary folder; the checkout's files are
listed before and after and must be the same. What they write must turn up where it belongs: the
demo project in the user's data folder, caches of public sets in the user's cache folder.
"""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.annotate.fundus import write_photo

REPO = Path(__file__).resolve().parents[1]
# Python's own bytecode caches and the tools' folders are not the app's writing.
NOT_THE_APPS = {".git", ".venv", "__pycache__", ".pytest_cache"}


def source_tree_listing() -> dict[str, tuple[int, int]]:
    listing = {}
    for root, folders, files in os.walk(REPO):
        folders[:] = [f for f in folders if f not in NOT_THE_APPS and not f.endswith(".egg-info")]
        for name in files:
            path = Path(root) / name
            stat = path.stat()
            listing[str(path.relative_to(REPO))] = (stat.st_size, stat.st_mtime_ns)
    return listing


@pytest.fixture
def user_home(tmp_path):
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("OCTANT_") and not k.startswith("XDG_")}
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / "data"), XDG_CACHE_HOME=str(home / "cache"),
               XDG_CONFIG_HOME=str(home / "config"), QT_QPA_PLATFORM="offscreen")
    return home, env


def octant(env: dict, *args, stdin: str | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "main.py", *map(str, args)], cwd=REPO, env=env, input=stdin,
                            capture_output=True, text=True, timeout=300)
    return result


def fake_drishti(folder: Path) -> Path:
    """One Drishti-GS1-shaped photo with its disc and cup soft maps: enough for the cache builder."""
    data = folder / "Drishti-GS1"
    for sub in ("images", "disc_softmap", "cup_softmap"):
        (data / sub).mkdir(parents=True)
    photo = np.full((120, 160, 3), 90, np.uint8)
    disc = np.zeros((120, 160), np.uint8)
    cv2.circle(disc, (80, 60), 20, 255, -1)
    cup = np.zeros_like(disc)
    cv2.circle(cup, (80, 60), 8, 255, -1)
    cv2.imwrite(str(data / "images" / "drishtiGS_001.jpg"), photo)
    cv2.imwrite(str(data / "disc_softmap" / "drishtiGS_001.png"), disc)
    cv2.imwrite(str(data / "cup_softmap" / "drishtiGS_001.png"), cup)
    with open(data / "index.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "disc_bbox"])
        writer.writerow(["drishtiGS_001", "60 40 100 80"])
    return folder


def test_the_main_commands_write_nothing_into_the_source_tree(tmp_path, user_home):
    home, env = user_home
    before = source_tree_listing()
    clinic, photos = tmp_path / "clinic", tmp_path / "photos"
    for seed in range(3):
        write_photo(photos / f"eye_{seed}.jpg", seed=seed, size=(640, 480))

    env = {**env, "OCTANT_ADMIN_PASSPHRASE": "the clinic's long phrase", "OCTANT_CREDENTIAL": "the clinic's long phrase"}
    steps = [
        ("init", str(clinic), "--name", "Clinic", "--admin", "Dr Admin"),
        ("import", str(photos), "--project", str(clinic), "--quiet"),
        *[("readers", "add", f"Dr {name}", "--role", "ophthalmologist", "--as", "Dr Admin", "--project", str(clinic))
          for name in "ABC"],
        ("assign", "--project", str(clinic)),
        ("export", "--out", str(tmp_path / "labels.csv"), "--as", "Dr Admin", "--project", str(clinic)),
        ("screenshot", "--project", str(clinic), "--reader", "Dr A", "--out", str(tmp_path / "shots"),
         "--size", "800x600"),
    ]
    for step in steps:
        result = octant(env, *step)
        assert result.returncode == 0, (step, result.stderr)
    assert (tmp_path / "labels.csv").is_file() and any((tmp_path / "shots").glob("*.png"))

    demo = subprocess.run(
        [sys.executable, "-c", "from annotate.services.demo import create_demo_project;"
                               "from storage.locations import demo_project_dir;"
                               "print(create_demo_project(demo_project_dir()))"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert demo.returncode == 0, demo.stderr
    assert Path(demo.stdout.strip()).is_relative_to(home / "data" / "octant")
    assert (Path(demo.stdout.strip()) / "octant.sqlite").is_file()

    public = fake_drishti(tmp_path / "public")
    cache = subprocess.run(
        [sys.executable, "-c", "from models.segmentation.cache import build_drishti_cache; print(build_drishti_cache())"],
        cwd=REPO, env={**env, "OCTANT_PUBLIC_DATA": str(public)}, capture_output=True, text=True, timeout=300)
    assert cache.returncode == 0, cache.stderr
    assert Path(cache.stdout.strip()).is_relative_to(home / "cache" / "octant")

    assert source_tree_listing() == before


def test_training_without_public_data_says_how_to_point_to_it(tmp_path, user_home):
    _, env = user_home
    result = octant(env, "train-seg", "--task", "disc_cup", "--time-limit", "0.01")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--data DIR" in lines[0] and "OCTANT_PUBLIC_DATA" in lines[0]
    result = octant(env, "train-seg", "--task", "disc_cup", "--data", str(tmp_path / "nowhere"))
    assert result.returncode == 1 and "does not exist" in result.stderr and "--data DIR" in result.stderr
