"""One training orchestration for ``python main.py train`` and the workstation's training panel.

Samples (the project's consensus, or marked as such the public IDRiD reference labels) → a
derivation/validation split (§3.1: 90/10 of the train split) → datasets → task → the engine's
``train`` (``models/engine/training.py``) → the best epoch as fp16 safetensors with a metadata header →
for a project, the model registered with its metrics, config and label snapshot, and measured on
the test split. The guided network can also return its validation photos' activation maps.

Every finished run writes a new weights file (unless the caller names one): Start reuses a run
folder, and must never overwrite the weights of a model registered earlier, perhaps the active one.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from models.engine.training import ProgressEvent, TrainConfig, TrainResult, load_best, train
from models.engine.weights import save_weights
from models.findings.data import (
    FindingDataset,
    FindingSample,
    consensus_samples,
    photos_as_imported,
    split_derivation_validation,
)
from models.findings.guided import GuidedConfig, GuidedNet, GuidedTask, predict
from storage.errors import OctantError

if TYPE_CHECKING:
    from models.diagnosis.attention_mask import AttentionConfig
    from storage.predictions import ModelRecord
    from storage.project import ProjectHandle

WEIGHTS_VERSION = 1
REFERENCES = ("idrid",)
Progress = Callable[[ProgressEvent], None] | None


@dataclass
class GalleryItem:
    key: str
    photo: np.ndarray                     # RGB uint8, input_size × input_size (border cropped)
    activation: np.ndarray                # float32 map_size × map_size, sigmoid output
    probability: float
    present: bool                         # consensus label
    cue: np.ndarray                       # regional cue at map size (zeros for negatives)


@dataclass
class TrainingOutcome:
    result: TrainResult
    weights_path: Path | None = None      # None when cancelled (train again with resume to go on)
    metrics: dict = field(default_factory=dict)   # best validation metrics, plus test_* for a project
    model_id: int | None = None           # registry id (a project only)
    skipped: list[str] = field(default_factory=list)   # why each project photo was left out (changed since import)
    gallery: list[GalleryItem] = field(default_factory=list)
    counts: dict = field(default_factory=dict)    # photos per derivation, validation, test

    @property
    def finished(self) -> bool:
        return self.weights_path is not None


def unique_weights_file(run_dir: Path, name: str) -> Path:
    """``<run_dir>/<name>-<UTC stamp>.safetensors``, a new file for every finished run."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    path = Path(run_dir) / f"{name}-{stamp}.safetensors"
    n = 1
    while path.exists():  # two runs finished within a second
        path, n = Path(run_dir) / f"{name}-{stamp}-{n}.safetensors", n + 1
    return path


def train_guided(project: ProjectHandle | None, config: GuidedConfig, engine: TrainConfig, run_dir: Path, name: str, *,
                 reference: str | None = None, validation_fraction: float = 0.1, resume: bool = True,
                 export: Path | None = None, progress: Progress = None, cancel: threading.Event | None = None,
                 fold: tuple[int, int] | None = None, gallery_size: int = 0, cue_source: str = "regions",
                 complete_cues_only: bool = False,
                 data_root: Path | None = None) -> TrainingOutcome:
    """Present/absent photos of ``config.finding`` → ``GuidedTask`` → engine → weights (→ registry).

    ``cue_source="lesions"`` (public reference data only) cues positives by their lesions' map
    cells instead of their regions (``models.findings.data.lesion_cue``). ``complete_cues_only``
    trains on no positive whose cue may miss lesions (public boxes), whose maps guidance leaves
    free; validation keeps them, so its figures stay comparable (measured in docs/benchmarks.md:
    it did not stop the band the starters light along the fundus edge). ``data_root`` is the public
    data folder (default ``$OCTANT_PUBLIC_DATA``)."""
    _check_source(project, reference)
    skipped: list[str] = []
    test_samples: list[FindingSample]
    if cue_source != "regions" and reference is None:
        raise OctantError("Lesion cues need public reference data (--reference idrid): readers label regions.")
    if reference == "idrid":
        from models.findings.reference_labels import idrid_reference_samples

        samples, test_samples = idrid_reference_samples(config.finding, data_root), []
        labels = "reference: IDRiD segmentation masks + IDRiD/CODRAS boxes and grades" + (
            "; cues: the lesions' map cells (masks, boxes)" if cue_source == "lesions" else "")
    else:
        assert project is not None   # _check_source: without a public reference there is a project
        k = project.settings().consensus_k
        samples, skipped = photos_as_imported(consensus_samples(project.database, config.finding, "train", k=k))
        test_samples, skipped_test = photos_as_imported(consensus_samples(project.database, config.finding, "test", k=k))
        skipped += skipped_test
        labels = f"consensus of three readers (k = {k})"
    derivation, validation = guided_split(samples, validation_fraction, engine.seed, fold)
    if complete_cues_only:
        derivation = drop_incomplete_positives(derivation)
    _check_both_classes(derivation, "derivation")
    _check_validation(validation)
    counts = {"derivation": len(derivation), "validation": len(validation), "test": len(test_samples)}
    cache = photo_cache_root(project, reference)
    train_set = FindingDataset(derivation, config.input_size, config.map_size, cache, cue_source)
    validation_set = FindingDataset(validation, config.input_size, config.map_size, cache, cue_source)
    task = GuidedTask(config, train_set, validation_set)
    result = _run_engine(task, engine, run_dir, resume, progress, cancel)
    if result.cancelled:
        return TrainingOutcome(result, counts=counts, skipped=skipped)
    model = task.build_model()
    snapshot = {"labels": labels, "derivation": train_set.label_snapshot(),
                "validation": validation_set.label_snapshot()}
    test_metrics = {}
    if test_samples and result.best_path.is_file():
        load_best(model, run_dir)
        test_set = FindingDataset(test_samples, config.input_size, config.map_size, cache)
        snapshot["test"] = test_set.label_snapshot()
        test_metrics = evaluate_loader(task, model, test_set, engine.batch_size, torch.device("cpu"))
    network = f"guided:{config.finding}"
    metadata = {"architecture": "guided", "network": network, "config": config.to_dict(),
                "engine": engine.to_dict(), "labels": labels, "cue_source": cue_source,
                "complete_cues_only": complete_cues_only,
                "input": "black border cropped, RGB in [0, 1], input_size × input_size", "counts": counts,
                **({"validation_fold": list(fold)} if fold else {})}
    outcome = _finish(project, model, task, result, run_dir, name, network, export, metadata, snapshot, test_metrics)
    outcome.counts, outcome.skipped = counts, skipped
    outcome.gallery = validation_gallery(model, validation_set, gallery_size)
    return outcome


def guided_split(samples: list, validation_fraction: float, seed: int,
                 fold: tuple[int, int] | None = None) -> tuple[list, list]:
    """Derivation / validation drawn per label and per cue kind, so that validation holds complete
    cues to measure AIR on."""
    return split_derivation_validation(samples, validation_fraction, seed,
                                       stratum=lambda s: (s.present, s.cue_complete), fold=fold)


def drop_incomplete_positives(samples: list) -> list:
    """The samples less the positives whose cue may miss lesions (negatives' empty cues are complete)."""
    return [s for s in samples if s.cue_complete or not s.present]


def train_attention(project: ProjectHandle | None, config: AttentionConfig, engine: TrainConfig, run_dir: Path, name: str, *,
                    reference: str | None = None, validation_fraction: float = 0.1, resume: bool = True,
                    export: Path | None = None, progress: Progress = None, cancel: threading.Event | None = None,
                    data_root: Path | None = None, fold: tuple[int, int] | None = None) -> TrainingOutcome:
    """Diagnosis photos → masks from pre-segmentation → ``AttentionTask`` → engine → weights.

    For a project the classes are its diagnosis classes; IDRiD's reference keeps the config's
    (the five retinopathy grades)."""
    from models.diagnosis.attention_mask import (
        AttentionClassifier,
        AttentionTask,
        diagnosis_dataset,
        fine_tuning_config,
        load_structure_models,
    )
    from models.engine.device import pick_device
    from models.findings.data import GradedPhoto, consensus_diagnosis_photos, idrid_grade_photos

    _check_source(project, reference)
    skipped: list[str] = []
    test_photos: list[GradedPhoto]
    if engine.init_weights:
        config = fine_tuning_config(config, engine.init_weights)
    if config.frozen_blocks:
        AttentionClassifier(config)   # refuses more frozen blocks than the encoder has before photos are read
    if reference == "idrid":
        from storage.locations import public_data_dir

        photos, test_photos = idrid_grade_photos(public_data_dir(data_root)), []
        labels = "reference: IDRiD retinopathy grades"
    else:
        assert project is not None   # _check_source: without a public reference there is a project
        config = dataclasses.replace(config, classes=list(project.settings().diagnosis_classes))
        photos, skipped = photos_as_imported(consensus_diagnosis_photos(project.database, config.classes, "train"))
        test_photos, skipped_test = photos_as_imported(consensus_diagnosis_photos(project.database, config.classes, "test"))
        skipped += skipped_test
        labels = "consensus diagnosis of three readers (majority)"
    derivation, validation = split_derivation_validation(photos, validation_fraction, engine.seed,
                                                         stratum=lambda photo: photo.label, fold=fold)
    if len({p.label for p in derivation}) < 2:
        raise OctantError("Training a diagnosis classifier needs photos of at least two diagnoses; "
                          "label more photos first.")
    _check_validation(validation)
    device = pick_device(engine.device)
    structures = load_structure_models(device) if config.masked else None
    counts = {"derivation": len(derivation), "validation": len(validation), "test": len(test_photos)}
    cache = photo_cache_root(project, reference)
    train_set = diagnosis_dataset(derivation, config, structures, device, cache)
    validation_set = diagnosis_dataset(validation, config, structures, device, cache)
    task = AttentionTask(config, train_set, validation_set)
    result = _run_engine(task, engine, run_dir, resume, progress, cancel)
    if result.cancelled:
        return TrainingOutcome(result, counts=counts, skipped=skipped)
    model = task.build_model()
    snapshot = {"labels": labels, "derivation": train_set.label_snapshot(config.classes),
                "validation": validation_set.label_snapshot(config.classes)}
    extra = {}
    if result.best_path.is_file():
        load_best(model, run_dir)
        model.to(device)
        extra = _diagnosis_metrics(model, task, validation_set, engine.batch_size, device, "val")
        if test_photos:
            test_set = diagnosis_dataset(test_photos, config, structures, device, cache)
            snapshot["test"] = test_set.label_snapshot(config.classes)
            extra.update(_diagnosis_metrics(model, task, test_set, engine.batch_size, device, "test"))
        model.cpu()
    metadata = {"architecture": f"attention-mask {config.backbone}", "network": "attention-mask",
                "config": config.to_dict(), "engine": engine.to_dict(), "labels": labels,
                "input": "black border cropped, RGB in [0, 1] times the attention mask, ImageNet-normalised inside",
                "counts": counts, **({"validation_fold": list(fold)} if fold else {})}
    outcome = _finish(project, model, task, result, run_dir, name, "attention-mask", export, metadata, snapshot, extra)
    outcome.counts, outcome.skipped = counts, skipped
    return outcome


def photo_cache_root(project: ProjectHandle | None, reference: str | None) -> Path | None:
    """Patients' photos are cached inside their project; public reference photos in the user's
    cache folder (None: ``finding_data``'s default)."""
    from storage.locations import project_cache_dir

    return None if reference is not None or project is None else project_cache_dir(project.root)


def _run_engine(task, engine: TrainConfig, run_dir: Path, resume: bool, progress: Progress,
                cancel: threading.Event | None) -> TrainResult:
    """The engine's ``train``, unless cancelled while the photos were decoded (a large project's take
    a while): then nothing starts and the run folder keeps what an earlier run saved."""
    if _cancelled(cancel):
        return _not_started(run_dir)
    return train(task, engine, run_dir, progress, cancel, resume=resume)


def _finish(project: ProjectHandle | None, model: torch.nn.Module, task, result: TrainResult, run_dir: Path, name: str, network: str,
            export: Path | None, metadata: dict, snapshot: dict, extra_metrics: dict) -> TrainingOutcome:
    """The best epoch as fp16 weights with metadata, then (for a project) the registry entry."""
    if not result.best_path.is_file():
        raise OctantError(f"Training stopped before the first epoch ended; nothing was saved in {run_dir}.")
    load_best(model, run_dir)
    metrics = {**result.best_metrics, **extra_metrics}
    weights_path = Path(export) if export is not None else unique_weights_file(run_dir, name)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    save_weights(model, weights_path, {**metadata, "metrics": metrics, "trained": stamp,
                                       "version": WEIGHTS_VERSION, "cancelled": result.cancelled})
    model_id = None
    if project is not None:
        from storage.predictions import register_model

        model_id = register_model(project.database, name, network, metrics,
                                  {"task": task.task_config(), "engine": metadata["engine"]}, snapshot,
                                  str(weights_path))
    return TrainingOutcome(result, weights_path, metrics, model_id)


def evaluate_loader(task, model: torch.nn.Module, dataset, batch_size: int, device) -> dict:
    """The task's validation metrics on another split (the test split), named ``test_*``."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    model.to(device).eval()
    with torch.no_grad():
        metrics = task.validate(model, loader, device)
    return {f"test_{k.removeprefix('val_')}": float(v) for k, v in metrics.items()}


def _diagnosis_metrics(model, task, dataset, batch_size: int, device, prefix: str) -> dict:
    from models.diagnosis.attention_mask import diagnosis_report, predict_classes

    loader = DataLoader(dataset, batch_size=batch_size)
    found = diagnosis_report(*predict_classes(model, loader, device, task.inputs), task.config.classes)
    return {f"{prefix}_{k}": v for k, v in found.items()}


def validation_gallery(model: GuidedNet, dataset: FindingDataset, size: int) -> list[GalleryItem]:
    """The best epoch's activation maps on the first validation photos, positives first."""
    order = sorted(range(len(dataset)), key=lambda i: not dataset.samples[i].present)[:size]
    if not order:
        return []
    outputs = predict(model.cpu(), DataLoader(Subset(dataset, order), batch_size=len(order)), torch.device("cpu"))
    return [GalleryItem(dataset.samples[i].key, dataset.photos[i], outputs["activations"][j],
                        float(outputs["probabilities"][j]), bool(dataset.samples[i].present), dataset.cues[i])
            for j, i in enumerate(order)]


def saved_model_gallery(project: ProjectHandle, model: ModelRecord, size: int = 8) -> list[GalleryItem]:
    """A registered guided model's activation maps on the validation photos it was measured on.

    ``model`` is a ``storage.predictions.ModelRecord``; the photos and labels come from its label
    snapshot (what the model saw), not from today's consensus, which may have moved on.
    """
    network, config = load_guided_model(model)
    seen = (model.label_snapshot or {}).get("validation", {})
    samples = [dataclasses.replace(s, present=bool(seen[s.key]["present"]), regions=frozenset(seen[s.key]["regions"]))
               for s in consensus_samples(project.database, config.finding, "train", k=project.settings().consensus_k)
               if s.key in seen]
    dataset = FindingDataset(samples, config.input_size, config.map_size, photo_cache_root(project, None))
    return validation_gallery(network, dataset, size)


def load_guided_model(model: ModelRecord) -> tuple[GuidedNet, GuidedConfig]:
    """The network of a registered guided model (``storage.predictions.ModelRecord``), on the CPU.

    Its architecture comes from the task config saved with it, so a model trained with other
    settings (width, input size, size class) loads as it was trained.
    """
    from models.engine.weights import load_weights

    task = (model.config or {}).get("task", {})
    if task.get("network") != "guided":
        raise OctantError(f"Model {model.name} is not a guided finding network; choose a guided one.")
    config = GuidedConfig.from_saved(task)
    network = GuidedNet(config)
    load_weights(network, model.path)
    return network, config


def _check_source(project: ProjectHandle | None, reference: str | None) -> None:
    if reference is not None and reference not in REFERENCES:
        raise OctantError(f"There are no public reference labels called {reference!r}; use one of {REFERENCES}.")
    if reference is None and project is None:
        raise OctantError("Open a project to train on its readers' labels, or name a public reference.")


def _check_both_classes(samples, what: str) -> None:
    present = sum(s.present for s in samples)
    if present == 0 or present == len(samples):
        raise OctantError(f"The {what} set needs photos with and without the finding ({present} of "
                          f"{len(samples)} have it); label more photos first.")


def _check_validation(validation) -> None:
    if not validation:
        raise OctantError("No photo is left for validation; label more photos or raise the validation share.")


def _cancelled(cancel: threading.Event | None) -> bool:
    return cancel is not None and cancel.is_set()


def _not_started(run_dir: Path) -> TrainResult:
    """A run cancelled before its first batch: the folder keeps whatever an earlier run saved."""
    history = []
    try:
        history = json.loads((Path(run_dir) / "history.json").read_text())
    except (OSError, ValueError):
        pass
    return TrainResult({}, history, Path(run_dir) / "best.pt", Path(run_dir) / "last.pt", cancelled=True)
