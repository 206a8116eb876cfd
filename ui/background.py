"""The one way ``ui/`` runs work off the GUI thread: a ``Worker`` (architecture.md, "Long work").

Modelled on napari's ``thread_worker``: the job runs on a pool thread and everything it says
comes back as queued signals on the GUI thread (the thread that made the worker):

- ``started``: the job began;
- ``yielded(value)``: each value the job reports (training's ``ProgressEvent``, a pre-segmented image);
- ``returned(value)``: its return value;
- ``errored(message)``: it failed; one sentence for the user (the log keeps the traceback);
- ``aborted(message)``: it was cancelled (it raised ``CancelledError``, or was dropped before it ran);
- ``finished()``: always last, whatever the outcome.

Given an ``owner`` (the window or object whose slots are connected), nothing is delivered once
the owner has been deleted: a job that ends after its window closed calls no slot of it.

A job is ``job(report, cancel)``: ``report(value)`` emits ``yielded``; ``cancel`` is a
``threading.Event`` the job checks between steps (the training engine between batches, the
pipeline before every network layer: ``models.engine.cancel``), so a cancel is seen within a
second. What the job finished before the cancel stays saved; a job that stops early may return
what it has (training's outcome says ``cancelled``) instead of raising.

Every started worker is in a registry until its job has ended: ``stop_all_background_work``
(run at the application's ``aboutToQuit``, and at interpreter exit) cancels them all, drops the
ones still queued and joins the rest, so Qt is never torn down under a running thread.
"""
from __future__ import annotations

import atexit
import logging
import threading
import time
import traceback
import weakref
from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import QCoreApplication, QObject, QRunnable, QThreadPool, Signal

from storage.errors import CancelledError, OctantError

log = logging.getLogger("octant.ui.background")

Report = Callable[[Any], None]
Job = Callable[[Report, threading.Event], Any]

LONG_JOB_THREADS = 16    # the shared pool: training, pre-segmentation, activation maps never queue behind each other
DROPPED = "Cancelled before it started."

# Started workers whose job has not ended (strong references: a worker nobody holds still reports).
_ACTIVE: set[Worker] = set()
_ACTIVE_LOCK = threading.Lock()
_SHARED_POOL: QThreadPool | None = None
# Started workers until the GUI thread has received all their signals: a worker nobody else holds
# still reports, and is dropped on the GUI thread, never by a pool thread mid-delivery.
_KEEP: set[Worker] = set()
# Every pool, until its owner drops it: at quit their idle threads are ended too, while Python is
# still whole (a pool thread that ran Python and exits during the interpreter's teardown crashes it).
_POOLS: weakref.WeakSet[QThreadPool] = weakref.WeakSet()


def worker_pool(parent: QObject, threads: int) -> QThreadPool:
    """A pool of at most ``threads`` threads for one owner's workers (image decodes, counts):
    the rest wait their turn. Deleted with ``parent``."""
    pool = QThreadPool(parent)
    pool.setMaxThreadCount(threads)
    _POOLS.add(pool)
    return pool


def _shared_pool() -> QThreadPool:
    """The pool of workers started without one, owned by the application (deleted after quit)."""
    global _SHARED_POOL
    if _SHARED_POOL is None or not shiboken6.isValid(_SHARED_POOL):
        _SHARED_POOL = QThreadPool(QCoreApplication.instance())
        _SHARED_POOL.setMaxThreadCount(LONG_JOB_THREADS)
        _POOLS.add(_SHARED_POOL)
    return _SHARED_POOL


class _Runnable(QRunnable):
    def __init__(self, worker: Worker):
        super().__init__()
        self.setAutoDelete(False)   # the worker keeps it; a queued one can be taken back
        self.worker = worker

    def run(self) -> None:
        self.worker._run()


class Worker(QObject):
    """``job(report, cancel)`` run once on a pool thread; see the module docstring for the signals."""

    started = Signal()
    yielded = Signal(object)
    returned = Signal(object)
    errored = Signal(str)
    aborted = Signal(str)
    finished = Signal()
    # Everything the pool thread says goes through this one queued signal, in order, to
    # ``_deliver`` on the GUI thread, which emits the public signal if the owner still exists.
    _said = Signal(str, object)

    def __init__(self, job: Job, name: str = "Background work", pool: QThreadPool | None = None,
                 owner: QObject | None = None):
        super().__init__()
        self.name = name
        # Weak: a worker never keeps its window alive; once the window is deleted its slots
        # (lambdas included) are not called any more.
        self._owner = weakref.ref(owner) if owner is not None else None
        self._job = job
        self._pool = pool
        self._cancel = threading.Event()
        self._ended = threading.Event()   # the job (and its signals) are done, or it was dropped
        self._started = False
        self._outcome_seen = False        # the GUI thread has received returned/errored/aborted
        self._runnable = _Runnable(self)
        self._said.connect(self._deliver)

    @classmethod
    def call(cls, function: Callable[[], Any], name: str = "Background work",
             pool: QThreadPool | None = None, owner: QObject | None = None) -> Worker:
        """A worker for a job that neither reports nor checks for a cancel (a count, a decode)."""
        return cls(lambda _report, _cancel: function(), name, pool, owner)

    # --- the owner's side (GUI thread) ----------------------------------------------------------
    def start(self) -> Worker:
        """Queue the job; connect to the signals first (what is emitted before is not seen)."""
        if self._started:
            raise RuntimeError(f"{self.name}: a worker runs once; make a new one")
        self._started = True
        with _ACTIVE_LOCK:
            _ACTIVE.add(self)
        _KEEP.add(self)
        (self._pool or _shared_pool()).start(self._runnable)
        return self

    def cancel(self) -> None:
        """Ask the job to stop (it sees it within a second); one still queued is dropped now and
        says ``aborted`` and ``finished`` at once."""
        self._cancel.set()
        if self._take_back():
            self._deliver("aborted", DROPPED)
            self._deliver("finished", None)

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    @property
    def is_running(self) -> bool:
        """Started, and its outcome not yet received on the GUI thread."""
        return self._started and not self._outcome_seen

    @property
    def has_ended(self) -> bool:
        """The job's thread is past it (or it never ran): nothing of it runs any more."""
        return self._ended.is_set()

    def wait(self, msecs: int | None = None) -> bool:
        """Join the job: True once it has ended (``None``: however long it takes)."""
        if not self._started:
            return True
        return self._ended.wait(None if msecs is None else msecs / 1000)

    def _deliver(self, kind: str, value: object) -> None:
        """On the GUI thread: emit what the job said, unless the owner has been deleted."""
        if kind == "released":
            _KEEP.discard(self)
            return
        if kind in ("returned", "errored", "aborted"):
            self._outcome_seen = True
        if self._owner is not None:
            owner = self._owner()
            if owner is None or not shiboken6.isValid(owner):
                return
        signal = getattr(self, kind)
        if kind in ("started", "finished"):
            signal.emit()
        else:
            signal.emit(value)

    def _take_back(self) -> bool:
        """Remove the job from its pool's queue if it has not started yet."""
        if self._ended.is_set() or not self._started:
            return False
        pool = self._pool or _SHARED_POOL
        try:
            taken = pool is not None and pool.tryTake(self._runnable)
        except RuntimeError:   # the pool's owner was deleted, after waiting for its jobs
            taken = False
        if taken:
            self._end()
            _KEEP.discard(self)
        return taken

    # --- the pool thread's side -----------------------------------------------------------------
    def _run(self) -> None:
        say = self._said.emit
        try:
            say("started", None)
            try:
                result = self._job(lambda value: say("yielded", value), self._cancel)
            except CancelledError as error:
                say("aborted", str(error))
            except OctantError as error:
                say("errored", str(error))
            except Exception as error:  # the window must survive a failed job; the log keeps the details
                log.error("%s failed:\n%s", self.name, traceback.format_exc())
                say("errored", f"{self.name} stopped on an unexpected error ({error}); see the log and try again.")
            else:
                say("returned", result)
            say("finished", None)
        finally:
            self._end()
            say("released", None)   # last: every signal before it has been delivered

    def _end(self) -> None:
        with _ACTIVE_LOCK:
            _ACTIVE.discard(self)
        self._ended.set()


def active_workers() -> list[Worker]:
    """The workers whose job has not ended (for quit, tests and the log)."""
    with _ACTIVE_LOCK:
        return list(_ACTIVE)


def running_background_work() -> list[str]:
    """The names of the workers whose job has not ended."""
    return sorted(worker.name for worker in active_workers())


def stop_all_background_work() -> float:
    """Cancel every worker, drop the queued ones and join the rest (each sees its cancel within a
    second), then end the pools' idle threads; returns the seconds it took. Dropped workers say
    nothing: the application is ending."""
    started = time.perf_counter()
    workers = active_workers()
    for worker in workers:   # the queued first: a running one that stops would free a thread for them
        worker._take_back()
    for worker in workers:
        worker._cancel.set()
    for worker in workers:
        worker.wait()
    for pool in list(_POOLS):
        try:
            pool.waitForDone(-1)   # Qt 6: also ends and removes the pool's idle threads
        except RuntimeError:       # its owner was deleted, and its destructor has waited already
            pass
    seconds = time.perf_counter() - started
    if seconds > 1:
        log.warning("Background work took %.1f s to stop at quit.", seconds)
    return seconds


# After the application's aboutToQuit (connected in ui.app.make_app), a last net for a script or
# a test that never ran the event loop: atexit calls run in reverse order, so this runs before
# PySide6's own clean-up (imported above) deletes the application.
atexit.register(stop_all_background_work)
