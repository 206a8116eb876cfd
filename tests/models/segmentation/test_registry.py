"""The one registry of pre-segmentation networks: every spec resolves, and the pipeline,
``train-seg`` and the cache builder read what it says."""
import argparse
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from models.segmentation import registry
from models.segmentation.registry import NETWORKS, TRAINABLE, Cache, ensure_caches


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_every_spec_resolves_its_config_builder_and_task(name):
    spec = NETWORKS[name]
    config = spec.config_class()
    assert spec.config_class.from_dict(config.to_dict()) == config
    assert callable(spec.build)
    assert spec.training_task.recipe().epochs > 0
    assert spec.task in TRAINABLE and spec.train_command.startswith(f"python main.py train-seg --task {spec.task}")
    assert spec.caches and spec.working_resolution and spec.fallback and spec.training_data
    assert len(spec.pipeline_input) == 4 and all(side > 0 for side in spec.pipeline_input)


def test_train_seg_offers_exactly_the_trainable_networks():
    from models.commands.segmentation import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    with pytest.raises(SystemExit):
        parser.parse_args(["train-seg", "--task", "lesion_detail"])   # made by the lesions task, not a task
    for task in TRAINABLE:
        assert parser.parse_args(["train-seg", "--task", task]).task == task


def test_a_weights_file_under_its_former_name_is_found(tmp_path):
    spec = NETWORKS["lesion_detail"]
    assert spec.weights_file(tmp_path) is None
    (tmp_path / "microaneurysms.safetensors").write_bytes(b"x")
    assert spec.weights_file(tmp_path) == tmp_path / "microaneurysms.safetensors"
    (tmp_path / "lesion_detail.safetensors").write_bytes(b"x")
    assert spec.weights_file(tmp_path) == tmp_path / "lesion_detail.safetensors"


built: list[Path] = []


def _record_build(data: Path) -> None:
    built.append(data)
    (registry_cache_dir() / "made.npz").write_bytes(b"x")


def registry_cache_dir() -> Path:
    from models.segmentation.cache import public_sets_cache_dir

    return public_sets_cache_dir()


def test_ensure_caches_builds_only_the_missing_caches_of_a_spec(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OCTANT_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "data").mkdir()
    builder = f"{__name__}:_record_build"
    spec = dataclasses.replace(NETWORKS["vessels"], caches=(Cache("made.npz", builder),))
    monkeypatch.setitem(registry.NETWORKS, "vessels", spec)
    built.clear()
    ensure_caches("vessels", tmp_path / "data")
    ensure_caches("vessels", tmp_path / "data")
    assert built == [tmp_path / "data"]
    assert "building the cache made.npz" in capsys.readouterr().err


def test_a_data_folder_without_the_sets_is_one_sentence(tmp_path, monkeypatch, capfd):
    # A new-user trial: `train-seg --task vessels --data FOLDER` on a folder of other photos ended in
    # FileNotFoundError("cannot read FOLDER/DRIVE/training/images/21_training.tif") and its traceback.
    from main import main

    monkeypatch.setenv("OCTANT_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "photos").mkdir()
    assert main(["train-seg", "--task", "vessels", "--data", str(tmp_path / "photos"), "--epochs", "1"]) == 1
    err = capfd.readouterr().err.splitlines()   # capfd: OpenCV's own warnings go to the descriptor
    assert err[-1] == (f"octant: {tmp_path / 'photos'} does not hold the public data sets as published (cannot read "
                       f"{tmp_path / 'photos' / 'DRIVE' / 'training' / 'images' / '21_training.tif'}); pass --data DIR "
                       "or set OCTANT_PUBLIC_DATA=DIR to the folder holding DRIVE, IDRiD-landmarks, "
                       "IDRiD-segmentation and Drishti-GS1."), err
    assert not list((tmp_path / "cache").rglob("*.npz")) and not any("WARN" in line for line in err)


def test_a_missing_network_says_its_own_fallback_and_train_command(tmp_path, monkeypatch):
    from models.segmentation.pipeline import load_pipeline_models

    spec = dataclasses.replace(NETWORKS["vessels"], fallback="the test fallback", train_options="--epochs 1")
    monkeypatch.setitem(registry.NETWORKS, "vessels", spec)
    _, messages = load_pipeline_models(tmp_path, "cpu")
    vessels = [m for m in messages if m.startswith("vessels:")]
    assert vessels and "the test fallback" in vessels[0]
    assert "`python main.py train-seg --task vessels --epochs 1`" in vessels[0]


def test_reading_the_registry_loads_no_torch():
    code = ("import sys; import models.segmentation.registry as r; "
            "print(len(r.NETWORKS), 'torch' in sys.modules)")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           cwd=Path(__file__).resolve().parents[3], check=True)
    assert shown.stdout.split() == [str(len(NETWORKS)), "False"]
