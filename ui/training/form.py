"""A form bound to a config dataclass: one editor per field, typed from the field's annotation.

The fields' defaults are the papers' (``GuidedConfig``, ``guided_train_config()``), so the form
opens on them; ``value()`` returns a new dataclass with the edits, ``reset()`` restores them.
"""
from __future__ import annotations

import dataclasses
import math
import typing

from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QLineEdit, QSpinBox, QWidget

INT_RANGE = (0, 1_000_000)


def _choices(hint) -> tuple | None:
    if typing.get_origin(hint) is typing.Literal:
        return typing.get_args(hint)
    return None


def _decimals(value: float) -> int:
    """Enough decimals to show the default exactly (1e-4 needs 4, 0.95 needs 2)."""
    if value == 0 or not math.isfinite(value):
        return 3
    return min(8, max(3, int(math.ceil(-math.log10(abs(value)))) + 2))


class ConfigForm(QWidget):
    """Editors for the fields of ``template`` (a dataclass instance) except ``hidden`` ones."""

    def __init__(self, template, hidden: tuple[str, ...] = (), labels: dict[str, str] | None = None,
                 choices: dict[str, tuple] | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.template = template
        self.hidden = set(hidden)
        self.editors: dict[str, QWidget] = {}
        hints = typing.get_type_hints(type(template))
        layout = QFormLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for spec in dataclasses.fields(template):
            if spec.name in self.hidden:
                continue
            editor = self._editor(hints[spec.name], getattr(template, spec.name),
                                  (choices or {}).get(spec.name))
            if editor is None:
                continue
            editor.setObjectName(spec.name)
            self.editors[spec.name] = editor
            layout.addRow((labels or {}).get(spec.name, spec.name.replace("_", " ")), editor)

    def _editor(self, hint, value, choices: tuple | None) -> QWidget | None:
        choices = choices or _choices(hint)
        if choices:
            combo = QComboBox()
            combo.addItems([str(c) for c in choices])
            combo.setCurrentText(str(value))
            return combo
        if hint is bool:
            check = QCheckBox()
            check.setChecked(bool(value))
            return check
        if hint is int:
            whole = QSpinBox()
            whole.setRange(*INT_RANGE)
            whole.setValue(int(value))
            return whole
        if hint is float:
            real = QDoubleSpinBox()
            real.setDecimals(_decimals(float(value)))
            real.setRange(0.0, 1e6)
            real.setSingleStep(10 ** -real.decimals() * 10 if value == 0 else abs(float(value)) / 10)
            real.setValue(float(value))
            return real
        if hint is str:
            return QLineEdit(str(value))
        return None  # optional/compound fields (e.g. device) are set elsewhere in the panel

    def value(self, **overrides):
        changes: dict[str, object] = {}
        for name, editor in self.editors.items():
            if isinstance(editor, QComboBox):
                changes[name] = editor.currentText()
            elif isinstance(editor, QCheckBox):
                changes[name] = editor.isChecked()
            elif isinstance(editor, (QSpinBox, QDoubleSpinBox)):
                changes[name] = editor.value()
            elif isinstance(editor, QLineEdit):   # the four kinds _editor makes
                changes[name] = editor.text()
        return dataclasses.replace(self.template, **{**changes, **overrides})

    def set_values(self, **values) -> None:
        for name, value in values.items():
            editor = self.editors.get(name)
            if isinstance(editor, QComboBox):
                editor.setCurrentText(str(value))
            elif isinstance(editor, QCheckBox):
                editor.setChecked(bool(value))
            elif isinstance(editor, (QSpinBox, QDoubleSpinBox)):
                editor.setValue(value)
            elif isinstance(editor, QLineEdit):
                editor.setText(str(value))

    def reset(self) -> None:
        self.set_values(**{name: getattr(self.template, name) for name in self.editors})
