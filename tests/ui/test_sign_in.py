"""Sign-in: readers listed from the project; a PIN is checked against its scrypt hash."""
from __future__ import annotations

from PySide6.QtCore import Qt

from storage.readers import add_reader
from ui.sign_in import SignInDialog, recent_projects


def _select(dialog, name: str) -> None:
    for row in range(dialog.readers.count()):
        if dialog.readers.item(row).text().startswith(name):
            dialog.readers.setCurrentRow(row)
            return
    raise AssertionError(name)


def test_reader_with_pin_signs_in_only_with_the_right_pin(qtbot, reading_project):
    add_reader(reading_project.project.database, "Dina", role="ophthalmologist", pin="2468")
    dialog = SignInDialog(reading_project.folder)
    qtbot.addWidget(dialog)
    names = [dialog.readers.item(i).text().split("  ·")[0] for i in range(dialog.readers.count())]
    assert names == ["Ana", "Ben", "Cleo", "Admin", "Dina"]
    _select(dialog, "Dina")
    assert dialog.pin.isEnabled()
    qtbot.keyClicks(dialog.pin, "1111")
    qtbot.keyClick(dialog.pin, Qt.Key.Key_Return)
    assert dialog.reader_id is None and "PIN" in dialog.message.text()
    dialog.pin.setText("2468")
    qtbot.keyClick(dialog.pin, Qt.Key.Key_Return)
    assert dialog.reader_id is not None
    assert str(reading_project.folder.resolve()) in recent_projects()
    dialog.project.close()


def test_a_folder_without_a_project_says_what_to_do(qtbot, tmp_path):
    dialog = SignInDialog(tmp_path)
    qtbot.addWidget(dialog)
    assert dialog.project is None and "init" in dialog.message.text()


def test_the_command_line_reader_is_preselected_for_the_pin(qtbot, reading_project):
    add_reader(reading_project.project.database, "Dina", role="ophthalmologist", pin="2468")
    dialog = SignInDialog(reading_project.folder, reader="Dina")
    qtbot.addWidget(dialog)
    assert dialog.readers.currentItem().text().startswith("Dina") and dialog.pin.isEnabled()
    dialog.project.close()
