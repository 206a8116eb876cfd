"""``python main.py train``: train a guided (finding) or attention-mask (diagnosis) network.

The same records as the workstation's training panel: a run folder with config, checkpoints and
history (``models/training.py``), fp16 safetensors of the best epoch with a metadata header, and,
for a project, the model registered in its database with metrics, config and the label snapshot.

Labels come from the project's consensus (``--project``; derivation/validation 90/10 of the train
split, the test split measured at the end) or, marked as such, from public IDRiD reference labels
(``--reference idrid``; no test split, validation only).
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch.utils.data import DataLoader

from models.training import ProgressEvent, TrainConfig, TrainResult, load_best, train
from models.weights import save_weights
from storage.errors import OctantError

WEIGHTS_VERSION = 1


@dataclass
class TrainingOutcome:
    result: TrainResult
    weights_path: Path | None
    metrics: dict                 # best validation metrics, plus test_* for a project
    model_id: int | None = None
    notes: dict = field(default_factory=dict)


def register(subparsers) -> None:
    from storage.commands import add_project_argument

    parser = subparsers.add_parser("train", help="train a guided finding network or the attention-mask classifier",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("--network", required=True, choices=("guided", "attention-mask"))
    parser.add_argument("--finding", help="finding code for --network guided (e.g. haemorrhage)")
    parser.add_argument("--reference", choices=("idrid",), default=None,
                        help="train on public IDRiD reference labels instead of the project's consensus")
    add_project_argument(parser)
    parser.add_argument("--input-size", type=int, default=None, help="network input side in pixels")
    parser.add_argument("--width", type=int, default=8, help="guided: base channels")
    parser.add_argument("--guidance-weight", type=float, default=1.0, help="guided: λ of eq. 3 (0 = unguided)")
    parser.add_argument("--backbone", default="efficientnet_b0", help="attention-mask: timm EfficientNet name")
    parser.add_argument("--no-mask", action="store_true", help="attention-mask: the unmasked baseline")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="auto (default), cpu, cuda or mps")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast on the CPU")
    parser.add_argument("--validation-fraction", type=float, default=0.1)
    parser.add_argument("--max-batches", type=int, default=0, help="batches per epoch (0 = all)")
    parser.add_argument("--time-limit", type=float, default=0.0, help="seconds of training (0 = none)")
    parser.add_argument("--workers", type=int, default=0, help="data loader processes")
    parser.add_argument("--run-dir", type=Path, default=None, help="checkpoints (default: under the project)")
    parser.add_argument("--export", type=Path, default=None, help="write the best weights here (.safetensors)")
    parser.add_argument("--name", default=None, help="model name in the registry")
    parser.add_argument("--no-resume", action="store_true", help="start over even if the run folder has a checkpoint")
    parser.set_defaults(func=run_train)


def engine_overrides(args: argparse.Namespace) -> dict:
    changes = {"seed": args.seed, "device": args.device, "cpu_bf16": args.bf16,
               "max_batches_per_epoch": args.max_batches, "time_limit_s": args.time_limit,
               "num_workers": args.workers}
    for name, key in (("epochs", "epochs"), ("batch_size", "batch_size"), ("lr", "lr")):
        if getattr(args, name) is not None:
            changes[key] = getattr(args, name)
    return changes


def run_train(args: argparse.Namespace) -> int:
    if args.reference is None and args.project is None:
        from storage.commands import default_project_folder

        args.project = default_project_folder()
    bar = ProgressBar()
    if args.network == "guided":
        outcome = train_guided_from_args(args, progress=bar, cancel=None)
    else:
        outcome = train_attention_from_args(args, progress=bar, cancel=None)
    bar.close()
    shown = ", ".join(f"{k} {v:.4f}" for k, v in outcome.metrics.items()
                      if isinstance(v, float) and k.endswith(("loss", "auroc", "accuracy", "air_tp", "air_fn")))
    print(f"Best epoch: {shown}")
    if outcome.weights_path:
        print(f"Weights: {outcome.weights_path}")
    if outcome.model_id is not None:
        print(f"Registered as model {outcome.model_id}.")
    return 0


class ProgressBar:
    """One self-rewriting line on stderr: epoch, batch, loss, ETA; epoch summaries stay."""

    def __init__(self, stream=sys.stderr, width: int = 24):
        self.stream, self.width = stream, width

    def __call__(self, event: ProgressEvent) -> None:
        if event.kind == "batch":
            filled = int(self.width * event.batch / max(1, event.batches))
            eta = str(dt.timedelta(seconds=int(event.eta_s))) if event.eta_s == event.eta_s else "?"
            self.stream.write(f"\repoch {event.epoch}/{event.epochs} [{'#' * filled}{'.' * (self.width - filled)}] "
                              f"loss {event.loss:.4f} ETA {eta} ")
        elif event.kind == "epoch":
            shown = " ".join(f"{k} {v:.4f}" for k, v in list(event.metrics.items())[:6])
            self.stream.write(f"\repoch {event.epoch}/{event.epochs} train loss {event.loss:.4f} {shown}\n")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def finish_training(model: torch.nn.Module, result: TrainResult, run_dir: Path, export: Path | None,
                    metadata: dict, record: Callable[[dict, Path], int | None] | None = None,
                    extra_metrics: dict | None = None) -> TrainingOutcome:
    """Load the best epoch, write fp16 weights with metadata, and register the model if asked."""
    if not result.best_path.is_file():
        raise OctantError(f"Training stopped before the first epoch ended; nothing was saved in {run_dir}.")
    load_best(model, run_dir)
    metrics = {**result.best_metrics, **(extra_metrics or {})}
    weights_path = export or run_dir / "model.safetensors"
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    save_weights(model, weights_path, {**metadata, "metrics": metrics, "trained": stamp,
                                       "version": WEIGHTS_VERSION, "cancelled": result.cancelled})
    model_id = record(metrics, weights_path) if record is not None else None
    return TrainingOutcome(result, weights_path, metrics, model_id)


def write_model_card(weights_path: Path, command: str, data: str, notes: str = "") -> Path:
    """``<weights>.md`` beside the weights: what, how trained, on what, how good, when."""
    from models.weights import read_metadata

    meta = read_metadata(weights_path)
    engine, config = meta.get("engine", {}), meta.get("config", {})
    size_mb = weights_path.stat().st_size / 2**20
    rows = "\n".join(f"| {k} | {v:.4f} |" for k, v in meta.get("metrics", {}).items()
                     if isinstance(v, float) and v == v)
    settings = ", ".join(f"{k} {config[k]}" for k in ("finding", "size_class", "input_size", "width", "backbone",
                                                         "masked", "guidance_weight") if k in config)
    card = (f"# {weights_path.stem}: {meta.get('architecture', '?')}\n\n"
            f"- trained: {meta.get('trained', '?')}, by the project's own command:\n  `{command}`\n"
            f"- network: {settings}; stored fp16 safetensors, {size_mb:.2f} MB; metadata (config, engine, "
            f"metrics) in the file's header\n"
            f"- input: {meta.get('input', '?')}\n- labels: {meta.get('labels', '?')}\n- data: {data}\n"
            f"- engine: {engine.get('optimizer')} lr {engine.get('lr')}, batch {engine.get('batch_size')}, "
            f"{engine.get('epochs')} epochs max, time limit {engine.get('time_limit_s')} s, "
            f"bf16 on CPU {engine.get('cpu_bf16')}, seed {engine.get('seed')}\n\n"
            f"## Validation metrics (best epoch)\n\n| metric | value |\n|---|---|\n{rows}\n"
            + (f"\n## Notes\n\n{notes}\n" if notes else ""))
    path = weights_path.with_suffix(".md")
    path.write_text(card)
    return path


def evaluate_loader(task, model: torch.nn.Module, dataset, batch_size: int, device) -> dict:
    """The task's validation metrics on another split (the test split), named ``test_*``."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    model.to(device).eval()
    with torch.no_grad():
        metrics = task.validate(model, loader, device)
    return {f"test_{k.removeprefix('val_')}": float(v) for k, v in metrics.items()}


def default_run_dir(args: argparse.Namespace, name: str) -> Path:
    if args.run_dir is not None:
        return args.run_dir
    if args.project is not None:
        return Path(args.project) / "models" / name
    return Path(__file__).resolve().parents[1] / "runs" / name


def _size_class(finding: str, project) -> str:
    if project is not None:
        return project.settings().finding(finding).size_class
    from storage.catalogue import DEFAULT_FINDINGS

    for spec in DEFAULT_FINDINGS:
        if spec.code == finding:
            return spec.size_class
    raise OctantError(f"There is no finding called {finding!r} in the default catalogue; check its code.")


def _check_both_classes(samples, what: str) -> None:
    present = sum(s.present for s in samples)
    if present == 0 or present == len(samples):
        raise OctantError(f"The {what} set needs photos with and without the finding ({present} of "
                          f"{len(samples)} have it); label more photos first.")


def train_guided_from_args(args: argparse.Namespace, progress=None,
                           cancel: threading.Event | None = None) -> TrainingOutcome:
    """Samples → datasets → ``GuidedTask`` → engine → best weights (→ registry for a project)."""
    from models.finding_data import FindingDataset, consensus_samples, split_derivation_validation
    from models.guided import PAPER_INPUT_SIZE, GuidedConfig, GuidedTask, guided_train_config

    if not args.finding:
        raise OctantError("Name the finding to train with --finding, e.g. --finding haemorrhage.")
    project = None if args.reference else _open_project(args)
    try:
        if args.reference == "idrid":
            from models.reference_labels import idrid_reference_samples

            samples, test_samples = idrid_reference_samples(args.finding), []
            labels = "reference: IDRiD segmentation masks + IDRiD/CODRAS boxes and grades"
        else:
            k = project.settings().consensus_k
            samples = consensus_samples(project.database, args.finding, "train", k=k)
            test_samples = consensus_samples(project.database, args.finding, "test", k=k)
            labels = f"consensus of three readers (k = {k})"
        derivation, validation = split_derivation_validation(samples, args.validation_fraction, args.seed)
        _check_both_classes(derivation, "derivation")
        config = GuidedConfig(finding=args.finding, size_class=_size_class(args.finding, project),
                              input_size=args.input_size or PAPER_INPUT_SIZE, width=args.width,
                              guidance_weight=args.guidance_weight)
        train_set = FindingDataset(derivation, config.input_size, config.map_size)
        validation_set = FindingDataset(validation, config.input_size, config.map_size)
        task = GuidedTask(config, train_set, validation_set)
        engine = guided_train_config(**engine_overrides(args))
        name = args.name or f"guided_{args.finding}" + ("" if args.guidance_weight else "_unguided")
        run_dir = default_run_dir(args, name)
        result = train(task, engine, run_dir, progress, cancel, resume=not args.no_resume)
        model = task.build_model()
        snapshot = {"labels": labels, "derivation": train_set.label_snapshot(),
                    "validation": validation_set.label_snapshot()}
        metadata = {"architecture": "guided", "network": f"guided:{args.finding}", "config": config.to_dict(),
                    "engine": engine.to_dict(), "labels": labels,
                    "input": "black border cropped, RGB in [0, 1], input_size × input_size",
                    "counts": {"derivation": len(derivation), "validation": len(validation)}}
        record = None
        if project is not None:
            from storage.predictions import register_model

            def record(metrics: dict, path: Path) -> int:
                return register_model(project.database, name, f"guided:{args.finding}", metrics,
                                      {"task": task.task_config(), "engine": engine.to_dict()}, snapshot, str(path))
        test_metrics = {}
        if test_samples and result.best_path.is_file():
            load_best(model, run_dir)
            test_set = FindingDataset(test_samples, config.input_size, config.map_size)
            snapshot["test"] = test_set.label_snapshot()
            test_metrics = evaluate_loader(task, model, test_set, engine.batch_size, torch.device("cpu"))
        return finish_training(model, result, run_dir, args.export, metadata, record, test_metrics)
    finally:
        if project is not None:
            project.close()


def train_attention_from_args(args: argparse.Namespace, progress=None,
                              cancel: threading.Event | None = None) -> TrainingOutcome:
    """Diagnosis photos → masks from pre-segmentation → ``AttentionTask`` → engine → weights."""
    from models.attention_mask import (AttentionConfig, AttentionTask, attention_train_config, diagnosis_dataset,
                                       diagnosis_report, load_structure_models, predict_classes)
    from models.device import pick_device
    from models.finding_data import consensus_diagnosis_photos, idrid_grade_photos, split_derivation_validation

    project = None if args.reference else _open_project(args)
    try:
        if args.reference == "idrid":
            from models.reference_labels import shared_data_root

            config = AttentionConfig()
            photos, test_photos = idrid_grade_photos(shared_data_root()), []
            labels = "reference: IDRiD retinopathy grades"
        else:
            config = AttentionConfig(classes=list(project.settings().diagnosis_classes))
            photos = consensus_diagnosis_photos(project.database, config.classes, "train")
            test_photos = consensus_diagnosis_photos(project.database, config.classes, "test")
            labels = "consensus diagnosis of three readers (majority)"
        config.backbone, config.masked = args.backbone, not args.no_mask
        config.input_size = args.input_size or config.input_size
        derivation, validation = split_derivation_validation(photos, args.validation_fraction, args.seed,
                                                             stratum=lambda photo: photo.label)
        if len({p.label for p in derivation}) < 2:
            raise OctantError("Training a diagnosis classifier needs photos of at least two diagnoses; "
                              "label more photos first.")
        device = pick_device(args.device)
        models = load_structure_models(device) if config.masked else None
        train_set = diagnosis_dataset(derivation, config, models, device)
        validation_set = diagnosis_dataset(validation, config, models, device)
        task = AttentionTask(config, train_set, validation_set)
        engine = attention_train_config(**engine_overrides(args))
        name = args.name or ("dr_grade_attention" if config.masked else "dr_grade_baseline")
        run_dir = default_run_dir(args, name)
        result = train(task, engine, run_dir, progress, cancel, resume=not args.no_resume)
        model = task.build_model()
        snapshot = {"labels": labels, "derivation": train_set.label_snapshot(config.classes),
                    "validation": validation_set.label_snapshot(config.classes)}
        extra = {}
        if result.best_path.is_file():
            load_best(model, run_dir)
            model.to(device)
            loader = DataLoader(validation_set, batch_size=engine.batch_size)
            extra = {f"val_{k}": v for k, v in diagnosis_report(*predict_classes(model, loader, device, task.inputs),
                                                                  config.classes).items()}
            if test_photos:
                test_set = diagnosis_dataset(test_photos, config, models, device)
                snapshot["test"] = test_set.label_snapshot(config.classes)
                loader = DataLoader(test_set, batch_size=engine.batch_size)
                extra.update({f"test_{k}": v for k, v in diagnosis_report(
                    *predict_classes(model, loader, device, task.inputs), config.classes).items()})
            model.cpu()
        metadata = {"architecture": f"attention-mask {config.backbone}", "network": "attention-mask",
                    "config": config.to_dict(), "engine": engine.to_dict(), "labels": labels,
                    "input": "black border cropped, RGB in [0, 1] times the attention mask, ImageNet-normalised inside",
                    "counts": {"derivation": len(derivation), "validation": len(validation)}}
        record = None
        if project is not None:
            from storage.predictions import register_model

            def record(metrics: dict, path: Path) -> int:
                return register_model(project.database, name, "attention-mask", metrics,
                                      {"task": task.task_config(), "engine": engine.to_dict()}, snapshot, str(path))
        return finish_training(model, result, run_dir, args.export, metadata, record, extra)
    finally:
        if project is not None:
            project.close()


def _open_project(args: argparse.Namespace):
    from storage.commands import open_project_from_args

    return open_project_from_args(args)
