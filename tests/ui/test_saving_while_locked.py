"""A save that finds the project database locked by another program (it holds SQLite's write
lock: BEGIN IMMEDIATE on its own connection) never freezes the window and never loses a click:
the click is kept ("Saving…"), the window goes on processing events, and the click is saved in
order once the lock is let go; closing meanwhile asks, and a close now keeps them in the
project's recovery file for the next sign-in (and names them in the log)."""
from __future__ import annotations

import sqlite3

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from storage.database import DATABASE_FILENAME
from storage.reading import ReaderSession
from tests.ui.conftest import DISC, FOVEA
from tests.ui.driving import click_photo, landmarks_placed, open_window, press
from ui.app import data_dir

FINDING = "haemorrhage"


@pytest.fixture
def other_program(reading_project):
    """Another program's connection to the project database; ``BEGIN IMMEDIATE`` takes the lock.
    Ana has placed disc and fovea on her images already (regions are refused before them)."""
    landmarks_placed(reading_project.project, reading_project.readers["Ana"].id)
    connection = sqlite3.connect(reading_project.folder / DATABASE_FILENAME, isolation_level=None)
    yield connection
    if connection.in_transaction:
        connection.execute("ROLLBACK")
    connection.close()


def stored_regions(reading_project, image_id: int):
    session = ReaderSession(reading_project.project.database, reading_project.readers["Ana"].id)
    return session.read(image_id).regions.get(FINDING, frozenset())


def events_are_processed(qtbot) -> None:
    ticks: list[int] = []
    QTimer.singleShot(0, lambda: ticks.append(1))
    qtbot.waitUntil(lambda: ticks == [1], timeout=5000)


def test_clicks_on_a_locked_database_are_kept_and_saved_in_order_once_it_is_free(
        qtbot, reading_project, other_program):
    window = open_window(qtbot, reading_project.project, reading_project.readers["Ana"].id)
    c, image = window.controller, window.controller.image.id
    press(qtbot, window, "h")
    other_program.execute("BEGIN IMMEDIATE")
    press(qtbot, window, "1", "2")
    assert c.kept_clicks() == 2
    assert window.saved_label.text().startswith("Saving… 2 clicks kept")
    events_are_processed(qtbot)
    assert stored_regions(reading_project, image) == frozenset()       # nothing half-saved
    press(qtbot, window, "Space")                                        # moving on waits for them
    assert c.image.id == image and "not saved yet" in window.hint_label.text()
    other_row = window.queue_panel.list.item(2)
    window.queue_panel.list.setCurrentItem(other_row)
    window.queue_panel.imageChosen.emit(other_row.data(256))             # a click on another row of the queue
    assert c.image.id == image and window.queue_panel.list.currentItem().data(256) == image
    press(qtbot, window, "3")                                            # after them, in order
    assert c.kept_clicks() == 3
    other_program.execute("ROLLBACK")
    qtbot.waitUntil(lambda: c.kept_clicks() == 0, timeout=10000)
    assert window.saved_label.text().startswith("Saved ✓")
    assert "not saved yet" not in window.hint_label.text()              # the wait it asked for is over
    assert stored_regions(reading_project, image) == {1, 2, 3}
    assert c.state.regions[FINDING] == {1, 2, 3}
    press(qtbot, window, "Ctrl+Z")                                       # the kept clicks undo as any
    assert stored_regions(reading_project, image) == {1, 2}


def test_a_disc_and_fovea_placed_while_the_database_is_locked_let_regions_follow_them(
        qtbot, reading_project, other_program):
    ana = reading_project.readers["Ana"].id
    first = ReaderSession(reading_project.project.database, ana).queue()[0].id
    ReaderSession(reading_project.project.database, ana).clear_landmarks(first)
    window = open_window(qtbot, reading_project.project, ana)
    c = window.controller
    assert c.image.id == first and window.canvas.placing == "disc"
    press(qtbot, window, "h")
    other_program.execute("BEGIN IMMEDIATE")
    click_photo(qtbot, window, *DISC)
    click_photo(qtbot, window, *FOVEA)                                  # kept, not saved yet
    press(qtbot, window, "4")                                            # follows them, not refused
    assert c.kept_clicks() == 2 and not window.hint_label.text().startswith("Regions need")
    other_program.execute("ROLLBACK")
    qtbot.waitUntil(lambda: c.kept_clicks() == 0, timeout=10000)
    stored = ReaderSession(reading_project.project.database, ana).read(first)
    assert stored.regions == {FINDING: frozenset({4})} and stored.landmarks.source == "manual"


def a_kept_click(qtbot, reading_project, other_program, region: str):
    """Ana marks a haemorrhage in ``region`` while another program holds the write lock; returns her
    window and the image."""
    window = open_window(qtbot, reading_project.project, reading_project.readers["Ana"].id)
    image = window.controller.image.id
    press(qtbot, window, "h")
    other_program.execute("BEGIN IMMEDIATE")
    press(qtbot, window, region)
    return window, image


def closing_with_a_kept_click(qtbot, reading_project, other_program, region: str):
    """Ana marks a haemorrhage in ``region`` while another program holds the write lock, then closes
    the window, which refuses and asks; returns the window, the image and the question."""
    window, image = a_kept_click(qtbot, reading_project, other_program, region)
    assert not window.close()
    return window, image, window.findChild(QMessageBox, "keptClicksQuestion")


def test_closing_with_a_kept_click_asks_and_closes_once_it_is_saved(qtbot, reading_project, other_program):
    window, image, question = closing_with_a_kept_click(qtbot, reading_project, other_program, "4")
    assert window.isVisible()
    assert question is not None and "not saved yet" in question.text()
    question.reject()                                                    # Keep waiting
    other_program.execute("ROLLBACK")
    qtbot.waitUntil(lambda: window.controller.kept_clicks() == 0, timeout=10000)
    assert window.close()
    assert stored_regions(reading_project, image) == {4}
    ana = ReaderSession(reading_project.project.database, reading_project.readers["Ana"].id)
    assert ana.read(image).done   # answered by the kept click: done as the window closed, as any


def test_closing_now_keeps_the_clicks_for_the_next_sign_in_which_saves_them(qtbot, reading_project, other_program):
    from storage.click_recovery import recovery_files
    from ui.main_window import CLOSE_KEEPING_CLICKS

    ana = reading_project.readers["Ana"].id
    window, image, question = closing_with_a_kept_click(qtbot, reading_project, other_program, "5")
    recovery = reading_project.folder / "recovery"
    assert f"or close now: it is kept in {recovery} and saved when you next sign in." in question.text()
    close_now = next(button for button in question.buttons() if button.text() == CLOSE_KEEPING_CLICKS)
    assert CLOSE_KEEPING_CLICKS == "Close; save them at my next sign-in"     # the choice says what happens
    close_now.click()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=5000)
    assert window.controller.saves.writer.has_ended
    [path] = recovery_files(reading_project.folder, ana)
    line = (data_dir() / "octant.log").read_text()
    assert line.count("Not saved") == 1 and f"image {image}: Haemorrhage: region 5" in line
    assert f"Written to {path}: saved at Ana's next sign-in." in line
    QApplication.processEvents()
    other_program.execute("ROLLBACK")
    again = open_window(qtbot, reading_project.project, ana)
    assert stored_regions(reading_project, image) == {5} and recovery_files(reading_project.folder, ana) == []
    assert again.hint_label.text().endswith(") is saved now.")


def test_closing_now_where_the_clicks_cannot_be_kept_leaves_the_window_open_saving_them(
        qtbot, reading_project, other_program, monkeypatch):
    # A full disk: the recovery file cannot be written, so the window stays and the writer goes on.
    from ui import save_queue

    def disk_full(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(save_queue, "write_recovery_file", disk_full)
    window, image, question = closing_with_a_kept_click(qtbot, reading_project, other_program, "6")
    assert not window.close_keeping_clicks_for_next_sign_in()
    assert window.isVisible() and window.controller.kept_clicks() == 1
    assert window.hint_label.text() == (
        "Your clicks not saved yet could not be kept for your next sign-in (No space left on device): the window "
        "stays open and Octant keeps trying to save them; close once the status bar says Saved ✓.")
    assert "could not be written to the recovery file" in (data_dir() / "octant.log").read_text()
    other_program.execute("ROLLBACK")
    qtbot.waitUntil(lambda: window.controller.kept_clicks() == 0, timeout=10000)
    assert stored_regions(reading_project, image) == {6}
    assert window.close()                                                # nothing kept: it closes at once
    QApplication.processEvents()


def test_signing_out_with_a_kept_click_is_refused_until_it_is_saved(qtbot, reading_project, other_program,
                                                                   monkeypatch):
    from ui import workstation

    asked: list[object] = []
    monkeypatch.setattr(workstation, "_ask_sign_in", lambda *args, **_options: asked.append(args))   # Cancel
    window = open_window(qtbot, reading_project.project, reading_project.readers["Ana"].id)
    press(qtbot, window, "h")
    other_program.execute("BEGIN IMMEDIATE")
    press(qtbot, window, "6")
    workstation._sign_out(window)
    assert asked == [] and window.isVisible() and "sign out once" in window.hint_label.text()
    other_program.execute("ROLLBACK")
    qtbot.waitUntil(lambda: window.controller.kept_clicks() == 0, timeout=10000)
    workstation._sign_out(window)
    assert len(asked) == 1 and window.isVisible()    # the dialog asked; cancelled, the window is back


class LoggingOut:
    """What a logout's SIGTERM reaches (``ui.app.end_on_signal``): the windows close, then the quit."""

    def __init__(self, *windows) -> None:
        self.windows, self.quit_asked = windows, False

    def closeAllWindows(self) -> None:
        for window in self.windows:
            window.close()

    def quit(self) -> None:
        self.quit_asked = True


@pytest.fixture
def on_signal(monkeypatch):
    """``end_on_signal`` for a test: its "ending" mark is put back afterwards."""
    from ui import app

    monkeypatch.setattr(app, "_ending_on_signal", False)
    return app.end_on_signal


def test_a_logout_writes_the_kept_click_to_the_recovery_file_and_the_next_sign_in_saves_it(
        qtbot, reading_project, other_program, on_signal, monkeypatch):
    from storage.click_recovery import recovery_files
    from ui import app, main_window

    monkeypatch.setattr(main_window, "LAST_TRY_MS", 100)   # the database stays locked: the last try fails
    ana = reading_project.readers["Ana"].id
    window, image = a_kept_click(qtbot, reading_project, other_program, "5")
    assert window.controller.kept_clicks() == 1
    logout = LoggingOut(window)
    on_signal(logout)
    assert logout.quit_asked and not window.isVisible()                  # nobody there to answer a question
    assert window.findChild(QMessageBox, "keptClicksQuestion") is None
    [path] = recovery_files(reading_project.folder, ana)
    assert window.controller.saves.recovery_file == path
    line = (data_dir() / "octant.log").read_text()
    assert f"image {image}: Haemorrhage: region 5" in line and f"Written to {path}" in line
    assert stored_regions(reading_project, image) == frozenset()
    other_program.execute("ROLLBACK")
    monkeypatch.setattr(app, "_ending_on_signal", False)                 # the next start
    again = open_window(qtbot, reading_project.project, ana)
    assert stored_regions(reading_project, image) == {5} and not path.exists()
    said = again.hint_label.text()
    assert said.startswith("1 click not saved when Octant was stopped (") and said.endswith(") is saved now.")
    [box] = [box for box in again.findChildren(QMessageBox) if box.text() == said]
    assert box.icon() == QMessageBox.Icon.Information                     # good news, not a warning
    assert again.controller.state.regions == {FINDING: {5}}              # the queue opened after it was saved


def test_a_logout_gives_the_kept_clicks_a_last_try_before_anything_is_written(
        qtbot, reading_project, other_program, on_signal):
    from storage.click_recovery import recovery_files

    ana = reading_project.readers["Ana"].id
    window, image = a_kept_click(qtbot, reading_project, other_program, "6")
    assert window.controller.kept_clicks() == 1
    other_program.execute("ROLLBACK")        # free again as the logout comes: its last try saves the click
    on_signal(LoggingOut(window))
    assert stored_regions(reading_project, image) == {6}
    assert recovery_files(reading_project.folder, ana) == [] and window.controller.saves.recovery_file is None


def test_a_quit_that_cannot_wait_writes_the_kept_clicks_to_the_recovery_file(qtbot, reading_project, other_program):
    # The application quits with the window still open (its background work stopped at aboutToQuit):
    # the writer, stopped, writes what it kept for the next sign-in.
    from storage.click_recovery import recovery_files
    from ui.background import stop_all_background_work

    ana = reading_project.readers["Ana"].id
    window, _image = a_kept_click(qtbot, reading_project, other_program, "7")
    stop_all_background_work()
    [path] = recovery_files(reading_project.folder, ana)
    assert "Haemorrhage: region 7" in path.read_text() and window.controller.saves.recovery_file == path
    window.close_keeping_clicks_for_next_sign_in()
    assert recovery_files(reading_project.folder, ana) == [path]          # written once, kept


def test_a_recovery_folder_that_cannot_be_changed_is_said_at_sign_in_and_its_clicks_kept(
        qtbot, reading_project, other_program, monkeypatch):
    import os

    from storage.click_recovery import ReaderStep, UnsavedClick, recovery_files, write_recovery_file

    ana = reading_project.readers["Ana"].id
    image = ReaderSession(reading_project.project.database, ana).queue()[0].id
    path = write_recovery_file(reading_project.folder, ana, "Ana", [UnsavedClick(
        "Haemorrhage: region 3", image, ReaderStep("toggle_region", dict(finding_code=FINDING, region=3)))])
    rename = os.rename

    def refused_in_the_recovery_folder(source, target, *args, **kwargs):
        if "recovery" in str(source):
            raise PermissionError(13, "Permission denied")
        return rename(source, target, *args, **kwargs)

    monkeypatch.setattr(os, "rename", refused_in_the_recovery_folder)
    window = open_window(qtbot, reading_project.project, ana)
    assert window.hint_label.text() == ("Clicks not saved when Octant was stopped could not be saved now "
                                        f"(Permission denied); they are kept in {path.parent}.")
    assert recovery_files(reading_project.folder, ana) == [path] and stored_regions(reading_project, image) == frozenset()


@pytest.fixture
def server_down(monkeypatch):
    """The database server out of reach while ``down`` is set: every transaction and read raises
    what ``translated_errors`` makes of a stopped PostgreSQL server or a dropped network."""
    from contextlib import contextmanager

    from storage.database import Database
    from storage.errors import DatabaseUnreachableError
    from storage.postgresql import UNREACHABLE

    state = {"down": False}
    for name in ("transaction", "reading"):
        real = getattr(Database, name).__wrapped__

        def unreachable_when_down(self, *args, _real=real, **options):
            if state["down"]:
                raise DatabaseUnreachableError(UNREACHABLE)
            yield from _real(self, *args, **options)

        monkeypatch.setattr(Database, name, contextmanager(unreachable_when_down))
    return state


def test_clicks_while_the_server_cannot_be_reached_are_kept_and_saved_once_it_answers(
        qtbot, reading_project, server_down):
    # A PostgreSQL server stopped for 20 s: each click got a box ("cannot be reached") and was lost.
    landmarks_placed(reading_project.project, reading_project.readers["Ana"].id)
    window = open_window(qtbot, reading_project.project, reading_project.readers["Ana"].id)
    c, image = window.controller, window.controller.image.id
    press(qtbot, window, "h")
    server_down["down"] = True
    press(qtbot, window, "1", "5")
    assert c.kept_clicks() == 2
    assert window.saved_label.text() == "Saving… 2 clicks kept: the database server cannot be reached; tried again until it answers"
    events_are_processed(qtbot)
    assert not [box for box in window.findChildren(QMessageBox) if box.isVisible()]
    press(qtbot, window, "Space")                                        # moving on waits for them
    assert c.image.id == image and "not saved yet" in window.hint_label.text()
    server_down["down"] = False
    qtbot.waitUntil(lambda: c.kept_clicks() == 0, timeout=10000)
    assert window.saved_label.text().startswith("Saved ✓")
    assert stored_regions(reading_project, image) == {1, 5}
