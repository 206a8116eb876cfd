"""Keys: one table drives the actions and the F1 sheet; finding keys win over fixed letters."""
from __future__ import annotations

from storage.catalogue import DEFAULT_FINDINGS, FindingSpec
from ui.shortcuts import FIXED_BINDINGS, ShortcutSheet, resolve_bindings


def test_fixed_letters_move_to_shift_when_a_finding_takes_them():
    findings = [FindingSpec("nodule", "Nodule", "n", "small"), *DEFAULT_FINDINGS[:3]]
    bindings = resolve_bindings(findings)
    assert bindings["normal"].keys == ("Shift+N",)
    assert bindings["ungradable"].keys == ("U",)
    assert bindings["next_unfinished"].keys[0] == "Space"


def test_default_catalogue_keeps_one_key_answers():
    bindings = resolve_bindings(list(DEFAULT_FINDINGS))
    finding_keys = {f.key.upper() for f in DEFAULT_FINDINGS}
    plain = {k for b in bindings.values() for k in b.keys if len(k) == 1}
    assert bindings["normal"].keys == ("N",)
    assert not plain & finding_keys


def test_shortcut_sheet_lists_every_finding_and_binding(qtbot):
    sheet = ShortcutSheet(resolve_bindings(list(DEFAULT_FINDINGS)), list(DEFAULT_FINDINGS))
    qtbot.addWidget(sheet)
    from PySide6.QtWidgets import QLabel

    text = " ".join(label.text() for label in sheet.findChildren(QLabel))
    for finding in DEFAULT_FINDINGS:
        assert finding.name in text
    for binding in FIXED_BINDINGS:
        assert binding.text in text
    assert "Superotemporal" in text
