"""The training commands' progress (``train`` and ``train-seg`` alike): the engine's events
(``models.engine.training.ProgressEvent``) shown through the one command-line reporter,
``storage.command_progress.CommandProgress``: a bar per epoch, a line per finished epoch."""
from __future__ import annotations

import datetime as dt
from typing import IO, TYPE_CHECKING

from storage.command_progress import CommandProgress

if TYPE_CHECKING:
    from models.engine.training import ProgressEvent


class TrainingProgress:
    """A callable for ``train(progress=...)``; ``close()`` when training returns."""

    def __init__(self, stream: IO[str] | None = None, quiet: bool = False) -> None:
        self.reporter = CommandProgress(unit="batch", stream=stream, quiet=quiet)
        self.epoch = 0

    def __call__(self, event: ProgressEvent) -> None:
        if event.kind == "batch":
            if event.epoch != self.epoch:
                self.epoch = event.epoch
                self.reporter.restart(event.batches, f"epoch {event.epoch}/{event.epochs}")
            eta = str(dt.timedelta(seconds=int(event.eta_s))) if event.eta_s == event.eta_s else "?"
            self.reporter.update(event.batch, f"loss {event.loss:.4f}, training ETA {eta}", total=event.batches)
        elif event.kind == "epoch":
            shown = " ".join(f"{k} {v:.4f}" for k, v in event.metrics.items()
                             if "threshold" not in k and isinstance(v, (int, float)))
            self.reporter.message(f"epoch {event.epoch}/{event.epochs}: train loss {event.loss:.4f} {shown}")
        else:
            shown = ", ".join(f"{k} {v:.4f}" for k, v in event.metrics.items() if isinstance(v, float))
            self.reporter.message(f"done: best {shown}")

    def close(self) -> None:
        self.reporter.close()
