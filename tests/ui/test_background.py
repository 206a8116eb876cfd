"""The one background worker of ``ui/``: what it says on the GUI thread, cancels, and the quit join."""
from __future__ import annotations

import threading
import time

import pytest
import shiboken6
from PySide6.QtCore import QThread

from storage.errors import CancelledError, WeightsError
from ui.background import (
    DROPPED,
    Worker,
    active_workers,
    running_background_work,
    stop_all_background_work,
    worker_pool,
)


def record(worker: Worker) -> list[tuple]:
    """Every signal the worker emits, in order, with the thread that received it."""
    seen: list[tuple] = []
    for name in ("started", "yielded", "returned", "errored", "aborted", "finished"):
        getattr(worker, name).connect(
            lambda *args, name=name: seen.append((name, *args, QThread.currentThread())))
    return seen


def test_a_job_reports_and_returns_on_the_gui_thread_then_finishes(qtbot):
    ran_on = []

    def job(report, _cancel):
        ran_on.append(QThread.currentThread())
        report(1)
        report(2)
        return "done"

    worker = Worker(job, name="Counting")
    seen = record(worker)
    with qtbot.waitSignal(worker.finished, timeout=5000):
        worker.start()
    gui = QThread.currentThread()
    assert ran_on and ran_on[0] is not gui
    assert [entry[:-1] for entry in seen] == [("started",), ("yielded", 1), ("yielded", 2),
                                              ("returned", "done"), ("finished",)]
    assert all(entry[-1] is gui for entry in seen)
    assert not worker.is_running and worker.wait(1000) and worker.has_ended


def test_a_known_error_is_its_own_sentence_and_an_unknown_one_is_logged(qtbot, caplog):
    def missing(_report, _cancel):
        raise WeightsError("The disc network's weights are missing.")

    worker = Worker(missing)
    seen = record(worker)
    with qtbot.waitSignal(worker.finished, timeout=5000):
        worker.start()
    assert [entry[:-1] for entry in seen[1:]] == [("errored", "The disc network's weights are missing."),
                                                  ("finished",)]

    worker = Worker.call(lambda: 1 / 0, name="Counting")
    seen = record(worker)
    with qtbot.waitSignal(worker.finished, timeout=5000):
        worker.start()
    message = next(entry[1] for entry in seen if entry[0] == "errored")
    assert message.startswith("Counting stopped on an unexpected error (division by zero)")
    assert "ZeroDivisionError" in caplog.text   # the traceback is in the log, not in the window
    assert not any(entry[0] == "returned" for entry in seen)


def test_cancel_is_seen_by_the_job_and_aborts_within_a_second(qtbot):
    steps = []

    def long_job(_report, cancel):
        while True:                 # a training loop: one short step, then a look at the flag
            time.sleep(0.05)
            steps.append(1)
            if cancel.is_set():
                raise CancelledError("Stopped because it was cancelled; what was finished is kept.")

    worker = Worker(long_job, name="Training")
    seen = record(worker)
    worker.start()
    qtbot.waitUntil(lambda: bool(steps), timeout=5000)
    assert worker.is_running and running_background_work() == ["Training"]
    cancelled_at = time.monotonic()
    worker.cancel()
    assert worker.wait(1000), "the job did not end within a second of its cancel"
    assert time.monotonic() - cancelled_at < 1.0
    qtbot.waitUntil(lambda: bool(seen) and seen[-1][0] == "finished", timeout=2000)
    assert [entry[0] for entry in seen[-2:]] == ["aborted", "finished"]
    assert "cancelled" in seen[-2][1] and not worker.is_running


def test_a_worker_still_queued_is_dropped_by_its_cancel(qtbot):
    pool = worker_pool(None, threads=1)
    release = threading.Event()
    blocker = Worker(lambda _r, _c: release.wait(5), pool=pool).start()
    queued = Worker.call(lambda: "never", pool=pool)
    seen = record(queued)
    queued.start()
    queued.cancel()                       # it never ran: aborted and finished at once, on this thread
    assert [entry[:-1] for entry in seen] == [("aborted", DROPPED), ("finished",)]
    assert queued.has_ended and queued not in active_workers()
    release.set()
    assert blocker.wait(5000)


def test_quit_cancels_every_worker_drops_the_queued_ones_and_joins_the_rest(qtbot):
    pool = worker_pool(None, threads=1)
    ended, began = [], threading.Event()

    def until_cancelled(_report, cancel):
        began.set()
        while not cancel.wait(0.05):
            pass
        ended.append(time.monotonic())
        return "kept what was finished"

    running = Worker(until_cancelled, name="Pre-segmentation", pool=pool).start()
    queued = Worker.call(lambda: ended.append("ran"), name="Counting", pool=pool).start()
    assert began.wait(5)
    assert running_background_work() == ["Counting", "Pre-segmentation"]
    seconds = stop_all_background_work()
    assert seconds < 1.0 and len(ended) == 1    # the running one stopped; the queued one never ran
    assert running.has_ended and queued.has_ended and active_workers() == []


def test_a_worker_runs_once(qtbot):
    worker = Worker.call(lambda: None)
    with qtbot.waitSignal(worker.finished, timeout=5000):
        worker.start()
    with pytest.raises(RuntimeError, match="runs once"):
        worker.start()


def test_nothing_is_delivered_to_an_owner_that_was_deleted(qtbot):
    from PySide6.QtWidgets import QWidget

    window = QWidget()
    release = threading.Event()
    worker = Worker(lambda _r, _c: release.wait(5) and "late", owner=window)
    seen = record(worker)
    worker.start()
    qtbot.waitUntil(lambda: bool(seen), timeout=5000)          # started: delivered while the owner lives
    window.deleteLater()
    qtbot.waitUntil(lambda: not shiboken6.isValid(window), timeout=5000)
    release.set()
    assert worker.wait(5000)
    qtbot.wait(50)   # what the job said after the owner went is dropped, not delivered
    assert [entry[0] for entry in seen] == ["started"]
    assert not worker.is_running
