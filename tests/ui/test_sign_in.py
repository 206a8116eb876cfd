"""Sign-in: readers listed from the project; a PIN is checked against its scrypt hash; "Add
reader…" needs an admin signed in (or, in a project without one, makes the first admin)."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from storage.project import create_project
from storage.readers import Role, list_readers
from storage.schema import Reader
from tests.conftest import ADMIN_PASSPHRASE, add_reader_as_admin
from ui.sign_in import SignInDialog, recent_projects

PIN = "246810"


def _select(dialog, name: str) -> None:
    for row in range(dialog.readers.count()):
        if dialog.readers.item(row).text().startswith(name):
            dialog.readers.setCurrentRow(row)
            return
    raise AssertionError(name)


def wrong_tries(db, reader_id: int) -> int:
    with db.reading() as session:
        return session.get(Reader, reader_id).failed_sign_ins


def shown_dialog(qtbot, folder, reader: str | None = None) -> SignInDialog:
    """The dialog on screen: its Sign in button is then the default that Enter presses."""
    dialog = SignInDialog(folder, reader=reader)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    return dialog


def answering(dialog, monkeypatch, *answers):
    """The dialog's prompts answered in turn (None: Cancel); each prompt's label is kept."""
    queue, asked = list(answers), []

    def answer(title, label, *_rest, **_options):
        asked.append(label)
        return queue.pop(0)

    monkeypatch.setattr(dialog, "ask_text", answer)
    monkeypatch.setattr(dialog, "ask_choice", answer)
    return asked


def test_reader_with_pin_signs_in_only_with_the_right_pin(qtbot, reading_project):
    add_reader_as_admin(reading_project.project.database, "Dina", role="ophthalmologist", pin=PIN)
    dialog = shown_dialog(qtbot, reading_project.folder)
    names = [dialog.readers.item(i).text().split("  ·")[0] for i in range(dialog.readers.count())]
    assert names == ["Admin", "Ana", "Ben", "Cleo", "Dina"]
    _select(dialog, "Dina")
    assert dialog.pin.isEnabled()
    qtbot.keyClicks(dialog.pin, "111111")
    qtbot.keyClick(dialog.pin, Qt.Key.Key_Return)
    assert dialog.reader_id is None and "not right for Dina" in dialog.message.text()
    dialog.pin.setText(PIN)
    qtbot.keyClick(dialog.pin, Qt.Key.Key_Return)
    assert dialog.reader_id is not None
    assert str(reading_project.folder.resolve()) in recent_projects()
    dialog.project.close()


def test_choosing_another_reader_clears_the_last_readers_problem(qtbot, reading_project):
    # A new-user trial: "Type the passphrase of Demo admin" stayed up, in red, under another reader.
    add_reader_as_admin(reading_project.project.database, "Dina", role="ophthalmologist", pin=PIN)
    dialog = shown_dialog(qtbot, reading_project.folder, reader="Dina")
    qtbot.keyClicks(dialog.pin, "111111")
    qtbot.keyClick(dialog.pin, Qt.Key.Key_Return)
    assert "not right for Dina" in dialog.message.text()
    _select(dialog, "Ana")
    assert dialog.message.text() == ""
    dialog.project.close()


def test_the_field_asks_an_admin_for_their_passphrase_not_a_pin(qtbot, reading_project):
    # It said "PIN" to everyone; admins always have a passphrase and looked for digits they never had.
    add_reader_as_admin(reading_project.project.database, "Dina", role="ophthalmologist", pin=PIN)
    dialog = SignInDialog(reading_project.folder)
    qtbot.addWidget(dialog)
    expected = {"Admin": "passphrase", "Dina": "PIN or passphrase", "Ana": "no PIN"}
    for name, word in expected.items():
        _select(dialog, name)
        assert dialog.pin.placeholderText() == word, name
    dialog.project.close()


def test_wrong_tries_make_the_dialog_say_how_long_to_wait(qtbot, reading_project):
    add_reader_as_admin(reading_project.project.database, "Dina", role="ophthalmologist", pin=PIN)
    dialog = shown_dialog(qtbot, reading_project.folder, reader="Dina")
    for _ in range(4):
        dialog.pin.setText("111111")
        qtbot.keyClick(dialog.pin, Qt.Key.Key_Return)
    assert "wait 15 s" in dialog.message.text()
    dialog.pin.setText(PIN)
    qtbot.keyClick(dialog.pin, Qt.Key.Key_Return)
    assert dialog.reader_id is None and "try again in" in dialog.message.text()
    dialog.project.close()


def test_one_enter_with_a_wrong_pin_is_one_wrong_try(qtbot, reading_project):
    # Trying the product: Enter signed in twice (the PIN field's slot and the default button), so one
    # typo counted two wrong tries and the second typo already meant a 15 s wait.
    db = reading_project.project.database
    dina = add_reader_as_admin(db, "Dina", role="ophthalmologist", pin=PIN)
    dialog = shown_dialog(qtbot, reading_project.folder, reader="Dina")
    qtbot.keyClicks(dialog.pin, "111111")
    qtbot.keyClick(dialog.pin, Qt.Key.Key_Return)
    assert wrong_tries(db, dina.id) == 1 and "not right for Dina" in dialog.message.text()
    dialog.project.close()


def test_enter_in_the_project_field_opens_it_and_signs_nobody_in(qtbot, reading_project, tmp_path):
    # Trying the product: a project path typed and Enter pressed "signed in" its first reader (the
    # admin) with no passphrase: "not right for Admin", and a wrong try counted against them.
    db = reading_project.project.database
    admin = reading_project.readers["Admin"]
    dialog = shown_dialog(qtbot, tmp_path)     # no project there yet
    line = dialog.folder.lineEdit()
    line.selectAll()
    qtbot.keyClicks(line, str(reading_project.folder))
    qtbot.keyClick(line, Qt.Key.Key_Return)
    assert dialog.project is not None and dialog.readers.count() == 4
    assert dialog.reader_id is None and wrong_tries(db, admin.id) == 0 and dialog.isVisible()
    qtbot.keyClick(dialog.pin, Qt.Key.Key_Return)          # Enter with nothing typed: told, not a try
    assert dialog.message.text() == "Type the passphrase of Admin, then press Enter."
    assert wrong_tries(db, admin.id) == 0
    dialog.pin.setText(ADMIN_PASSPHRASE)
    qtbot.keyClick(dialog.pin, Qt.Key.Key_Return)
    assert dialog.reader_id == admin.id
    dialog.project.close()


def test_a_folder_without_a_project_says_what_to_do(qtbot, tmp_path):
    dialog = SignInDialog(tmp_path)
    qtbot.addWidget(dialog)
    assert dialog.project is None and "init" in dialog.message.text()


def test_a_first_start_without_a_project_says_where_to_begin(qtbot):
    # Trying the product: `python main.py` on a new machine showed an empty form and nothing else.
    dialog = SignInDialog(None)
    qtbot.addWidget(dialog)
    assert dialog.project is None and "Open…" in dialog.message.text() and "--demo" in dialog.message.text()


def test_the_command_line_reader_is_preselected_for_the_pin(qtbot, reading_project):
    add_reader_as_admin(reading_project.project.database, "Dina", role="ophthalmologist", pin=PIN)
    dialog = SignInDialog(reading_project.folder, reader="Dina")
    qtbot.addWidget(dialog)
    assert dialog.readers.currentItem().text().startswith("Dina") and dialog.pin.isEnabled()
    dialog.project.close()


def test_adding_a_reader_needs_the_admins_passphrase(qtbot, reading_project, monkeypatch):
    db = reading_project.project.database
    dialog = SignInDialog(reading_project.folder)
    qtbot.addWidget(dialog)
    # Issue 16: "Add reader…" made an admin with no PIN. A wrong passphrase adds nobody.
    asked = answering(dialog, monkeypatch, "Admin", "not the passphrase", "Mallory", "admin", "")
    dialog.add.click()
    assert "not right for Admin" in dialog.message.text() and len(asked) == 2
    assert [r.name for r in list_readers(db)] == ["Admin", "Ana", "Ben", "Cleo"]
    answering(dialog, monkeypatch, "Admin", ADMIN_PASSPHRASE, "Mallory", "admin", "")
    dialog.add.click()
    assert "passphrase" in dialog.message.text() and "Mallory" not in [r.name for r in list_readers(db)]
    answering(dialog, monkeypatch, "Admin", ADMIN_PASSPHRASE, "Dina", "ophthalmologist", PIN, "000000")
    dialog.add.click()
    assert dialog.message.text() == "The two entries differ; nothing was changed."
    answering(dialog, monkeypatch, "Admin", ADMIN_PASSPHRASE, "Dina", "ophthalmologist", PIN, PIN)
    dialog.add.click()
    assert [(r.name, r.has_pin) for r in list_readers(db)][-1] == ("Dina", True)
    assert dialog.readers.currentItem().text().startswith("Dina")
    dialog.project.close()


def test_a_new_project_gets_its_first_admin_with_a_passphrase(qtbot, tmp_path, monkeypatch):
    create_project(tmp_path / "new").close()
    dialog = SignInDialog(tmp_path / "new")
    qtbot.addWidget(dialog)
    assert "first is its admin" in dialog.message.text()
    answering(dialog, monkeypatch, "Dr First", "short", "short")
    dialog.add.click()
    assert "at least 12 characters" in dialog.message.text() and dialog.readers.count() == 0
    answering(dialog, monkeypatch, "Dr First", "a long passphrase", "a long passphrase")
    dialog.add.click()
    assert [(r.name, r.role, r.has_pin) for r in list_readers(dialog.project.database)] == [
        ("Dr First", Role.ADMIN, True)]
    dialog.project.close()


@pytest.mark.parametrize("answers", [(None,), ("Admin", None)])
def test_cancelling_the_admin_sign_in_adds_nobody(qtbot, reading_project, monkeypatch, answers):
    dialog = SignInDialog(reading_project.folder)
    qtbot.addWidget(dialog)
    answering(dialog, monkeypatch, *answers)
    dialog.add.click()
    assert dialog.readers.count() == 4
    dialog.project.close()


def test_the_command_lines_reader_is_chosen_when_the_project_opens_on_a_second_try(qtbot, reading_project, tmp_path):
    # `gui --reader Ben` with the clinic's database server down: once it was back and the project
    # opened (Enter in the project field), the admin was chosen, and Ben's PIN counted as the
    # admin's wrong try.
    from storage.database import sqlite_url

    add_reader_as_admin(reading_project.project.database, "Ben2", role="ophthalmologist", pin=PIN)
    reading_project.project.close()
    database = reading_project.folder / "octant.sqlite"
    away = tmp_path / "server-down.sqlite"
    database.rename(away)                    # the server cannot be reached: nothing at the URL
    dialog = SignInDialog(reading_project.folder, reader="Ben2", database_url=sqlite_url(database))
    qtbot.addWidget(dialog)
    assert dialog.readers.count() == 0 and dialog.message.text()
    away.rename(database)                    # back
    dialog._load_project()
    assert dialog.readers.currentItem().text().startswith("Ben2")
    dialog.pin.setText(PIN)
    dialog._sign_in()
    assert dialog.reader_id is not None
    dialog.project.close()
