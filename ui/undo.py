"""Undo and redo within one image.

An entry is the reader's state before and after one action. Undo writes the "before" state back
through ``ReaderSession.restore`` (one transaction with its audit event, like every action), so
an undo is as durable and as traceable as the click it takes back. Undo and redo are
compare-and-set (``restore(..., expected=...)``): they write only while the stored answer is still
the one this workstation saved, so the same reader on another workstation never loses a save.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from storage.labels import ReadState


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
