"""Long work off the GUI thread (training, pre-segmentation ahead of the reader): a QObject on its
own QThread turns a job's progress callbacks into signals (architecture.md, "Long work"). Cancel
sets a ``threading.Event`` the job checks between steps (the training engine between batches, the
pre-segmentation between photos); what was finished stays saved.
"""
from __future__ import annotations

import logging
import threading
import traceback
from typing import Callable

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from storage.errors import OctantError

log = logging.getLogger("octant.ui.background")
# Threads whose window closed before their cancelled run came back: kept referenced until they end,
# because a QThread destroyed while running takes the whole application down.
_ORPHANS: set = set()


class BackgroundWorker(QObject):
    """Runs ``job(progress, cancel)`` once; its return value comes back through ``finished``."""

    progress = Signal(object)      # whatever the job reports (models.training.ProgressEvent, ...)
    finished = Signal(object)      # whatever the job returns (models.finding_training.TrainingOutcome, ...)
    failed = Signal(str)           # one sentence for the user

    def __init__(self, job: Callable[[Callable, threading.Event], object], what: str = "Training"):
        super().__init__()
        self.what = what
        self.job = job
        self.cancel_flag = threading.Event()

    @Slot()
    def run(self) -> None:
        try:
            outcome = self.job(self.progress.emit, self.cancel_flag)
        except OctantError as error:
            self.failed.emit(str(error))
        except Exception as error:  # the window must survive a failed run; the log keeps the details
            log.error("%s failed:\n%s", self.what, traceback.format_exc())
            self.failed.emit(f"{self.what} stopped on an unexpected error ({error}); see the log and try again.")
        else:
            self.finished.emit(outcome)

    def cancel(self) -> None:
        self.cancel_flag.set()


class BackgroundThread:
    """A worker and its thread, started together and cleaned up when the job ends."""

    def __init__(self, job, on_progress, on_finished, on_failed, what: str = "Training"):
        self.thread = QThread()
        self.thread.setObjectName(f"octant-{what.lower().replace(' ', '-')}")
        self.worker = BackgroundWorker(job, what)
        self.worker.moveToThread(self.thread)
        self.worker.progress.connect(on_progress)
        self.worker.finished.connect(on_finished)
        self.worker.failed.connect(on_failed)
        for signal in (self.worker.finished, self.worker.failed):
            # Direct: quit from the worker's own thread, so a GUI-thread wait() cannot deadlock
            # on a quit queued behind it.
            signal.connect(self.thread.quit, Qt.ConnectionType.DirectConnection)
        self.thread.started.connect(self.worker.run)

    def start(self) -> None:
        self.thread.start()

    def cancel(self) -> None:
        self.worker.cancel()

    def running(self) -> bool:
        return self.thread.isRunning()

    def wait(self, ms: int = 30_000) -> bool:
        return self.thread.wait(ms)

    def release_when_done(self) -> None:
        """Keep this thread alive past its window; it is dropped once its run has stopped."""
        if self.thread.isRunning():
            _ORPHANS.add(self)
            self.thread.finished.connect(lambda: _ORPHANS.discard(self))
