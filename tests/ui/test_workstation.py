"""Opening the workstation from the command line's reader; refusing landmarks with no regions."""
from __future__ import annotations

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
