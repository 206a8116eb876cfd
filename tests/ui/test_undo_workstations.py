"""Undo, redo and accepting suggestions are compare-and-set: the same reader signed in on two
workstations never has one erase what the other saved; the reader is told why, in the status bar."""
from __future__ import annotations

from PySide6.QtWidgets import QMessageBox

from storage.project import open_project
from storage.reading import ReaderSession
from tests.ui.driving import landmarks_placed, open_window, press
from ui.assist import ModelSuggestion


def second_workstation(reading_project, reader_id: int):
    other = open_project(reading_project.folder)
    return other, ReaderSession(other.database, reader_id)


def test_undo_on_one_workstation_keeps_what_the_other_saved(qtbot, reading_project):
    project, ana = reading_project.project, reading_project.readers["Ana"]
    landmarks_placed(project, ana.id)
    window = open_window(qtbot, project, ana.id)
    image_id = window.controller.image.id
    other, two = second_workstation(reading_project, ana.id)
    try:
        press(qtbot, window, "h", "2")                                  # haemorrhage on workstation 1
        two.set_regions(image_id, "drusen", {5})                        # drusen on workstation 2
        stored = two.read(image_id)
        press(qtbot, window, "Ctrl+Z")                                  # undo on workstation 1
        assert two.read(image_id) == stored                             # nothing erased
        assert stored.regions == {"haemorrhage": frozenset({2}), "drusen": frozenset({5})}
        assert "another workstation" in window.hint_label.text()        # told why, in the status bar
        assert not any(b.isVisible() for b in window.findChildren(QMessageBox))
        assert window.controller.state == stored                        # and shown what is stored
        # the entry was not used up: once the other workstation's drusen is gone again, undo works
        two.set_regions(image_id, "drusen", set())
        window.controller.open_image(image_id)
        press(qtbot, window, "Ctrl+Z")
        assert two.read(image_id).regions == {}
    finally:
        other.close()


def test_redo_and_accepting_suggestions_check_the_stored_answer_too(qtbot, reading_project):
    project, ana = reading_project.project, reading_project.readers["Ana"]
    landmarks_placed(project, ana.id)
    window = open_window(qtbot, project, ana.id)
    controller = window.controller
    image_id = controller.image.id
    other, two = second_workstation(reading_project, ana.id)
    try:
        controller.select_finding("haemorrhage")
        controller.toggle_region(3)
        controller.undo()
        two.set_regions(image_id, "drusen", {1})
        controller.redo()                                               # would erase drusen
        assert two.read(image_id).regions == {"drusen": frozenset({1})}
        assert "another workstation" in window.hint_label.text()
        controller.suggestion = ModelSuggestion({"haemorrhage": frozenset({4})})
        two.set_regions(image_id, "membrane", {6})                      # not seen on workstation 1
        assert not controller.accept_suggestions()
        assert two.read(image_id).regions == {"drusen": frozenset({1}), "membrane": frozenset({6})}
        controller.suggestion = ModelSuggestion({"haemorrhage": frozenset({4})})
        assert controller.accept_suggestions()                          # now it shows what is stored
        assert two.read(image_id).regions == {"drusen": frozenset({1}), "membrane": frozenset({6}),
                                              "haemorrhage": frozenset({4})}
    finally:
        other.close()
