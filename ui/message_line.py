"""One line of feedback under a form: a problem in red, a success in green (both ≥ 4.5:1 on white)."""
from __future__ import annotations

from PySide6.QtWidgets import QLabel

PROBLEM_COLOUR = "#c0392b"
DONE_COLOUR = "#1e7e34"


def show_problem(label: QLabel, text: str) -> None:
    label.setStyleSheet(f"color:{PROBLEM_COLOUR};")
    label.setText(text)


def show_done(label: QLabel, text: str) -> None:
    label.setStyleSheet(f"color:{DONE_COLOUR};")
    label.setText(text)
