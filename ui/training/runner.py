"""Trainings as the panel runs them: consensus labels → datasets → engine → weights → registry,
plus, for the guided network, the validation photos' activation maps for the gallery.

Plain Python (no Qt): the panel's worker calls ``run_guided`` / ``run_attention`` on its thread.
They mirror ``models.train_commands.train_guided_from_args`` / ``train_attention_from_args`` step
for step, but take the full network and engine configs that the panel's forms edit (the command
line exposes only a few of their fields). Meant to move into ``models/`` as the one
``train_guided(...)`` / ``train_attention(...)`` that both the command and the panel call.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch

from models.finding_data import FindingDataset, consensus_samples, split_derivation_validation
from models.guided import GuidedConfig, GuidedTask, predict
from models.train_commands import TrainingOutcome, evaluate_loader, finish_training
from models.training import ProgressEvent, TrainConfig, TrainResult, load_best, train
from storage.errors import OctantError

if TYPE_CHECKING:
    from models.attention_mask import AttentionConfig


@dataclass
class GuidedRequest:
    guided: GuidedConfig                  # finding, size class, input size, width, λ, ...
    engine: TrainConfig
    run_dir: Path
    name: str                             # registry name, e.g. "guided_haemorrhage"
    validation_fraction: float = 0.1      # §3.1: 90 % derivation, 10 % validation
    resume: bool = False
    gallery_size: int = 8


@dataclass
class GalleryItem:
    key: str
    photo: np.ndarray                     # RGB uint8, input_size × input_size (border cropped)
    activation: np.ndarray                # float32 map_size × map_size, sigmoid output
    probability: float
    present: bool                         # consensus label
    cue: np.ndarray                       # regional cue at map size (zeros for negatives)


@dataclass
class RunOutcome:
    result: TrainResult
    training: TrainingOutcome | None      # None when cancelled (resume continues the run)
    gallery: list[GalleryItem] = field(default_factory=list)
    counts: dict = field(default_factory=dict)


def weights_file(request) -> Path:
    """A new file per finished run: Start reuses the run folder, and must not overwrite the weights
    of a model registered earlier (perhaps the active one) from the same folder."""
    import datetime as dt

    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return request.run_dir / f"{request.name}-{stamp}.safetensors"


def _cancelled(cancel: threading.Event | None) -> bool:
    return cancel is not None and cancel.is_set()


def _not_started(run_dir: Path) -> TrainResult:
    """A run cancelled before its first batch: the folder keeps whatever an earlier run saved."""
    history = []
    try:
        history = json.loads((run_dir / "history.json").read_text())
    except (OSError, ValueError):
        pass
    return TrainResult({}, history, run_dir / "best.pt", run_dir / "last.pt", cancelled=True)


def _check_both_classes(samples, what: str) -> None:
    present = sum(s.present for s in samples)
    if present == 0 or present == len(samples):
        raise OctantError(f"The {what} set needs photos with and without the finding ({present} of "
                          f"{len(samples)} have it); label more photos first.")


def run_guided(project, request: GuidedRequest, progress: Callable[[ProgressEvent], None] | None = None,
               cancel: threading.Event | None = None) -> RunOutcome:
    config, engine = request.guided, request.engine
    k = project.settings().consensus_k
    samples = consensus_samples(project.database, config.finding, "train", k=k)
    test_samples = consensus_samples(project.database, config.finding, "test", k=k)
    derivation, validation = split_derivation_validation(samples, request.validation_fraction, engine.seed)
    _check_both_classes(derivation, "derivation")
    if not validation:
        raise OctantError("No photo is left for validation; label more photos or raise the validation share.")
    labels = f"consensus of three readers (k = {k})"
    counts = {"derivation": len(derivation), "validation": len(validation), "test": len(test_samples)}
    train_set = FindingDataset(derivation, config.input_size, config.map_size)
    validation_set = FindingDataset(validation, config.input_size, config.map_size)
    if _cancelled(cancel):  # decoding a large project's photos takes a while: honour a cancel before training
        return RunOutcome(_not_started(request.run_dir), None, counts=counts)
    task = GuidedTask(config, train_set, validation_set)
    result = train(task, engine, request.run_dir, progress, cancel, resume=request.resume)
    if result.cancelled:
        return RunOutcome(result, None, counts=counts)
    model = task.build_model()
    snapshot = {"labels": labels, "derivation": train_set.label_snapshot(),
                "validation": validation_set.label_snapshot()}
    network = f"guided:{config.finding}"
    metadata = {"architecture": "guided", "network": network, "config": config.to_dict(),
                "engine": engine.to_dict(), "labels": labels,
                "input": "black border cropped, RGB in [0, 1], input_size × input_size", "counts": counts}

    def record(metrics: dict, path: Path) -> int:
        from storage.predictions import register_model

        return register_model(project.database, request.name, network, metrics,
                              {"task": task.task_config(), "engine": engine.to_dict()}, snapshot, str(path))

    test_metrics = {}
    if test_samples and result.best_path.is_file():
        load_best(model, request.run_dir)
        test_set = FindingDataset(test_samples, config.input_size, config.map_size)
        snapshot["test"] = test_set.label_snapshot()
        test_metrics = evaluate_loader(task, model, test_set, engine.batch_size, torch.device("cpu"))
    training = finish_training(model, result, request.run_dir, weights_file(request), metadata, record, test_metrics)
    gallery = validation_gallery(model, validation_set, request.gallery_size)
    return RunOutcome(result, training, gallery, counts)


def validation_gallery(model: torch.nn.Module, dataset: FindingDataset, size: int) -> list[GalleryItem]:
    """The best epoch's activation maps on the first validation photos, positives first."""
    from torch.utils.data import DataLoader, Subset

    order = sorted(range(len(dataset)), key=lambda i: not dataset.samples[i].present)[:size]
    if not order:
        return []
    outputs = predict(model.cpu(), DataLoader(Subset(dataset, order), batch_size=len(order)), torch.device("cpu"))
    return [GalleryItem(dataset.samples[i].key, dataset.photos[i], outputs["activations"][j],
                        float(outputs["probabilities"][j]), bool(dataset.samples[i].present), dataset.cues[i])
            for j, i in enumerate(order)]


@dataclass
class AttentionRequest:
    attention: AttentionConfig            # backbone, input size, masked (False: the baseline)
    engine: TrainConfig
    run_dir: Path
    name: str                             # e.g. "dr_grade_attention"
    validation_fraction: float = 0.1
    resume: bool = False


def run_attention(project, request: AttentionRequest, progress: Callable[[ProgressEvent], None] | None = None,
                  cancel: threading.Event | None = None) -> RunOutcome:
    """Mirrors ``models.train_commands.train_attention_from_args`` with the panel's full configs."""
    from torch.utils.data import DataLoader

    from models.attention_mask import (AttentionTask, diagnosis_dataset, diagnosis_report,
                                       load_structure_models, predict_classes)
    from models.device import pick_device
    from models.finding_data import consensus_diagnosis_photos

    config, engine = request.attention, request.engine
    config.classes = list(project.settings().diagnosis_classes)
    photos = consensus_diagnosis_photos(project.database, config.classes, "train")
    test_photos = consensus_diagnosis_photos(project.database, config.classes, "test")
    derivation, validation = split_derivation_validation(photos, request.validation_fraction, engine.seed,
                                                         stratum=lambda photo: photo.label)
    if len({p.label for p in derivation}) < 2:
        raise OctantError("Training a diagnosis classifier needs photos of at least two diagnoses; "
                          "label more photos first.")
    if not validation:
        raise OctantError("No photo is left for validation; label more photos or raise the validation share.")
    device = pick_device(engine.device)
    structures = load_structure_models(device) if config.masked else None
    counts = {"derivation": len(derivation), "validation": len(validation), "test": len(test_photos)}
    train_set = diagnosis_dataset(derivation, config, structures, device)
    validation_set = diagnosis_dataset(validation, config, structures, device)
    if _cancelled(cancel):
        return RunOutcome(_not_started(request.run_dir), None, counts=counts)
    task = AttentionTask(config, train_set, validation_set)
    result = train(task, engine, request.run_dir, progress, cancel, resume=request.resume)
    if result.cancelled:
        return RunOutcome(result, None, counts=counts)
    labels = "consensus diagnosis of three readers (majority)"
    model = task.build_model()
    snapshot = {"labels": labels, "derivation": train_set.label_snapshot(config.classes),
                "validation": validation_set.label_snapshot(config.classes)}
    extra = {}
    if result.best_path.is_file():
        load_best(model, request.run_dir)
        model.to(device)

        def report(dataset, prefix: str) -> dict:
            loader = DataLoader(dataset, batch_size=engine.batch_size)
            found = diagnosis_report(*predict_classes(model, loader, device, task.inputs), config.classes)
            return {f"{prefix}_{k}": v for k, v in found.items()}

        extra = report(validation_set, "val")
        if test_photos:
            test_set = diagnosis_dataset(test_photos, config, structures, device)
            snapshot["test"] = test_set.label_snapshot(config.classes)
            extra.update(report(test_set, "test"))
        model.cpu()
    metadata = {"architecture": f"attention-mask {config.backbone}", "network": "attention-mask",
                "config": config.to_dict(), "engine": engine.to_dict(), "labels": labels,
                "input": "black border cropped, RGB in [0, 1] times the attention mask, ImageNet-normalised inside",
                "counts": counts}

    def record(metrics: dict, path: Path) -> int:
        from storage.predictions import register_model

        return register_model(project.database, request.name, "attention-mask", metrics,
                              {"task": task.task_config(), "engine": engine.to_dict()}, snapshot, str(path))

    training = finish_training(model, result, request.run_dir, weights_file(request), metadata, record, extra)
    return RunOutcome(result, training, [], counts)


def saved_model_gallery(project, model, size: int = 8) -> list[GalleryItem]:
    """A registered guided model's activation maps on the validation photos it was measured on.

    ``model`` is a ``storage.predictions.ModelRecord``; the photos and labels come from its label
    snapshot (what the model saw), not from today's consensus, which may have moved on.
    """
    import dataclasses

    from models.guided import GuidedNet
    from models.weights import load_weights

    task = (model.config or {}).get("task", {})
    if task.get("network") != "guided":
        raise OctantError(f"Model {model.id} is not a guided finding network; activation maps exist only for those.")
    fields = {f.name for f in dataclasses.fields(GuidedConfig)}
    config = GuidedConfig(**{k: v for k, v in task.items() if k in fields})
    seen = (model.label_snapshot or {}).get("validation", {})
    samples = [dataclasses.replace(s, present=bool(seen[s.key]["present"]), regions=frozenset(seen[s.key]["regions"]))
               for s in consensus_samples(project.database, config.finding, "train", k=project.settings().consensus_k)
               if s.key in seen]
    network = GuidedNet(config)
    load_weights(network, model.path)
    return validation_gallery(network, FindingDataset(samples, config.input_size, config.map_size), size)
