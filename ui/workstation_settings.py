"""The workstation's own settings (QSettings: recent projects, window layout, pre-segment ahead,
precision), in a module of its own so the sign-in dialog and the precision menu need not import
the main window to read them."""
from __future__ import annotations

from PySide6.QtCore import QSettings


def workstation_settings() -> QSettings:
    """This computer's workstation settings (an INI file in the user's configuration folder)."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "Octant",
                     "workstation")
