"""Every key of the reviewers' screen, in one table: the window binds them and the keys line shows them.

Moving and zooming use the workstation's keys (``ui.shortcuts``); 1–3, C and M choose what the
enlarged canvas shows; P, A, a click on a region, R and Ctrl+Enter adjudicate.
"""
from __future__ import annotations

from ui.shortcuts import Binding

REVIEW_BINDINGS: tuple[Binding, ...] = (
    Binding("reader1", ("1",), "Reader 1 on the whole canvas", "Show"),
    Binding("reader2", ("2",), "Reader 2 on the whole canvas", "Show"),
    Binding("reader3", ("3",), "Reader 3 on the whole canvas", "Show"),
    Binding("consensus", ("C",), "The consensus on the whole canvas", "Show"),
    Binding("model", ("M",), "The model's activation map on the whole canvas", "Show"),
    Binding("side_by_side", ("S",), "Side by side (all five at once) / back to the enlarged view", "Show"),
    Binding("next", ("Right", "PgDown", "J"), "Next in the queue", "Move"),
    Binding("previous", ("Left", "PgUp", "K"), "Previous in the queue", "Move"),
    Binding("fit", ("F", "Ctrl+0"), "Fit the photo to the canvas", "Zoom"),
    Binding("actual_size", ("Ctrl+1",), "1:1 (one photo pixel per screen pixel)", "Zoom"),
    Binding("zoom_in", ("+", "="), "Zoom in (or the mouse wheel, around the cursor)", "Zoom"),
    Binding("zoom_out", ("-",), "Zoom out", "Zoom"),
    Binding("present", ("P",), "Adjudicate: present (click regions on the photo)", "Adjudicate"),
    Binding("absent", ("A",), "Adjudicate: absent", "Adjudicate"),
    Binding("reason", ("R",), "Write the reason", "Adjudicate"),
    Binding("record", ("Ctrl+Return", "Ctrl+Enter"), "Record the adjudication and go to the next", "Adjudicate"),
    Binding("leave_reason", ("Esc",), "Leave the reason (kept): the keys above work again", "Adjudicate"),
    Binding("close", ("Ctrl+W",), "Close the review screen (the workstation stays)", "Window"),
    Binding("quit", ("Ctrl+Q",), "Quit Octant, as File → Quit in the workstation", "Window"),
)
BINDINGS = {binding.name: binding for binding in REVIEW_BINDINGS}


def keys_line() -> str:
    """'1/2/3 readers · C consensus · …': the short reminder under the queue."""
    short = [("1/2/3", "readers"), ("C", "consensus"), ("M", "model"), ("S", "side by side"),
             ("←/→", "queue"), ("F", "fit"), ("wheel", "zoom"), ("P/A", "present/absent"),
             ("click", "regions"), ("R", "reason"), ("Ctrl+Enter", "record")]
    return " · ".join(f"<b>{key}</b> {what}" for key, what in short)
