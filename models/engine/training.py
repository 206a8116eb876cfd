"""The one training engine for every network in Octant (guided, attention-mask, segmentation).

A network plugs in as a ``TrainingTask`` (model, datasets, loss, validation, its own config);
``train()`` does the rest: seeds, optimiser and scheduler, AMP on CUDA, checkpoints, resume,
early stopping, progress events, cancel, and DDP under ``torchrun``.

Files written in ``run_dir``: ``config.json`` (engine config + ``task.task_config()``),
``last.pt`` after every epoch (everything needed to resume), ``best.pt`` (the model with the best
monitored metric), ``history.json`` (one row per epoch).

Reproducibility: the model is built after seeding with ``seed``; each epoch reseeds python, numpy
and torch with ``seed + epoch`` and shuffles with its own generator, so an epoch's batches and
augmentations depend only on (seed, epoch). Resuming from ``last.pt`` at an epoch boundary
therefore reproduces the uninterrupted run (on the CPU bit for bit; CUDA kernels may differ in
the last bits).

Cancel: the flag is checked between batches. A cancelled run raises nothing: ``train()`` returns
``TrainResult(cancelled=True)``; the unfinished epoch is dropped and ``last.pt`` keeps the last
finished epoch, so ``train(..., resume=True)`` continues from there.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import random
import threading
import time
from collections.abc import Callable, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, cast

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, RandomSampler

from models.engine.device import DistributedWorld, pick_device
from models.engine.precision import resolve_precision
from storage.errors import OctantError

CHECKPOINT_VERSION = 1
# Engine fields that may change between a run and its resumption without changing its result.
RUN_CONTROL_FIELDS = ("epochs", "time_limit_s", "num_workers", "device", "log_every",
                      "early_stopping_patience", "init_weights")


@dataclass
class TrainConfig:
    """Engine settings. Each network's module offers a factory with its paper's defaults."""

    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    scheduler: Literal["none", "exponential", "cosine", "step", "plateau"] = "none"
    gamma: float = 0.95             # exponential and step decay factor; plateau reduction factor
    step_size: int = 10             # epochs between step decays
    plateau_patience: int = 2       # epochs without improvement before plateau lowers the rate
    min_lr: float = 0.0             # floor for cosine and plateau
    early_stopping_patience: int = 0  # epochs without improvement before stopping; 0 = never
    monitor: str = "val_loss"       # key of task.validate()'s dict that decides "best"
    monitor_mode: Literal["min", "max"] = "min"
    amp: bool = True                # fp16 autocast + GradScaler, CUDA with precision auto only
    precision: Literal["auto", "fp32", "bf16"] = "auto"   # models/engine/precision.py: bf16 only on native CPUs
    grad_clip: float = 0.0          # max gradient norm; 0 = off
    seed: int = 0
    num_workers: int = 0
    drop_last: bool = False
    device: str | None = None       # None = pick_device(); "cpu", "cuda", "mps"
    max_batches_per_epoch: int = 0  # 0 = all; for benches on a slow CPU
    time_limit_s: float = 0.0       # 0 = none; the running epoch ends early, is validated, saved, last
    log_every: int = 1              # batches between progress events (each one syncs the GPU)
    init_weights: str = ""          # weights file a new run starts from (fine-tuning); "" = from scratch

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class TrainingTask(Protocol):
    def build_model(self) -> nn.Module: ...
    def datasets(self) -> tuple[Dataset, Dataset]: ...             # train, validation
    def loss(self, model: nn.Module, batch, device: torch.device) -> tuple[Tensor, dict]: ...
    def validate(self, model: nn.Module, loader: DataLoader, device: torch.device) -> dict[str, float]: ...
    def task_config(self) -> dict: ...


@dataclass
class ProgressEvent:
    kind: Literal["batch", "epoch", "done"]
    epoch: int            # 1-based
    epochs: int
    batch: int = 0        # 1-based within the epoch
    batches: int = 0
    loss: float = math.nan
    metrics: dict = field(default_factory=dict)
    eta_s: float = math.nan


@dataclass
class TrainResult:
    best_metrics: dict
    history: list[dict]
    best_path: Path
    last_path: Path
    stopped_early: bool = False
    cancelled: bool = False
    timed_out: bool = False


def train(task: TrainingTask, config: TrainConfig, run_dir: str | Path,
          progress: Callable[[ProgressEvent], None] | None = None,
          cancel: threading.Event | None = None, resume: bool = True) -> TrainResult:
    """Train ``task`` under ``config``, writing checkpoints to ``run_dir``; see the module notes."""
    run_dir = Path(run_dir)
    world = DistributedWorld(config.device)
    device = world.device if world.active else pick_device(config.device)
    writer = world.rank == 0
    if writer:
        run_dir.mkdir(parents=True, exist_ok=True)
    saved_config = {"engine": config.to_dict(), "task": task.task_config()}

    _seed_everything(config.seed)
    model = task.build_model().to(device)
    optimizer = _build_optimizer(config, model)
    scheduler = _build_scheduler(config, optimizer)
    scaler = torch.amp.GradScaler("cuda", enabled=_use_fp16(config, device))
    state = _RunState()

    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    if resume and last_path.is_file():
        checkpoint = _load_checkpoint(last_path, saved_config, device)
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(checkpoint["scheduler"])
        scaler.load_state_dict(checkpoint["scaler"])
        state = _RunState(**checkpoint["state"])
    elif config.init_weights:
        from models.engine.weights import load_matching_weights

        start = load_matching_weights(model, config.init_weights)
        if writer:   # which tensors were fine-tuned and which started fresh, beside the run
            _write_json(run_dir / "init.json", start)
    if writer:
        _write_json(run_dir / "config.json", saved_config)

    train_set, val_set = task.datasets()
    net = world.wrap(model)
    val_loader = DataLoader(val_set, batch_size=config.batch_size, shuffle=False,
                            num_workers=config.num_workers)
    clock = _Clock(config, len(_train_loader(train_set, config, 0, world)))
    # A run that already stopped early stays stopped when resumed.
    outcome = "stopped_early" if _patience_spent(state, config) else ""
    while state.epoch < config.epochs and not outcome:
        epoch = state.epoch + 1
        _seed_everything(config.seed + epoch)
        loader = _train_loader(train_set, config, epoch, world)
        net.train()
        summed: dict[str, float] = {}
        batches = 0
        for batch in loader:
            if cancel is not None and cancel.is_set() and not world.active:
                outcome = "cancelled"
                break
            if batches >= clock.batches:
                break
            with _autocast(config, device):
                loss, parts = task.loss(net, batch, device)
            _step(loss, optimizer, scaler, net, config)
            batches += 1
            if batches % max(1, config.log_every) == 0 or batches == clock.batches:
                value = float(loss.detach())
                _accumulate(summed, {"loss": value, **parts}, config.log_every)
                if writer and progress is not None:
                    progress(ProgressEvent("batch", epoch, config.epochs, batches, clock.batches,
                                           value, eta_s=clock.eta(epoch, batches)))
            if clock.out_of_time():
                break
        if outcome == "cancelled":
            break
        metrics = _validate(task, model, val_loader, device, config)
        row = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"], "seconds": clock.lap(),
               **{f"train_{k}": v / max(1, batches) for k, v in summed.items()}, **metrics}
        state.history.append(row)
        state.epoch = epoch
        improved = state.observe(metrics, config)
        if scheduler is not None:
            _scheduler_step(scheduler, config, metrics)
        if _patience_spent(state, config):
            outcome = "stopped_early"
        if clock.out_of_time():
            outcome = outcome or "timed_out"
        if world.active and cancel is not None and cancel.is_set():
            outcome = outcome or "cancelled"  # under DDP the flag is honoured at epoch ends only
        outcome = world.agree(outcome)
        if writer:
            if improved:
                _save_atomic({"model": model.state_dict(), "epoch": epoch, "metrics": metrics,
                              "config": saved_config, "version": CHECKPOINT_VERSION}, best_path)
            _save_atomic(_checkpoint(model, optimizer, scheduler, scaler, state, saved_config), last_path)
            _write_json(run_dir / "history.json", state.history)
            if progress is not None:
                progress(ProgressEvent("epoch", epoch, config.epochs, batches, clock.batches,
                                       row.get("train_loss", math.nan), metrics,
                                       clock.eta(epoch, clock.batches)))
    if writer and progress is not None:
        progress(ProgressEvent("done", state.epoch, config.epochs, metrics=state.best_metrics, eta_s=0.0))
    world.teardown()
    return TrainResult(state.best_metrics, state.history, best_path, last_path,
                       stopped_early=outcome == "stopped_early", cancelled=outcome == "cancelled",
                       timed_out=outcome == "timed_out")


def load_best(model: nn.Module, run_dir: str | Path) -> dict:
    """Load ``best.pt``'s weights into ``model``; returns that checkpoint's metrics."""
    path = Path(run_dir) / "best.pt"
    if not path.is_file():
        raise OctantError(f"No finished epoch was saved in {path.parent}; train at least one epoch first.")
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    model.load_state_dict(checkpoint["model"])
    return checkpoint["metrics"]


@dataclass
class _RunState:
    epoch: int = 0
    history: list = field(default_factory=list)
    best_value: float | None = None
    best_metrics: dict = field(default_factory=dict)
    stale: int = 0

    def observe(self, metrics: dict, config: TrainConfig) -> bool:
        if config.monitor not in metrics:
            raise OctantError(
                f"Validation did not report '{config.monitor}' (it reported {sorted(metrics)}); "
                "set monitor to one of those."
            )
        value = float(metrics[config.monitor])
        better = (self.best_value is None or
                  (value < self.best_value if config.monitor_mode == "min" else value > self.best_value))
        if better:
            self.best_value, self.best_metrics, self.stale = value, dict(metrics), 0
        else:
            self.stale += 1
        return better


def _patience_spent(state: _RunState, config: TrainConfig) -> bool:
    return bool(config.early_stopping_patience) and state.stale >= config.early_stopping_patience


class _Clock:
    """Batches per epoch, ETA from the mean batch time, and the optional time limit."""

    def __init__(self, config: TrainConfig, loader_batches: int):
        limit = config.max_batches_per_epoch
        self.batches = min(loader_batches, limit) if limit else loader_batches
        self.epochs = config.epochs
        self.limit = config.time_limit_s
        self.start = self.epoch_start = time.perf_counter()
        self.done_batches = 0
        self.first_epoch: int | None = None

    def eta(self, epoch: int, batch: int) -> float:
        if self.first_epoch is None:
            self.first_epoch = epoch
        done = (epoch - self.first_epoch) * self.batches + batch
        per_batch = (time.perf_counter() - self.start) / max(1, done)
        return per_batch * ((self.epochs - epoch) * self.batches + self.batches - batch)

    def lap(self) -> float:
        now = time.perf_counter()
        seconds, self.epoch_start = now - self.epoch_start, now
        return seconds

    def out_of_time(self) -> bool:
        return bool(self.limit) and time.perf_counter() - self.start >= self.limit


def _train_loader(train_set: Dataset, config: TrainConfig, epoch: int, world) -> DataLoader:
    # Each epoch shuffles with its own generator (seed + epoch): resume needs no sampler state.
    generator = torch.Generator().manual_seed(config.seed + epoch)
    if world.active:
        sampler = world.sampler(train_set, config.seed, epoch)
    else:
        sampler = RandomSampler(cast(Sized, train_set), generator=generator)   # map-style datasets have a length
    return DataLoader(train_set, batch_size=config.batch_size, sampler=sampler,
                      num_workers=config.num_workers, drop_last=config.drop_last,
                      generator=generator, pin_memory=False)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _use_fp16(config: TrainConfig, device: torch.device) -> bool:
    return config.amp and device.type == "cuda" and config.precision == "auto"


def _autocast(config: TrainConfig, device: torch.device):
    if _use_fp16(config, device):
        return torch.autocast("cuda", dtype=torch.float16)
    if device.type == "cuda" and config.precision == "auto":   # amp switched off: fp32
        return contextlib.nullcontext()
    return resolve_precision(device, config.precision).autocast()


def upgrade_engine(values: dict) -> dict:
    """An engine dict saved before ``precision`` existed reads as what it did: ``cpu_bf16`` true
    was bf16, false fp32."""
    values = dict(values)
    if "cpu_bf16" in values:
        legacy = values.pop("cpu_bf16")
        values.setdefault("precision", "bf16" if legacy else "fp32")
    return values


def _step(loss: Tensor, optimizer, scaler, net: nn.Module, config: TrainConfig) -> None:
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if config.grad_clip:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip)
    scaler.step(optimizer)
    scaler.update()


def _accumulate(summed: dict, parts: dict, weight: int) -> None:
    for key, value in parts.items():
        summed[key] = summed.get(key, 0.0) + float(value) * max(1, weight)


def _validate(task: TrainingTask, model: nn.Module, loader: DataLoader, device, config) -> dict:
    model.eval()
    with torch.no_grad(), _autocast(config, device):
        metrics = task.validate(model, loader, device)
    return {key: float(value) for key, value in metrics.items()}


def _build_optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                               nesterov=config.nesterov and config.momentum > 0,
                               weight_decay=config.weight_decay)
    raise OctantError(f"Unknown optimizer '{config.optimizer}'; choose adam, adamw or sgd.")


def _build_scheduler(config: TrainConfig, optimizer):
    kind = config.scheduler
    sched = torch.optim.lr_scheduler
    if kind == "none":
        return None
    if kind == "exponential":
        return sched.ExponentialLR(optimizer, gamma=config.gamma)
    if kind == "cosine":
        return sched.CosineAnnealingLR(optimizer, T_max=max(1, config.epochs), eta_min=config.min_lr)
    if kind == "step":
        return sched.StepLR(optimizer, step_size=config.step_size, gamma=config.gamma)
    if kind == "plateau":
        return sched.ReduceLROnPlateau(optimizer, mode=config.monitor_mode, factor=config.gamma,
                                       patience=config.plateau_patience, min_lr=config.min_lr)
    raise OctantError(f"Unknown scheduler '{kind}'; choose none, exponential, cosine, step or plateau.")


def _scheduler_step(scheduler, config: TrainConfig, metrics: dict) -> None:
    if config.scheduler == "plateau":
        scheduler.step(metrics[config.monitor])
    else:
        scheduler.step()


def _checkpoint(model, optimizer, scheduler, scaler, state: _RunState, saved_config: dict) -> dict:
    return {
        "version": CHECKPOINT_VERSION,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict(),
        "state": dataclasses.asdict(state),
        "config": saved_config,
        # Saved as asked by the checkpoint format; each epoch reseeds, so resume does not need them.
        "rng": {"python": random.getstate(), "numpy": np.random.get_state(),
                "torch": torch.get_rng_state()},
    }


def _load_checkpoint(path: Path, saved_config: dict, device) -> dict:
    try:
        checkpoint = torch.load(path, map_location=device, weights_only=False)
    except Exception as error:
        raise OctantError(
            f"The checkpoint {path} cannot be read ({error}); delete it to start over or choose another folder."
        ) from error
    if _comparable(checkpoint["config"]) != _comparable(saved_config):
        raise OctantError(
            f"The folder {path.parent} holds a training with other settings; choose a new folder "
            "or start over without resuming."
        )
    return checkpoint


def _comparable(saved_config: dict) -> dict:
    engine = {k: v for k, v in upgrade_engine(saved_config["engine"]).items() if k not in RUN_CONTROL_FIELDS}
    return json.loads(json.dumps({"engine": engine, "task": saved_config["task"]}))


def _save_atomic(payload: dict, path: Path) -> None:
    temporary = path.with_name(path.name + ".partial")
    torch.save(payload, temporary)
    os.replace(temporary, path)  # a kill mid-write leaves the previous checkpoint intact


def _write_json(path: Path, payload) -> None:
    temporary = path.with_name(path.name + ".partial")
    temporary.write_text(json.dumps(payload, indent=2, default=str))
    os.replace(temporary, path)
