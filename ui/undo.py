"""Undo and redo within one image, applied through the same ReaderSession calls as any action.

An entry is the reader's state before and after one action. Undoing writes the "before" state
back with the smallest set of ReaderSession calls, so an undo is saved and audited like every
other action (storage-api.md: one transaction per call, each with its audit event).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from storage.labels import ReadState
from storage.reading import ReaderSession


@dataclass(frozen=True)
class UndoEntry:
    label: str  # what the action was, for the status bar ("Undo: haemorrhage region 3")
    before: ReadState
    after: ReadState


@dataclass
class ImageUndoStack:
    """One image's history; a new action after undos drops the undone entries."""

    entries: list[UndoEntry] = field(default_factory=list)
    position: int = 0  # entries[:position] are done, entries[position:] undone

    def push(self, entry: UndoEntry) -> None:
        del self.entries[self.position:]
        self.entries.append(entry)
        self.position = len(self.entries)

    def can_undo(self) -> bool:
        return self.position > 0

    def can_redo(self) -> bool:
        return self.position < len(self.entries)

    def take_undo(self) -> UndoEntry:
        self.position -= 1
        return self.entries[self.position]

    def take_redo(self) -> UndoEntry:
        self.position += 1
        return self.entries[self.position - 1]


def _clear_normal(session: ReaderSession, image_id: int) -> ReadState:
    # storage-api.md has no call that withdraws "normal" without adding a finding; the session's
    # own field setter does it in one audited transaction. (Reported to the storage owner.)
    return session._set_read_field(image_id, "clear_normal", "normal", False)


def restore(session: ReaderSession, image_id: int, current: ReadState,
            target: ReadState) -> ReadState:
    """Write ``target`` (labels, normal, ungradable, diagnosis, comment, landmarks) back.

    ``done`` is not part of the history: it follows from moving on (see ReadingController).
    Landmarks are restored only when the target has some (storage cannot delete them).
    """
    state = current
    if target.normal and not state.normal:
        state = session.mark_normal(image_id)  # also clears the findings
    for code in sorted(set(state.regions) | set(target.regions)):
        wanted = target.regions.get(code, frozenset())
        if state.regions.get(code, frozenset()) != wanted:
            state = session.set_regions(image_id, code, wanted)
    if state.normal and not target.normal:
        state = _clear_normal(session, image_id)
    if state.ungradable != target.ungradable:
        state = session.set_ungradable(image_id, target.ungradable)
    if state.diagnosis != target.diagnosis:
        state = session.set_diagnosis(image_id, target.diagnosis)
    if state.comment != target.comment:
        state = session.set_comment(image_id, target.comment)
    wanted_marks = target.landmarks
    if wanted_marks is not None and state.landmarks != wanted_marks:
        state = session.set_landmarks(image_id, wanted_marks.disc, wanted_marks.fovea,
                                      source=wanted_marks.source)
    return state
