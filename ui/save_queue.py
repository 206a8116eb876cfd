"""Clicks kept while another program holds the project database's write lock (or its PostgreSQL
server cannot be reached: stopped, restarting, the network down), saved in order.

The workstation saves each click at once on the GUI thread, waiting at most ``SCREEN_WAIT_MS``
for the lock (``ReaderSession(lock_wait_ms=...)``): never the busy timeout, tried twice, which
froze the window for up to ten seconds. A click that finds the database still locked is kept
here, with every click after it, and a single writer (a ``Worker`` on a one-thread pool) tries
them again in order until each is saved or refused for a reason of its own (a stale undo, a
retired reader), which is then said. Nothing is dropped: a window that closes with clicks
still kept asks first (``MainWindow.closeEvent``: keep waiting, or close and have them saved at
the next sign-in); a quit that cannot wait or ask (a logout's SIGTERM) tries them a last time.
What is left then goes to the project's recovery file (``storage.click_recovery``), saved at the
reader's next sign-in, and is named in the log.
"""
from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from storage.click_recovery import UnsavedClick, write_recovery_file
from storage.errors import CancelledError, DatabaseLockedError, DatabaseUnreachableError, OctantError
from storage.labels import ReadState
from storage.reading import ReaderSession
from ui.app import note_in_log
from ui.background import Worker, worker_pool

log = logging.getLogger("octant.ui.save_queue")

SCREEN_WAIT_MS = 200   # the longest a click's save holds the window
RETRY_WAIT_MS = 500    # each try of the writer: a cancel (quit) is seen within a second
RETRY_PAUSE_S = 0.05   # between tries, should a locked database answer at once
UNREACHABLE_PAUSE_S = 0.5   # between tries while the server cannot be reached (each is a new connection)


@dataclass(frozen=True)
class KeptClick(UnsavedClick):
    """One click not saved yet: ``step`` on the reader's read of ``image_id``."""
    undoable: bool = True


@dataclass(frozen=True)
class SavedClick:
    click: KeptClick
    before: ReadState | None     # the stored answer just before it (for undo)
    after: ReadState | None      # None: refused, ``problem`` says why
    problem: OctantError | None = None


class SaveQueue(QObject):
    """The clicks waiting for the database, and the one writer that saves them in order."""

    outcome = Signal(object)   # SavedClick, on the GUI thread, in the order of the clicks

    def __init__(self, session: ReaderSession, parent: QObject | None = None,
                 recovery_root: Path | None = None) -> None:
        """``recovery_root``: the project folder, where clicks left at a quit go for the next sign-in."""
        super().__init__(parent)
        self.recovery_root = recovery_root
        self.recovery_file: Path | None = None   # where the clicks left were written, if they were
        self.recovery_problem = ""                 # why they could not be, if they could not
        # The writer's own session: it waits longer for the lock than the window's does.
        self._session = ReaderSession(session.db, session.reader.id, lock_wait_ms=RETRY_WAIT_MS)
        self._clicks: deque[KeptClick] = deque()
        self._lock = threading.Lock()
        self._writing = False
        self._logged = False   # the unsaved clicks have been written and named in the log
        self._pool = worker_pool(self, 1)
        self.writer: Worker | None = None

    def waiting(self) -> int:
        """How many clicks are kept, not saved yet."""
        with self._lock:
            return len(self._clicks)

    def kept(self) -> list[KeptClick]:
        with self._lock:
            return list(self._clicks)

    def keep(self, click: KeptClick) -> None:
        """Keep ``click`` after those already kept; the writer saves it in its turn."""
        with self._lock:
            self._clicks.append(click)
            if self._writing:
                return
            self._writing = True
        self._start_writer()

    def _start_writer(self) -> None:
        self.writer = Worker(self._write_all, name="Saving kept clicks", pool=self._pool, owner=self)
        self.writer.yielded.connect(self.outcome.emit)
        self.writer.start()

    def stop(self, last_try_ms: int = 0) -> list[KeptClick]:
        """Cancel and join the writer (the window closes), after letting it try ``last_try_ms``
        more; returns the clicks left unsaved, which are written to the recovery file
        (``recovery_file``, or ``recovery_problem`` says why not) and named in the log."""
        if self.writer is not None:
            if last_try_ms:
                self.writer.wait(last_try_ms)
            self.writer.cancel()
            self.writer.wait()
        self._account_for_unsaved()   # also when the writer was dropped before it ran
        return self.kept()

    def resume(self) -> None:
        """After a ``stop`` whose clicks could not be written to the recovery file: the writer goes
        on saving them (the window stays open)."""
        with self._lock:
            self._logged = False
            if not self._clicks or self._writing:
                return
            self._writing = True
        self._start_writer()

    def _account_for_unsaved(self) -> None:
        """Once: the clicks left go to the recovery file and are named in the log."""
        left = self.kept()
        with self._lock:
            if not left or self._logged:
                return
            self._logged = True
        line = unsaved_clicks_line(self._session.reader.name, left)
        if self.recovery_root is not None:
            try:
                self.recovery_file = write_recovery_file(self.recovery_root, self._session.reader.id,
                                                         self._session.reader.name, left)
                line += f" Written to {self.recovery_file}: saved at {self._session.reader.name}'s next sign-in."
            except OSError as error:   # a full disk, a read-only project folder: the log still names them
                self.recovery_problem = f"{error.strerror or error}"
                line += f" They could not be written to the recovery file ({error})."
        log.error("%s", line)
        note_in_log(line)

    def _write_all(self, report, cancel: threading.Event) -> None:
        """The writer: the kept clicks, oldest first, each tried until it is saved or refused."""
        try:
            while True:
                with self._lock:
                    if not self._clicks:
                        self._writing = False   # decided with the queue empty: the next click starts a writer
                        return
                    click = self._clicks[0]
                saved = self._save(click, cancel)
                with self._lock:   # first: a quit from here on does not count it as unsaved
                    self._clicks.popleft()
                report(saved)
        except BaseException:
            with self._lock:
                self._writing = False
            self._account_for_unsaved()   # a quit that could not wait (stop_all_background_work)
            raise

    def _save(self, click: KeptClick, cancel: threading.Event) -> SavedClick:
        while True:
            try:
                before = self._session.read(click.image_id)
                return SavedClick(click, before, click.step.apply(self._session, click.image_id))
            except (DatabaseLockedError, DatabaseUnreachableError) as error:
                pause = UNREACHABLE_PAUSE_S if isinstance(error, DatabaseUnreachableError) else RETRY_PAUSE_S
                if cancel.wait(pause):
                    raise CancelledError("Saving was stopped with clicks not saved.") from None
            except OctantError as error:   # refused for a reason of its own: said, not tried again
                return SavedClick(click, None, None, error)


def unsaved_clicks_line(reader: str, clicks: list[KeptClick]) -> str:
    """One log line naming every click that was not saved (the reader can give them again)."""
    named = "; ".join(f"image {click.image_id}: {click.label}" for click in clicks)
    return f"Not saved (the database was busy in another program or out of reach), {reader}'s clicks: {named}."
