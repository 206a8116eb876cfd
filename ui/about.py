"""Help → About Octant: the version, the open project and who is signed in, and where the log is
(what a clinic's IT asks first when something goes wrong)."""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from PySide6.QtWidgets import QMessageBox

from ui.app import data_dir
from ui.keyboard_focus import give_keys_back


def octant_version() -> str:
    try:
        return version("octant")
    except PackageNotFoundError:   # run from a checkout that was not installed
        return "(not installed)"


def about_text(window) -> str:
    controller = window.controller
    project, reader = controller.project, controller.reader
    return (f"<b>Octant {octant_version()}</b>: fundus photographs labelled by region, each read blind by "
            "three readers; consensus, agreement and models from the same answers.<br><br>"
            f"Project: {controller.settings.name} ({project.root})<br>"
            f"Signed in: {reader.name} ({reader.role.value.replace('_', ' ')})<br>"
            f"Log: {data_dir() / 'octant.log'}<br><br>"
            "Every key: Help → Keyboard shortcuts (F1).")


def show_about(window) -> None:
    QMessageBox.about(window, "About Octant", about_text(window))
    give_keys_back(window)
