"""A reader's clicks that a workstation could not save before it was stopped, kept in a recovery
file in the project folder and saved at that reader's next sign-in.

The workstation keeps clicks that meet a locked database and saves them in order
(``ui/save_queue.py``). When it is stopped before they are in (a logout's SIGTERM, a quit that
cannot wait), what is left is written here, ``<project>/recovery/kept-clicks-reader-<id>-<time>.json``,
never only to the log. A click is a ``ReaderStep``: a ``ReaderSession`` method and its arguments as
data, so it is done again later in the same order through the same checks (an undo's
compare-and-set still refuses when the stored answer changed meanwhile). Each click is saved
once: a sign-in takes a file by renaming it before its first click (the same reader signing in
on two workstations at once: one of them saves it) and rewrites it as each click goes in (a
sign-in that stops midway leaves the rest). Every write is whole or nothing (``_write_whole``).
"""
from __future__ import annotations

import inspect
import json
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from storage.database import Database
from storage.errors import DatabaseLockedError, InvalidRequestError, OctantError
from storage.labels import ReadState, state_from_json, state_json
from storage.reading import ReaderSession

RECOVERY_FOLDER = "recovery"
# The ReaderSession methods a click may be: nothing else is ever called from a recovery file.
STEP_METHODS = frozenset({"toggle_region", "mark_normal", "set_ungradable", "set_diagnosis", "set_comment",
                          "set_landmarks", "mark_done", "restore"})
_STATE_ARGUMENTS = ("target", "expected")   # restore's ReadStates
_POINT_ARGUMENTS = ("disc", "fovea")        # set_landmarks's (x, y)
RECOVERY_LOCK_WAIT_MS = 2000   # at sign-in: a locked database leaves the file for the next one
# A sign-in saving a file has it under a name of its own (``.taken-``), rewritten after each click; one
# untouched this long was left by a sign-in that stopped (a crash) and is taken over from where it was.
TAKEN_FOR_S = 60
_TAKEN = ".taken-"


@dataclass(frozen=True)
class ReaderStep:
    """One reader action as data: ``ReaderSession.<method>(image_id, **args)``."""
    method: str
    args: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method not in STEP_METHODS:
            raise InvalidRequestError(f"A click cannot be {self.method!r}; the recovery file is not Octant's.")
        try:   # arguments the method does not take: said here, not a TypeError as it is saved
            inspect.signature(getattr(ReaderSession, self.method)).bind(None, 0, **self.args)
        except TypeError:
            raise InvalidRequestError(f"A click {self.method!r} cannot take {sorted(self.args)}; the recovery "
                                      "file is not Octant's.") from None

    def apply(self, session: ReaderSession, image_id: int) -> ReadState:
        return getattr(session, self.method)(image_id, **self.args)

    def to_json(self) -> dict:
        def plain(key: str, value: Any) -> Any:
            if isinstance(value, ReadState):
                return state_json(value)
            return list(value) if key in _POINT_ARGUMENTS else value
        return dict(method=self.method, args={key: plain(key, value) for key, value in self.args.items()})

    @classmethod
    def from_json(cls, data: dict) -> ReaderStep:
        def typed(key: str, value: Any) -> Any:
            if key in _STATE_ARGUMENTS and value is not None:
                return state_from_json(value)
            return (float(value[0]), float(value[1])) if key in _POINT_ARGUMENTS else value
        return cls(str(data["method"]), {key: typed(key, value) for key, value in (data.get("args") or {}).items()})


@dataclass(frozen=True)
class UnsavedClick:
    label: str        # what the reader did, in the status bar's words ("Haemorrhage: region 5")
    image_id: int
    step: ReaderStep


def recovery_folder(project_root: Path) -> Path:
    return Path(project_root) / RECOVERY_FOLDER


def write_recovery_file(project_root: Path, reader_id: int, reader_name: str,
                        clicks: Sequence[UnsavedClick]) -> Path:
    """Write ``clicks`` (oldest first) for the reader's next sign-in; returns the file. Written
    whole or not at all (a temporary file renamed), and flushed to the disk before the rename."""
    folder = recovery_folder(project_root)
    folder.mkdir(parents=True, exist_ok=True)
    stopped_at = datetime.now(timezone.utc)
    path = folder / f"kept-clicks-reader-{reader_id}-{stopped_at:%Y%m%dT%H%M%S%f}-{os.getpid()}.json"
    document = dict(reader_id=reader_id, reader=reader_name, stopped_at=stopped_at.isoformat(),
                    clicks=[dict(label=c.label, image_id=c.image_id, step=c.step.to_json()) for c in clicks])
    _write_whole(path, document)
    return path


def _write_whole(path: Path, document: dict) -> None:
    """``path`` holds ``document`` whole or not at all, also after a power cut: a temporary file,
    flushed to the disk, renamed over it, and the rename flushed too."""
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    if os.name == "posix":   # the folder's entry for the new name (Windows cannot open a folder)
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def recovery_files(project_root: Path, reader_id: int) -> list[Path]:
    """The reader's recovery files, oldest first (the time is in the name): those waiting, and those
    a sign-in took and left untouched for ``TAKEN_FOR_S`` (it stopped while saving them)."""
    folder = recovery_folder(project_root)
    if not folder.is_dir():
        return []
    waiting = list(folder.glob(f"kept-clicks-reader-{reader_id}-*.json"))
    left = [path for path in folder.glob(f"kept-clicks-reader-{reader_id}-*.json{_TAKEN}*")
            if not path.name.endswith(".tmp") and _untouched_for(path, TAKEN_FOR_S)]
    return sorted(waiting + left, key=lambda path: path.name)


def _untouched_for(path: Path, seconds: float) -> bool:
    try:
        return time.time() - path.stat().st_mtime > seconds
    except OSError:   # taken meanwhile
        return False


def _take(path: Path) -> Path | None:
    """The file under a name of this sign-in's own, or None where another sign-in took it first (the
    same reader signing in on two workstations at once): a rename, which only one of them can make."""
    taken = path.with_name(path.name.split(_TAKEN)[0] + _TAKEN + uuid.uuid4().hex)
    try:
        os.rename(path, taken)
    except FileNotFoundError:
        return None
    os.utime(taken)   # a rename keeps the time: now, or another sign-in would think this one stopped
    return taken


def _waiting_name(taken: Path) -> Path:
    return taken.with_name(taken.name.split(_TAKEN)[0])


@dataclass
class Recovery:
    """What a sign-in did with the reader's recovery files."""
    saved: int = 0
    refused: list[str] = field(default_factory=list)   # "label: why" of clicks refused for a reason of their own
    waiting: int = 0                                   # left in their file: the database was locked
    unreadable: list[Path] = field(default_factory=list)
    stopped_at: datetime | None = None                 # when the first file was written

    def sentence(self) -> str:
        """What happened, in one sentence for the reader ("" when there was nothing)."""
        when = f" ({self.stopped_at.astimezone():%d %b %H:%M})" if self.stopped_at else ""
        given = self.saved + len(self.refused) + self.waiting
        clicks, are = (f"{given} clicks", "are") if given != 1 else ("1 click", "is")
        if self.unreadable:
            return (f"A recovery file of clicks not saved when Octant was stopped could not be read; it is "
                    f"kept in {self.unreadable[0].parent} for support.")
        if not given:
            return ""
        if self.waiting:
            return (f"{clicks} not saved when Octant was stopped{when} {are} still waiting: the database is busy "
                    f"in another program; they are saved at your next sign-in.")
        if self.refused:
            return (f"Of {clicks} not saved when Octant was stopped{when}, {self.saved} "
                    f"{'is' if self.saved == 1 else 'are'} saved now and "
                    f"{len(self.refused)} refused ({self.refused[0]}).")
        return f"{clicks} not saved when Octant was stopped{when} {are} saved now."


def recover_unsaved_clicks(db: Database, project_root: Path, reader_id: int,
                           lock_wait_ms: int = RECOVERY_LOCK_WAIT_MS) -> Recovery:
    """Save the reader's clicks from their recovery files, oldest first, each as it was given, each
    once: a file is taken (renamed) before its first click, so a sign-in elsewhere leaves it, and
    rewritten without each click as it is saved or refused, so a sign-in that stops midway leaves
    only the clicks after it (at worst the one being saved, if it stopped between its commit and
    the rewrite); it is removed when done, and put back with the rest when the database is locked
    (the next sign-in goes on)."""
    outcome = Recovery()
    session: ReaderSession | None = None
    for path in recovery_files(project_root, reader_id):
        taken = _take(path)
        if taken is None:
            continue
        session = session or ReaderSession(db, reader_id, lock_wait_ms=lock_wait_ms)
        try:
            document = json.loads(taken.read_text(encoding="utf-8"))
            stopped_at = datetime.fromisoformat(document["stopped_at"])
            clicks = [UnsavedClick(str(c["label"]), int(c["image_id"]), ReaderStep.from_json(c["step"]))
                      for c in document["clicks"]]
            if document["reader"] != session.reader.name:   # the id of another reader before a restore
                raise ValueError("written for another reader")
        except (OSError, ValueError, KeyError, TypeError, InvalidRequestError):
            _put_back(taken, path)
            outcome.unreadable.append(_waiting_name(path))
            continue
        outcome.stopped_at = outcome.stopped_at or stopped_at
        for done, click in enumerate(clicks):
            try:
                click.step.apply(session, click.image_id)
                outcome.saved += 1
            except DatabaseLockedError:
                outcome.waiting += len(clicks) - done
                _put_back(taken, path)
                return outcome
            except OctantError as error:
                outcome.refused.append(f"{click.label}, image {click.image_id}: {error}")
            document["clicks"] = document["clicks"][1:]
            if document["clicks"]:
                _write_whole(taken, document)
        taken.unlink()
    return outcome


def _put_back(taken: Path, path: Path) -> None:
    """The taken file back under its waiting name, for the next sign-in (or support)."""
    os.replace(taken, _waiting_name(path))
