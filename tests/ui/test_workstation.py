"""Opening the workstation from the command line's reader; refusing landmarks with no regions."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QPointF

from storage.reading import ReaderSession
from tests.ui.conftest import DISC
from tests.ui.driving import open_window
from ui.workstation import open_workstation, release_window


def test_project_and_reader_from_the_command_line_skip_the_dialog(qtbot, reading_project):
    window = open_workstation(reading_project.folder, "Ben")
    qtbot.addWidget(window)
    try:
        assert window.isVisible()
        assert window.controller.reader.name == "Ben"
        assert window.controller.image is not None
    finally:
        release_window(window)
        window.close()
        window.controller.project.close()


def sign_in_dialog_cancelled(monkeypatch) -> list[str]:
    """The sign-in dialog, when it opens, is read (its message line) and cancelled by the user."""
    from ui import workstation

    said: list[str] = []

    def cancel(dialog):
        said.append(dialog.message.text())
        dialog.reject()
        return 0

    monkeypatch.setattr(workstation.SignInDialog, "exec", cancel)
    return said


def test_a_retired_reader_named_on_the_command_line_is_told_and_not_signed_in(qtbot, reading_project, monkeypatch):
    from storage.readers import set_reader_active

    set_reader_active(reading_project.project.database, reading_project.readers["Ben"].id, False,
                      acting_reader_id=reading_project.readers["Admin"].id)
    said = sign_in_dialog_cancelled(monkeypatch)
    assert open_workstation(reading_project.folder, "Ben") is None
    assert len(said) == 1 and "Ben is retired" in said[0]


def test_a_reader_name_the_project_lacks_is_said_in_the_sign_in_dialog(qtbot, reading_project, monkeypatch):
    said = sign_in_dialog_cancelled(monkeypatch)
    assert open_workstation(reading_project.folder, "Dr Nobody") is None
    assert len(said) == 1 and "no reader called 'Dr Nobody'" in said[0]


def test_first_reader_of_a_project(qtbot, reading_project):
    window = open_workstation(reading_project.folder, first_reader=True)
    qtbot.addWidget(window)
    try:
        assert window.controller.reader.name == "Ana"
    finally:
        release_window(window)
        window.close()
        window.controller.project.close()


def test_a_fovea_on_top_of_the_disc_is_refused_and_nothing_is_saved(qtbot, reading_project):
    project, ana = reading_project.project, reading_project.readers["Ana"]
    window = open_window(qtbot, project, ana.id)
    image_id = window.controller.image.id
    window.canvas.click_at(QPointF(*DISC))
    window.canvas.click_at(QPointF(DISC[0] + 1, DISC[1]))  # 1 px away: no eight regions
    assert "fovea" in window.hint_label.text()
    assert window.canvas.placing == "fovea" and window.canvas.disc_marker.isVisible()
    assert ReaderSession(project.database, ana.id).read(image_id).landmarks is None


def test_the_workstation_opens_where_the_model_is_least_sure_in_the_model_reading_order(qtbot, reading_project):
    from tests.ui.conftest import order_by_the_model

    expected = order_by_the_model(reading_project)
    window = open_workstation(reading_project.folder, "Ben")
    qtbot.addWidget(window)
    try:
        qtbot.waitUntil(lambda: window.controller.image is not None, timeout=10000)   # ordered off the GUI thread
        assert window.controller.image.id == expected[0]
        shown = window.queue_panel.list
        assert [shown.item(n).data(256) for n in range(shown.count())] == expected
        assert [shown.item(n).text().split()[0] for n in range(shown.count())] == ["1", "2", "3"]  # no score shown
    finally:
        release_window(window)
        window.close()
        window.controller.project.close()


def test_cancelling_sign_in_as_another_reader_brings_the_window_back(qtbot, reading_project, monkeypatch):
    # Esc in the dialog quit Octant: the window had been closed before it asked.
    from PySide6.QtWidgets import QApplication

    from ui import workstation

    window = open_workstation(reading_project.folder, "Ben")
    qtbot.addWidget(window)
    seen: list[bool] = []

    def cancel(dialog):
        seen.append(window.isVisible())    # hidden meanwhile: the next person does not see Ben's labels
        dialog.reject()
        return 0

    monkeypatch.setattr(workstation.SignInDialog, "exec", cancel)
    try:
        window.signOutRequested.emit()
        assert seen == [False]
        assert window.isVisible() and window.controller.reader.name == "Ben"
        assert window.controller.image is not None                  # its project still open
        assert QApplication.instance().quitOnLastWindowClosed()
    finally:
        release_window(window)
        window.close()
        window.controller.project.close()


def _project_in_a_database_of_its_own(tmp_path):
    """A project whose folder holds no database: it lives at a URL, as a clinic's PostgreSQL does
    (here another SQLite file, so the test needs no server); Ben has a PIN to type."""
    from storage.database import sqlite_url
    from storage.project import create_project
    from tests.conftest import add_reader_as_admin, make_admin

    url = sqlite_url(tmp_path / "server" / "clinic.sqlite")
    (tmp_path / "server").mkdir()
    with create_project(tmp_path / "folder", database_url=url) as project:
        make_admin(project.database)
        add_reader_as_admin(project.database, "Ben", role="ophthalmologist", pin="246810")
    return tmp_path / "folder", url


def signing_in_with_the_dialog(monkeypatch, name: str, pin: str) -> list[str]:
    """The sign-in dialog, when it opens, has ``name`` chosen and ``pin`` typed, then Sign in."""
    from ui import workstation

    listed: list[str] = []

    def sign_in(dialog):
        listed.extend(dialog.readers.item(n).text().split("  ·")[0] for n in range(dialog.readers.count()))
        dialog.select_reader(name)
        dialog.pin.setText(pin)
        dialog._sign_in()
        return dialog.result()

    monkeypatch.setattr(workstation.SignInDialog, "exec", sign_in)
    return listed


def test_a_reader_with_a_pin_signs_in_to_the_database_of_the_command_line(qtbot, tmp_path, monkeypatch):
    # `gui --project DIR --database-url URL --reader NAME` for a reader with a PIN (every reader of a
    # clinic on PostgreSQL) opened the dialog on DIR's own file: no readers listed, nobody could sign in.
    folder, url = _project_in_a_database_of_its_own(tmp_path)
    listed = signing_in_with_the_dialog(monkeypatch, "Ben", "246810")
    window = open_workstation(folder, "Ben", database_url=url)
    assert listed == ["Admin", "Ben"]
    assert window is not None
    qtbot.addWidget(window)
    try:
        assert window.controller.reader.name == "Ben"
        assert window.controller.project.database_url() == url
    finally:
        release_window(window)
        window.close()
        window.controller.project.close()


def test_sign_in_as_another_reader_stays_on_the_same_database(qtbot, tmp_path, monkeypatch):
    from storage.project import open_project
    from storage.readers import find_reader
    from ui import workstation

    folder, url = _project_in_a_database_of_its_own(tmp_path)
    with open_project(folder, database_url=url) as project:
        ben = find_reader(project.database, "Ben")
    listed = signing_in_with_the_dialog(monkeypatch, "Ben", "246810")
    window = open_workstation(folder, "Ben", database_url=url)
    qtbot.addWidget(window)
    listed.clear()
    try:
        workstation._sign_out(window)          # File → Sign in as another reader…, Ben again
        assert listed == ["Admin", "Ben"]
        current = workstation.open_windows()[-1]
        qtbot.addWidget(current)
        assert current.controller.reader.id == ben.id
        assert current.controller.project.database_url() == url
    finally:
        for open_window_ in workstation.open_windows():
            release_window(open_window_)
            open_window_.close()
            open_window_.controller.project.close()


def test_a_sqlite_project_in_a_network_folder_is_told_it_is_safe_for_one_workstation_at_a_time(
        qtbot, reading_project, monkeypatch):
    # Two computers opening one octant.sqlite on a share (the write-ahead log's index lives in one
    # computer's memory) can damage it; nothing said so.
    from ui import workstation

    seen: list[Path] = []
    monkeypatch.setattr(workstation, "network_filesystem", lambda path: seen.append(path) or "cifs")
    window = open_workstation(reading_project.folder, "Ben")
    qtbot.addWidget(window)
    try:
        assert seen == [(reading_project.folder / "octant.sqlite").resolve()]
        assert window.hint_label.text().startswith("This project's database is in a network folder (cifs): "
                                                   "one workstation at a time is safe")
    finally:
        release_window(window)
        window.close()
        window.controller.project.close()
