"""The one training orchestration of the command line and the panel, on a tiny consensus project."""
from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest

from models.findings.guided import GuidedConfig, guided_train_config
from models.findings.training import drop_incomplete_positives, train_guided
from storage.errors import OctantError
from storage.predictions import list_models
from tests.models.findings.test_data import reading_project


@pytest.fixture
def project(tmp_path):
    made, _ = reading_project(tmp_path, [3, 3, 3, 0, 0, 0])
    yield made
    made.close()


def tiny(finding: str = "haemorrhage") -> GuidedConfig:
    return GuidedConfig(finding=finding, size_class="small", input_size=32, width=4)


def engine():
    return guided_train_config(epochs=1, batch_size=4, device="cpu")


def test_every_finished_run_writes_new_weights_and_registers_them_beside_the_earlier_model(project, tmp_path):
    first = train_guided(project, tiny(), engine(), tmp_path / "run", "guided_haemorrhage", gallery_size=2)
    second = train_guided(project, tiny(), engine(), tmp_path / "run", "guided_haemorrhage", resume=False)
    assert first.finished and second.finished and first.weights_path != second.weights_path
    assert first.weights_path.is_file() and second.weights_path.is_file()  # the earlier model keeps its file
    registered = {m.id: m.path for m in list_models(project.database)}
    assert registered == {first.model_id: str(first.weights_path), second.model_id: str(second.weights_path)}
    assert first.counts["derivation"] + first.counts["validation"] == 6
    assert len(first.gallery) == 2 and first.gallery[0].present and not second.gallery


def test_a_photo_replaced_since_import_is_left_out_and_named_and_the_rest_train(project, tmp_path):
    from storage.images import list_images
    from tests.models.findings.test_data import synthetic_fundus

    replaced = list_images(project.database)[0].path
    synthetic_fundus(replaced, mark=99)                       # another photograph under its name
    outcome = train_guided(project, tiny(), engine(), tmp_path / "run", "g")
    assert outcome.finished and outcome.counts["derivation"] + outcome.counts["validation"] == 5
    [sentence] = outcome.skipped
    assert sentence.startswith(f"{replaced} has changed since it was imported") and "left out of training" in sentence


def test_export_names_the_weights_file(project, tmp_path):
    outcome = train_guided(project, tiny(), engine(), tmp_path / "run", "g", export=tmp_path / "out.safetensors")
    assert outcome.weights_path == tmp_path / "out.safetensors" and outcome.weights_path.is_file()


def test_a_cancel_before_training_starts_saves_and_registers_nothing(project, tmp_path):
    cancel = threading.Event()
    cancel.set()
    outcome = train_guided(project, tiny(), engine(), tmp_path / "run", "g", cancel=cancel)
    assert outcome.result.cancelled and not outcome.finished and outcome.weights_path is None
    assert not (tmp_path / "run" / "last.pt").exists() and list_models(project.database) == []


def test_a_finding_nobody_marked_is_refused_with_advice(project, tmp_path):
    with pytest.raises(OctantError, match="with and without the finding"):
        train_guided(project, tiny("drusen"), engine(), tmp_path / "run", "g")


def test_without_a_project_a_public_reference_must_be_named(tmp_path):
    with pytest.raises(OctantError, match="Open a project"):
        train_guided(None, tiny(), engine(), tmp_path / "run", "g")
    with pytest.raises(OctantError, match="no public reference labels"):
        train_guided(None, tiny(), engine(), tmp_path / "run", "g", reference="messidor")


def test_lesion_cues_need_public_reference_data(project, tmp_path):
    with pytest.raises(OctantError, match="reference data"):
        train_guided(project, tiny(), engine(), tmp_path / "run", "g", cue_source="lesions")


def test_complete_cues_only_drops_the_positives_whose_cue_may_miss_lesions():
    from tests.models.findings.test_data import sample

    boxed = dataclasses.replace(sample("box", True, {1}), cue_complete=False)
    kept = [sample("mask", True, {1}), sample("absent", False)]
    assert drop_incomplete_positives([boxed, *kept]) == kept


def test_the_train_command_loads_no_torch_until_it_runs():
    import subprocess
    import sys

    code = ("import argparse, sys; import models.commands.training as t; "
            "t.register(argparse.ArgumentParser().add_subparsers()); print('torch' in sys.modules)")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           cwd=Path(__file__).resolve().parents[3], check=True)
    assert shown.stdout.strip() == "False"


def test_as_published_runs_start_from_scratch_and_baselines_from_their_arms_start():
    from main import build_parser
    from models.commands.training import initial_weights
    from models.engine.weights import starter_for

    def start(*extra):
        return initial_weights(build_parser().parse_args(["train", *extra]))

    guided = ["--network", "guided", "--finding", "haemorrhage"]
    attention = ["--network", "attention-mask"]
    assert start(*guided, "--as-published") == start(*guided, "--as-published", "--guidance-weight", "0") == ""
    assert start(*guided, "--guidance-weight", "0") == start(*guided) == str(starter_for("guided", "haemorrhage"))
    assert start(*attention, "--no-mask") == start(*attention) == str(starter_for("attention-mask"))
    assert start(*attention, "--as-published") == start(*attention, "--as-published", "--no-mask") == ""
