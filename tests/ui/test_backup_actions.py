"""File → Back up now… and the daily automatic backup run in the background and say how it went."""
from __future__ import annotations

import json

from PySide6.QtWidgets import QFileDialog

from storage.backup import MANIFEST
from tests.ui.driving import open_window
from ui.backup_actions import DAILY_SETTING, back_up_now
from ui.main_window import workstation_settings
from ui.workstation import build_window


def admin_window(qtbot, reading_project):
    """The admin reads no images, so the window has no photo to wait for."""
    window = build_window(reading_project.project, reading_project.readers["Admin"].id)
    qtbot.addWidget(window)
    return window


def file_menu_texts(window) -> list[str]:
    menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&File")
    return [a.text() for a in menu.actions()]


def test_back_up_now_writes_a_backup_off_the_gui_thread(qtbot, reading_project, tmp_path, monkeypatch):
    window = admin_window(qtbot, reading_project)
    assert "Back up now…" in file_menu_texts(window)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args, **kwargs: str(tmp_path))
    menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&File")
    next(a for a in menu.actions() if a.text() == "Back up now…").trigger()
    assert "Backing up" in window.hint_label.text()  # the window answers at once; the copy runs behind
    qtbot.waitUntil(lambda: "Backed up ✓" in window.hint_label.text(), timeout=20000)
    backup = next(tmp_path.glob("octant-backup-*"))
    assert set(json.loads((backup / MANIFEST).read_text())["files"]) >= {"octant.sqlite"}
    window.backup_worker.wait(5000)


def test_a_failed_backup_is_told_in_one_sentence(qtbot, reading_project, tmp_path):
    window = admin_window(qtbot, reading_project)
    (tmp_path / "file").write_text("not a folder")
    worker = back_up_now(window, folder=str(tmp_path / "file"))
    qtbot.waitUntil(lambda: "could not be written" in window.hint_label.text(), timeout=20000)
    worker.wait(5000)


def test_readers_have_no_backup_item(qtbot, reading_project):
    window = open_window(qtbot, reading_project.project, reading_project.readers["Ana"].id)
    assert "Back up now…" not in file_menu_texts(window)


def test_opening_the_workstation_makes_the_days_backup_in_the_background(qtbot, reading_project):
    workstation_settings().setValue(DAILY_SETTING, True)
    window = open_window(qtbot, reading_project.project, reading_project.readers["Ana"].id)
    backups = reading_project.folder / "backups"
    qtbot.waitUntil(lambda: backups.is_dir() and any(backups.glob("daily-*/" + MANIFEST)), timeout=20000)
    window.daily_backup_worker.wait(5000)
