"""Work off the GUI thread (review screen, training panel): one QRunnable per job on a QThreadPool,
its result or one sentence of failure coming back as a queued signal (architecture.md, "Long work")."""
from __future__ import annotations

import logging
import traceback
from typing import Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from storage.errors import OctantError
from ui.background import track_pool

log = logging.getLogger("octant.ui.jobs")


class JobSignals(QObject):
    done = Signal(object, object)     # tag, result
    failed = Signal(object, str)      # tag, message for the user


class Job(QRunnable):
    def __init__(self, signals: JobSignals, tag, work: Callable[[], object]):
        super().__init__()
        self.signals, self.tag, self.work = signals, tag, work

    def run(self) -> None:
        try:
            result = self.work()
        except OctantError as error:
            self.signals.failed.emit(self.tag, str(error))
        except Exception as error:  # the screen must survive a failed job; the log keeps details
            log.error("Job %r failed:\n%s", self.tag, traceback.format_exc())
            self.signals.failed.emit(self.tag, f"This could not be computed ({error}); see the log.")
        else:
            self.signals.done.emit(self.tag, result)


class JobRunner(QObject):
    """Submit ``work`` under a ``tag``; ``done(tag, result)`` / ``failed(tag, message)`` on the GUI thread."""

    done = Signal(object, object)
    failed = Signal(object, str)

    def __init__(self, parent: QObject | None = None, threads: int = 2):
        super().__init__(parent)
        self.pool = track_pool(QThreadPool(self))   # joined at quit (ui.background)
        self.pool.setMaxThreadCount(threads)
        self._signals = JobSignals(self)
        self._signals.done.connect(self.done)
        self._signals.failed.connect(self.failed)

    def submit(self, tag, work: Callable[[], object]) -> None:
        self.pool.start(Job(self._signals, tag, work))

    def wait(self, msecs: int = 30_000) -> bool:
        return self.pool.waitForDone(msecs)

    def shutdown(self, msecs: int = 1000) -> bool:
        """Drop the queued jobs and wait for the running ones (those past ``msecs`` are joined at quit)."""
        self.pool.clear()
        return self.pool.waitForDone(msecs)
