"""Giving the keyboard back to a window once a dialog or screen over it has closed.

A window manager does that on a desktop; where there is none (a kiosk session, Xvfb) nobody
does, and after Esc in a prompt, or Ctrl+W in the review screen, the reader's keys went nowhere
until they clicked into the workstation (tests/ui/test_real_display.py).
"""
from __future__ import annotations

from PySide6.QtWidgets import QWidget


def give_keys_back(widget: QWidget | None) -> None:
    """The keys go to ``widget``'s window again, if it is still shown (it may be closing too)."""
    window = widget.window() if widget is not None else None
    if window is not None and window.isVisible():
        window.activateWindow()
