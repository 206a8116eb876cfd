"""Long work off the GUI thread (training, pre-segmentation ahead of the reader): a QObject on its
own QThread turns a job's progress callbacks into signals (architecture.md, "Long work"). Cancel
sets a ``threading.Event`` the job checks between steps (the training engine between batches, the
pre-segmentation before every network layer); what was finished stays saved.

Every started thread, and every worker pool of ``ui.jobs`` and ``ui.image_loader``, is known to
this module until it has ended: ``stop_all_background_work`` (run when the application is about
to quit, and at interpreter exit) cancels them all and joins them, so Qt is never torn down under
a running thread (which aborts the process: "QThread: Destroyed while thread ... is still running").
"""
from __future__ import annotations

import atexit
import logging
import threading
import time
import traceback
import weakref
from typing import Callable

from PySide6.QtCore import QObject, Qt, QThread, QThreadPool, Signal, Slot

from storage.errors import OctantError

log = logging.getLogger("octant.ui.background")
# Started threads, until stop_all_background_work or a later start sees them ended: a QThread
# dropped while running takes the whole application down, whatever window started it.
_STARTED: set[BackgroundThread] = set()
# Worker pools (ui.jobs, ui.image_loader), dropped with their owners.
_POOLS: weakref.WeakSet[QThreadPool] = weakref.WeakSet()


class BackgroundWorker(QObject):
    """Runs ``job(progress, cancel)`` once; its return value comes back through ``finished``."""

    progress = Signal(object)      # whatever the job reports (models.engine.training.ProgressEvent, ...)
    finished = Signal(object)      # whatever the job returns (models.findings.training.TrainingOutcome, ...)
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
        _forget_ended()
        _STARTED.add(self)
        self.thread.start()

    def cancel(self) -> None:
        self.worker.cancel()

    def running(self) -> bool:
        return self.thread.isRunning()

    def wait(self, ms: int = 30_000) -> bool:
        return self.thread.wait(ms)


def track_pool(pool: QThreadPool) -> QThreadPool:
    """Have ``pool``'s queued jobs dropped and its running ones joined when the application quits."""
    _POOLS.add(pool)
    return pool


def _forget_ended() -> None:
    for run in [run for run in _STARTED if run.thread.isFinished()]:
        run.thread.wait()   # past its last signal; returns at once
        _STARTED.discard(run)


def running_background_work() -> list[str]:
    """The names of the threads still running (for tests and the log)."""
    return sorted(run.thread.objectName() for run in _STARTED if run.thread.isRunning())


def stop_all_background_work() -> float:
    """Cancel every background thread, drop every pool's queued jobs, and wait until all have
    ended (a cancel is seen within a second); returns the seconds it took."""
    started = time.perf_counter()
    runs = list(_STARTED)
    for run in runs:
        run.cancel()
    pools = list(_POOLS)
    for pool in pools:
        try:
            pool.clear()
        except RuntimeError:   # its owner was deleted, and its destructor has waited already
            pass
    for run in runs:
        run.thread.wait()
    for pool in pools:
        try:
            pool.waitForDone(-1)
        except RuntimeError:
            pass
    _forget_ended()
    seconds = time.perf_counter() - started
    if seconds > 1:
        log.warning("Background work took %.1f s to stop at quit.", seconds)
    return seconds


# After the application's aboutToQuit (connected in ui.app.make_app), a last net for a script or
# a test that never ran the event loop: atexit calls run in reverse order, so this runs before
# PySide6's own clean-up (imported above) deletes the application.
atexit.register(stop_all_background_work)
