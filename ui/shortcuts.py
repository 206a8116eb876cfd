"""Every keyboard binding of the workstation, in one table, and the F1 sheet built from it.

Keyboard first: a finding's key (from the project's catalogue) makes it the current finding,
1–8 toggle regions for it, N answers "normal" and moves on, Space/Enter opens the next
unfinished image. One finding in one region is three keys (finding, region, Space); a normal
image is one (N). Fixed letters that a project gives to a finding move to Shift+letter.
"""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from storage.catalogue import FindingSpec
from ui.region_shapes import display_name


@dataclass(frozen=True)
class Binding:
    name: str             # action name used by the window
    keys: tuple[str, ...]  # QKeySequence strings, first one shown
    text: str             # what it does, as the sheet and tooltips say it
    group: str


FIXED_BINDINGS: tuple[Binding, ...] = (
    Binding("next_unfinished", ("Space", "Return", "Enter"),
            "Next unfinished image (this one is marked done when answered)", "Reading"),
    Binding("normal", ("N",), "Normal: no finding; saves and opens the next unfinished (asks once over marked findings)", "Reading"),
    Binding("ungradable", ("U",), "Ungradable on / off", "Reading"),
    Binding("clear_finding", ("Esc",), "No current finding", "Reading"),
    Binding("previous", ("Left", "PgUp"), "Previous image in the queue", "Reading"),
    Binding("next", ("Right", "PgDown"), "Next image in the queue", "Reading"),
    Binding("undo", ("Ctrl+Z",), "Undo (within this image)", "Reading"),
    Binding("redo", ("Ctrl+Shift+Z", "Ctrl+Y"), "Redo", "Reading"),
    Binding("accept_suggestions", ("Shift+A",), "Accept the model's suggested regions", "Reading"),
    Binding("fit", ("F", "Ctrl+0"), "Fit the photo to the window", "View"),
    Binding("actual_size", ("Ctrl+1",), "1:1 (one photo pixel per screen pixel)", "View"),
    Binding("zoom_in", ("+", "="), "Zoom in (or the mouse wheel, around the cursor)", "View"),
    Binding("zoom_out", ("-",), "Zoom out", "View"),
    Binding("regions", ("Shift+R",), "Region outlines on / off", "View"),
    Binding("green", ("Shift+G",), "Green channel (red-free) on / off", "View aids"),
    Binding("clahe", ("Shift+C",), "Local contrast (CLAHE) on / off", "View aids"),
    Binding("brighter", ("Shift+Up",), "Brighter", "View aids"),
    Binding("darker", ("Shift+Down",), "Darker", "View aids"),
    Binding("more_contrast", ("Shift+Right",), "More contrast", "View aids"),
    Binding("less_contrast", ("Shift+Left",), "Less contrast", "View aids"),
    Binding("reset_aids", ("Shift+X",), "Photo as recorded (view aids off)", "View aids"),
    Binding("overlay_vessels", ("Shift+V",), "Model overlay: vessels", "Model overlays"),
    Binding("overlay_disc_cup", ("Shift+D",), "Model overlay: disc and cup", "Model overlays"),
    Binding("overlay_lesions", ("Shift+L",), "Model overlay: lesions", "Model overlays"),
    Binding("shortcuts", ("F1",), "This sheet", "Help"),
)


def resolve_bindings(findings: list[FindingSpec]) -> dict[str, Binding]:
    """Fixed bindings, with any plain letter a finding already uses moved to Shift+letter."""
    taken = {f.key.upper() for f in findings}
    resolved = {}
    for binding in FIXED_BINDINGS:
        keys = tuple(f"Shift+{k}" if len(k) == 1 and k.upper() in taken else k
                     for k in binding.keys)
        resolved[binding.name] = Binding(binding.name, keys, binding.text, binding.group)
    return resolved


def _key_label(key: str) -> str:
    return f"<span style='font-family:monospace; font-weight:600'>{key}</span>"


class ShortcutSheet(QDialog):
    """F1: the keys, grouped, with the findings of this project and the eight region numbers."""

    def __init__(self, bindings: dict[str, Binding], findings: list[FindingSpec],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        groups: dict[str, list[tuple[str, str]]] = {
            "Findings (choose the current finding, then its regions)":
                [(_key_label(f.key.upper()), f.name) for f in findings],
            "Regions (toggle for the current finding, or click on the photo)":
                [(_key_label(str(code)), display_name(code)) for code in range(1, 9)],
            "Mouse": [
                ("click", "Toggle the region under the cursor (no landmarks yet: place the "
                          "disc, then the fovea)"),
                ("drag", "Pan; drag a marker to move the disc or fovea (the regions follow)"),
                ("wheel", "Zoom around the cursor")],
        }
        for binding in bindings.values():
            groups.setdefault(binding.group, []).append(
                (" / ".join(_key_label(k) for k in binding.keys), binding.text))
        names = list(groups)
        columns = QHBoxLayout()
        for part in (names[:3], names[3:]):
            grid = QGridLayout()
            grid.setHorizontalSpacing(14)
            grid.setColumnStretch(1, 1)
            row = 0
            for name in part:
                heading = QLabel(f"<b>{name}</b>")
                heading.setContentsMargins(0, 10 if row else 0, 0, 2)
                grid.addWidget(heading, row, 0, 1, 2)
                row += 1
                for keys, text in groups[name]:
                    grid.addWidget(QLabel(keys), row, 0, Qt.AlignmentFlag.AlignTop)
                    label = QLabel(text)
                    label.setWordWrap(True)
                    grid.addWidget(label, row, 1)
                    row += 1
            grid.setRowStretch(row, 1)
            columns.addLayout(grid, 1)
            columns.addSpacing(16)
        content = QWidget()
        content.setLayout(columns)
        scroll = QScrollArea()
        scroll.setWidget(content)
        scroll.setWidgetResizable(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(scroll)
        layout.addWidget(buttons)
        self.resize(980, 700)
