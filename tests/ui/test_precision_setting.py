"""The workstation's precision setting: Model menu → Precision, remembered, applied to the process."""
from __future__ import annotations

import pytest

from models.engine.precision import PRECISION_ENV
from storage.errors import OctantError


def precision_actions(window) -> dict:
    model_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Model")
    submenu = next(a.menu() for a in model_menu.actions() if a.text() == "Precision")
    return {action.data(): action for action in submenu.actions()}


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
