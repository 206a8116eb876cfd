"""The workstation's precision setting: Model menu → Precision, remembered, applied to the process, with
the line that says what the networks last ran in."""
from __future__ import annotations

import pytest

from models.engine.precision import PRECISION_ENV
from storage.errors import OctantError


def precision_actions(window) -> dict:
    model_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Model")
    submenu = next(a.menu() for a in model_menu.actions() if a.text() == "Precision")
    return {action.data(): action for action in submenu.actions() if action.isCheckable()}


def networks_line(window) -> str:
    from PySide6.QtGui import QAction

    from ui.precision_setting import NETWORKS_LINE

    return window.findChild(QAction, NETWORKS_LINE).text()


def test_the_choice_is_remembered_and_followed(qtbot, reading_project, monkeypatch):
    from ui.precision_setting import remember_precision, saved_precision
    from ui.workstation import build_window

    monkeypatch.setenv(PRECISION_ENV, "auto")   # restored after the test
    window = build_window(reading_project.project, reading_project.readers["Ana"].id)
    qtbot.addWidget(window)
    actions = precision_actions(window)
    assert set(actions) == {"auto", "fp32", "bf16"} and actions["auto"].isChecked()
    actions["fp32"].trigger()
    assert saved_precision() == "fp32" and __import__("os").environ[PRECISION_ENV] == "fp32"
    again = build_window(reading_project.project, reading_project.readers["Ana"].id)   # next start
    qtbot.addWidget(again)
    assert precision_actions(again)["fp32"].isChecked()
    with pytest.raises(OctantError, match="^Unknown precision 'fast'"):
        remember_precision("fast")
    assert saved_precision() == "fp32"
    remember_precision("auto")


def test_under_the_choices_a_line_says_what_the_networks_ran_in(qtbot, reading_project):
    from ui.precision_setting import NOT_RUN_YET, show_networks_line
    from ui.workstation import build_window

    window = build_window(reading_project.project, reading_project.readers["Ana"].id)
    qtbot.addWidget(window)
    assert networks_line(window) == NOT_RUN_YET
    ran = "Pre-segmentation networks: ONNX Runtime fp32 on the CPU (auto: faster than PyTorch's bf16)."
    show_networks_line(window, ran)
    assert networks_line(window) == ran
