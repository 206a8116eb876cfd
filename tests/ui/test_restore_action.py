"""File → Restore from backup…: an admin restores a backup from the workstation (checked, confirmed,
passphrase, off the GUI thread) and the project reopens in the sign-in dialog; a bad folder, a
"no", a wrong passphrase or a non-admin change nothing."""
from __future__ import annotations

from PySide6.QtWidgets import QFileDialog, QPushButton

from storage.audit import audit_events, verify
from storage.backup import backup_project
from storage.readers import get_reader, set_reader_active
from tests.conftest import ADMIN_PASSPHRASE
from tests.ui.admin_actions import answer
from ui.backup_actions import restore_from_backup
from ui.workstation import build_window, open_windows, release_window, reopening_dialogs


def file_menu_action(window, text):
    menu = window.menuBar().actions()[0].menu()
    return next((a for a in menu.actions() if a.text() == text), None)


def admin_window(qtbot, clinic, monkeypatch, confirm=True, passphrase=ADMIN_PASSPHRASE):
    window = build_window(clinic.project, clinic.readers["Admin"].id)
    qtbot.addWidget(window)
    answer(monkeypatch, window, texts=[passphrase])
    window.confirmations = []
    monkeypatch.setattr(window, "ask_yes", lambda title, sentence: window.confirmations.append(sentence) or confirm)
    return window


def backed_up_then_changed(clinic, folder):
    """A backup with Ben active, then Ben retired: a restore brings him back."""
    db, admin = clinic.project.database, clinic.readers["Admin"].id
    backup_project(db, clinic.folder, folder)
    set_reader_active(db, clinic.readers["Ben"].id, False, acting_reader_id=admin)
    return folder


def wait_for(qtbot, worker):
    qtbot.waitUntil(lambda: worker.has_ended and not worker.is_running, timeout=30000)


def test_restore_round_trip_reopens_the_project(qtbot, clinic, monkeypatch, tmp_path):
    source = backed_up_then_changed(clinic, tmp_path / "backup")
    window = admin_window(qtbot, clinic, monkeypatch)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args, **kwargs: str(source))
    file_menu_action(window, "Restore from backup…").trigger()
    assert "Checking the backup" in window.hint_label.text()   # the check runs behind the window
    qtbot.waitUntil(lambda: bool(reopening_dialogs()), timeout=30000)
    window.restore_worker.wait(5000)
    [sentence] = window.confirmations
    assert sentence.count(". ") == 0 and sentence.endswith("?")   # one sentence
    assert "keeping what it holds now in" in sentence and "reopening" in sentence
    assert str(clinic.folder / "backups") in sentence
    assert "passphrase for Admin" in window.asked[-1]
    assert not window.isVisible()
    dialog = reopening_dialogs()[0]
    assert dialog.message.text().startswith("Restored ✓") and dialog.isVisible()
    db = dialog.project.database
    assert get_reader(db, clinic.readers["Ben"].id).active            # the backup's state
    events = audit_events(db)
    assert events[-1].action == "restore_backup" and events[-1].reader_id == clinic.readers["Admin"].id
    assert verify(db).intact
    kept = list((clinic.folder / "backups").glob("before-restore-*"))
    assert len(kept) == 1 and (kept[0] / "octant.sqlite").is_file()
    # The admin signs in again against the restored database and gets a window.
    assert dialog.readers.currentItem().text().startswith("Admin")
    dialog.pin.setText(ADMIN_PASSPHRASE)
    dialog.sign_in_button.click()
    qtbot.waitUntil(lambda: not reopening_dialogs(), timeout=5000)
    [reopened] = open_windows()
    qtbot.addWidget(reopened)
    assert reopened.controller.reader.name == "Admin" and reopened.isVisible()
    release_window(reopened)
    reopened.close()
    reopened.controller.project.close()


def test_a_folder_that_is_not_a_backup_is_told_in_one_sentence(qtbot, clinic, monkeypatch, tmp_path):
    (tmp_path / "empty").mkdir()
    window = admin_window(qtbot, clinic, monkeypatch)
    wait_for(qtbot, restore_from_backup(window, str(tmp_path / "empty")))
    assert window.hint_label.text().startswith(f"{tmp_path / 'empty'} is not an Octant backup")
    assert window.confirmations == [] and window.isEnabled()
    assert not (clinic.folder / "backups").exists()


def test_a_damaged_backup_is_refused_and_the_project_unchanged(qtbot, clinic, monkeypatch, tmp_path):
    source = backed_up_then_changed(clinic, tmp_path / "backup")
    with open(source / "octant.sqlite", "r+b") as database:
        database.seek(200)
        database.write(b"\0damaged\0")
    window = admin_window(qtbot, clinic, monkeypatch)
    wait_for(qtbot, restore_from_backup(window, str(source)))
    assert "is damaged" in window.hint_label.text() and window.confirmations == []
    assert not get_reader(clinic.project.database, clinic.readers["Ben"].id).active


def test_no_or_a_wrong_passphrase_restores_nothing(qtbot, clinic, monkeypatch, tmp_path):
    source = backed_up_then_changed(clinic, tmp_path / "backup")
    declined = admin_window(qtbot, clinic, monkeypatch, confirm=False)
    wait_for(qtbot, restore_from_backup(declined, str(source)))
    assert declined.hint_label.text() == "Nothing was restored." and declined.asked == []   # no passphrase asked
    wrong = admin_window(qtbot, clinic, monkeypatch, passphrase="not the passphrase at all")
    wait_for(qtbot, restore_from_backup(wrong, str(source)))
    assert "not right for Admin" in wrong.hint_label.text()
    assert not get_reader(clinic.project.database, clinic.readers["Ben"].id).active
    assert not (clinic.folder / "backups").exists() and not reopening_dialogs()


def test_only_an_admin_restores(qtbot, clinic, monkeypatch, tmp_path):
    source = backed_up_then_changed(clinic, tmp_path / "backup")
    for who in ("Ana", "Rhea"):
        window = build_window(clinic.project, clinic.readers[who].id)
        qtbot.addWidget(window)
        assert file_menu_action(window, "Restore from backup…") is None
        assert restore_from_backup(window, str(source)) is None   # reached anyway: refused at once
        assert window.hint_label.text().startswith("Only an admin can do that")
    assert not get_reader(clinic.project.database, clinic.readers["Ben"].id).active


def test_the_training_and_review_windows_are_closed_first(qtbot, clinic, monkeypatch, tmp_path):
    source = backed_up_then_changed(clinic, tmp_path / "backup")
    window = admin_window(qtbot, clinic, monkeypatch)
    window.open_review()
    qtbot.addWidget(window.review_window)
    assert restore_from_backup(window, str(source)) is None
    assert window.hint_label.text() == "Close the training and review windows first, then restore."
    window.review_window.close()
    wait_for(qtbot, restore_from_backup(window, str(source)))
    qtbot.waitUntil(lambda: bool(reopening_dialogs()), timeout=30000)
    window.restore_worker.wait(5000)
    dialog = reopening_dialogs()[0]
    assert get_reader(dialog.project.database, clinic.readers["Ben"].id).active
    dialog.reject()
    qtbot.waitUntil(lambda: not reopening_dialogs(), timeout=5000)


def test_quit_and_sign_out_close_the_review_and_training_windows_too(qtbot, clinic, monkeypatch):
    """File → Quit (Ctrl+Q) with the review screen open left the application running, and after
    "Sign in as another reader" the review screen stayed open on the closed project."""
    window = admin_window(qtbot, clinic, monkeypatch)
    window.show()
    window.open_review()
    window.open_training()
    qtbot.addWidget(window.review_window)
    qtbot.addWidget(window.training_window)
    assert window.review_window.isVisible() and window.training_window.isVisible()
    file_menu_action(window, "Quit").trigger()
    assert not window.isVisible()
    assert not window.review_window.isVisible() and not window.training_window.isVisible()


def test_a_restore_shows_its_steps_and_cancel_leaves_the_project_as_it_was(qtbot, clinic, monkeypatch, tmp_path):
    import ui.backup_actions

    source = backed_up_then_changed(clinic, tmp_path / "backup")
    real = ui.backup_actions.restore_project

    def held_before_the_write(root, backup, reader_id, progress, cancel):
        def hold(sentence, fraction):   # the worker waits here until the admin has pressed Cancel
            progress(sentence, fraction)
            if sentence.startswith("Putting the backup in place"):
                cancel.wait(30)
        return real(root, backup, reader_id, progress=hold, cancel=cancel)

    monkeypatch.setattr(ui.backup_actions, "restore_project", held_before_the_write)
    window = admin_window(qtbot, clinic, monkeypatch)
    restore_from_backup(window, str(source))
    qtbot.waitUntil(lambda: getattr(window, "restore_progress", None) is not None, timeout=30000)
    dialog = window.restore_progress
    qtbot.waitUntil(lambda: dialog.labelText().startswith("Putting the backup in place"), timeout=30000)
    assert dialog.isVisible() and dialog.isEnabled() and not window.isEnabled() and dialog.value() >= 70
    dialog.findChild(QPushButton).click()                               # Cancel
    wait_for(qtbot, window.restore_worker)
    qtbot.waitUntil(window.isEnabled, timeout=5000)
    assert window.hint_label.text() == "The restore was cancelled; the project is exactly as it was."
    assert not dialog.isVisible() and not reopening_dialogs()
    assert not get_reader(clinic.project.database, clinic.readers["Ben"].id).active   # not the backup's state
    assert not (clinic.folder / "backups").exists() and not list(clinic.folder.glob(".restoring-*"))
    assert audit_events(clinic.project.database)[-1].action != "restore_backup"


def test_a_restore_waits_for_the_clicks_kept_for_a_busy_database_and_writes_nothing_stale_after(
        qtbot, clinic, monkeypatch, tmp_path):
    # The admin reads an image too; their clicks meet a database another program holds.
    import sqlite3

    from storage.assignment import add_read
    from storage.database import DATABASE_FILENAME
    from storage.reading import ReaderSession

    db, admin, image = clinic.project.database, clinic.readers["Admin"].id, clinic.image_ids[0]
    add_read(db, image, admin, acting_reader_id=admin)
    source = backed_up_then_changed(clinic, tmp_path / "backup")      # the admin's read: unanswered in it
    window = admin_window(qtbot, clinic, monkeypatch)
    assert window.controller.image.id == image
    other_program = sqlite3.connect(clinic.folder / DATABASE_FILENAME, isolation_level=None)
    kept_where = str(clinic.folder / "backups")
    waits = ("Your last clicks are not saved yet (the database is busy or out of reach): restore once the "
             f"status bar says Saved ✓, so that they are in the copy the restore keeps in {kept_where}.")
    try:
        other_program.execute("BEGIN IMMEDIATE")
        window.controller.set_comment("Seen by the admin")
        assert window.controller.kept_clicks() == 1
        assert restore_from_backup(window, str(source)) is None            # refused at once
        assert window.hint_label.text() == waits and window.confirmations == []
        other_program.execute("ROLLBACK")
        qtbot.waitUntil(lambda: window.controller.kept_clicks() == 0, timeout=10000)

        window.controller.set_ungradable(True)                            # answered, not done yet
        from ui import backup_actions
        signs_in = backup_actions.admin_signs_in

        def busy_after_the_passphrase(*args):   # the database busy again as the restore would start
            admin_id = signs_in(*args)
            other_program.execute("BEGIN IMMEDIATE")
            return admin_id

        monkeypatch.setattr(backup_actions, "admin_signs_in", busy_after_the_passphrase)
        wait_for(qtbot, restore_from_backup(window, str(source)))
        qtbot.waitUntil(lambda: window.hint_label.text() == waits, timeout=5000)   # the done mark is kept
        assert len(window.confirmations) == 1 and window.isEnabled() and not reopening_dialogs()
        other_program.execute("ROLLBACK")
        qtbot.waitUntil(lambda: window.controller.kept_clicks() == 0, timeout=10000)
        monkeypatch.setattr(backup_actions, "admin_signs_in", signs_in)
    finally:
        other_program.close()
    assert ReaderSession(db, admin).read(image).done                        # saved before any restore
    answer(monkeypatch, window, texts=[ADMIN_PASSPHRASE])
    wait_for(qtbot, restore_from_backup(window, str(source)))
    qtbot.waitUntil(lambda: bool(reopening_dialogs()), timeout=30000)
    window.restore_worker.wait(5000)
    assert not window.isVisible() and not (clinic.folder / "recovery").exists()
    restored = ReaderSession(reopening_dialogs()[0].project.database, admin).read(image)
    # As in the backup: the window's close marked nothing done from the answer the restore replaced.
    assert not restored.ungradable and not restored.done and restored.comment == ""
    [kept] = list((clinic.folder / "backups").glob("before-restore-*"))
    before = sqlite3.connect(kept / "octant.sqlite")
    try:   # the answer given before the restore is in the copy it kept, marked done as the reader left it
        assert before.execute("SELECT ungradable, done, comment FROM read WHERE reader_id = ? AND image_id = ?",
                              (admin, image)).fetchone() == (1, 1, "Seen by the admin")
    finally:
        before.close()


def test_the_window_closed_by_a_restore_marks_nothing_done_in_the_restored_database(
        qtbot, clinic, monkeypatch, tmp_path):
    # Its open image answered, not yet done: the done mark goes in before the restore, not after it
    # onto the restored (unanswered) read, which it would take out of the admin's queue.
    from storage.assignment import add_read
    from storage.reading import ReaderSession

    db, admin, image = clinic.project.database, clinic.readers["Admin"].id, clinic.image_ids[0]
    add_read(db, image, admin, acting_reader_id=admin)
    source = backed_up_then_changed(clinic, tmp_path / "backup")
    window = admin_window(qtbot, clinic, monkeypatch)
    window.controller.set_ungradable(True)
    wait_for(qtbot, restore_from_backup(window, str(source)))
    qtbot.waitUntil(lambda: bool(reopening_dialogs()), timeout=30000)
    window.restore_worker.wait(5000)
    restored = ReaderSession(reopening_dialogs()[0].project.database, admin).read(image)
    assert not restored.ungradable and not restored.done
