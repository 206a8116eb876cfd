"""The workstation's precision setting (Model menu → Precision): auto, fp32 or bf16, remembered in
the workstation's QSettings and followed by every network it runs (the pass ahead of the reader,
the training panel's default). ``gui --precision`` sets it too. Under the choices, one line says what
the pre-segmentation networks last ran in and why (``show_networks_line``)."""
from __future__ import annotations

from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QMenu, QWidget

from models.engine.precision import PRECISION_CHOICES, parse_precision, set_precision
from storage.errors import OctantError
from ui.workstation_settings import workstation_settings

SETTING_KEY = "model/precision"
LABELS = {"auto": "Automatic (by this computer: fp16 on a GPU; on a CPU fp32 through ONNX Runtime, "
                  "else bf16 where the CPU has it natively)",
          "fp32": "fp32 (full precision)",
          "bf16": "bf16 in PyTorch (half the memory; slow on CPUs without native bf16)"}
NETWORKS_LINE = "precisionNetworksLine"   # the object name of the line under the choices
NOT_RUN_YET = "Pre-segmentation networks: not run yet since Octant started"


def saved_precision() -> str:
    try:
        return parse_precision(str(workstation_settings().value(SETTING_KEY, "auto")))
    except OctantError:   # a hand-edited settings file: the safe default
        return "auto"


def remember_precision(value: str) -> str:
    """Check, apply to this process and remember ``value``; a bad one raises a one-sentence OctantError."""
    choice = set_precision(value)
    workstation_settings().setValue(SETTING_KEY, choice)
    return choice


def slow_precision_warning(choice: str) -> str:
    """The sentence to show when ``choice`` will be slow on this computer's CPU ("" otherwise)."""
    if choice != "bf16":
        return ""
    from models.engine.device import pick_device
    from models.engine.precision import resolve_precision

    return resolve_precision(pick_device(), choice).warning


def add_precision_menu(menu: QMenu, window) -> QMenu:
    """A Precision submenu of radio items; the saved choice is applied when the menu is built."""
    choice = set_precision(saved_precision())
    submenu = menu.addMenu("Precision")
    group = QActionGroup(submenu)
    group.setExclusive(True)
    for name in PRECISION_CHOICES:
        action = QAction(LABELS[name], submenu)
        action.setCheckable(True)
        action.setChecked(name == choice)
        action.setData(name)
        group.addAction(action)
        submenu.addAction(action)
    submenu.addSeparator()
    line = QAction(NOT_RUN_YET, submenu)
    line.setObjectName(NETWORKS_LINE)
    line.setEnabled(False)   # information, not a choice
    submenu.addAction(line)

    def chosen(action: QAction) -> None:
        remember_precision(action.data())
        warning = slow_precision_warning(action.data())
        if warning:
            window.show_problem(warning, box=False)
    group.triggered.connect(chosen)
    return submenu


def show_networks_line(window: QWidget, text: str) -> None:
    """Put the backend and precision the networks ran in, and why, under the Precision choices."""
    line = window.findChild(QAction, NETWORKS_LINE)
    if line is not None:
        line.setText(text)
