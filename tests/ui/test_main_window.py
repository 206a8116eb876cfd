"""A reader at the workstation: keys and clicks in, exactly that in the database."""
from __future__ import annotations

import pytest

from storage.reading import ReaderSession
from tests.ui.conftest import DISC, FOVEA
from tests.ui.driving import click_photo, landmarks_placed, next_image, open_window, press

# Points well inside two regions for the landmarks of conftest (disc left, fovea right).
IN_MACULA = (FOVEA[0] + 25, FOVEA[1] - 10)      # region 1 (clear of the marker)
IN_SUPEROTEMPORAL = (125.0, 40.0)               # region 5 (above the axis, between the lines)


@pytest.fixture
def no_review_session(monkeypatch):
    """The workstation must never ask for other readers' labels (blind reading)."""
    import storage.review

    def refuse(*args, **kwargs):
        raise AssertionError("the reading workstation used a review path")

    monkeypatch.setattr(storage.review.ReviewSession, "__init__", refuse)
    monkeypatch.setattr(ReaderSession, "labels_of", refuse)


def place_landmarks(qtbot, window) -> None:
    click_photo(qtbot, window, *DISC)
    click_photo(qtbot, window, *FOVEA)


def test_three_images_by_keys_and_clicks_are_stored_exactly(qtbot, reading_project,
                                                              no_review_session):
    project, ana = reading_project.project, reading_project.readers["Ana"]
    window = open_window(qtbot, project, ana.id)
    first, second, third = ReaderSession(project.database, ana.id).queue()
    assert window.controller.image.id == first.id
    assert window.queue_panel.progress_label.text() == "0 / 3 done"

    # Image 1: landmarks by two clicks; haemorrhage in the macula (click) and region 5 (key).
    place_landmarks(qtbot, window)
    press(qtbot, window, "h")
    click_photo(qtbot, window, *IN_MACULA)
    press(qtbot, window, "5")
    assert window.saved_label.text().startswith("Saved ✓")
    assert window.answer_panel.rows["haemorrhage"].regions.text() == "1 5"
    next_image(qtbot, window, "Space")
    assert window.controller.image.id == second.id

    # Image 2: normal, one key.
    next_image(qtbot, window, "N")
    assert window.controller.image.id == third.id
    assert window.queue_panel.progress_label.text() == "2 / 3 done"

    # Image 3: hard exudate in region 3 by key, a diagnosis, a comment; then Enter.
    place_landmarks(qtbot, window)
    press(qtbot, window, "e", "3")
    window.answer_panel.diagnosis.activated.emit(2)  # "mild NPDR"
    qtbot.keyClicks(window.answer_panel.comment, "check in 6 months")
    window.canvas.setFocus()
    press(qtbot, window, "Return")  # the comment is saved to this image before moving on
    assert window.queue_panel.progress_label.text() == "3 / 3 done"

    reads = {image.id: ReaderSession(project.database, ana.id).read(image.id)
             for image in (first, second, third)}
    one, two, three = reads[first.id], reads[second.id], reads[third.id]
    assert one.regions == {"haemorrhage": frozenset({1, 5})}
    assert (one.normal, one.ungradable, one.diagnosis, one.comment, one.done) == \
        (False, False, None, "", True)
    assert one.landmarks.source == "manual"
    assert one.landmarks.disc == pytest.approx(DISC, abs=2.0)
    assert one.landmarks.fovea == pytest.approx(FOVEA, abs=2.0)
    assert two.regions == {} and two.normal and two.done and two.landmarks is None
    assert three.regions == {"hard_exudate": frozenset({3})}
    assert (three.normal, three.diagnosis, three.comment, three.done) == \
        (False, "mild NPDR", "check in 6 months", True)


def test_undo_and_redo_within_an_image_are_saved(qtbot, reading_project):
    project, ana = reading_project.project, reading_project.readers["Ana"]
    window = open_window(qtbot, project, ana.id)
    image_id = window.controller.image.id
    session = ReaderSession(project.database, ana.id)
    place_landmarks(qtbot, window)
    press(qtbot, window, "h", "1", "4")
    assert session.read(image_id).regions == {"haemorrhage": frozenset({1, 4})}
    press(qtbot, window, "Ctrl+Z")
    assert session.read(image_id).regions == {"haemorrhage": frozenset({1})}
    press(qtbot, window, "Ctrl+Z")
    assert session.read(image_id).regions == {}
    press(qtbot, window, "Ctrl+Shift+Z")
    assert session.read(image_id).regions == {"haemorrhage": frozenset({1})}
    assert window.saved_label.text().startswith("Saved ✓")
    # "Normal" clears the finding; undo brings it back and withdraws "normal".
    window.controller.mark_normal()
    assert session.read(image_id).normal and session.read(image_id).regions == {}
    press(qtbot, window, "Ctrl+Z")
    state = session.read(image_id)
    assert not state.normal and state.regions == {"haemorrhage": frozenset({1})}
    assert window.answer_panel.rows["haemorrhage"].regions.text() == "1"
    # Back to the start: the first placement of the landmarks is undone too.
    for _ in range(3):
        press(qtbot, window, "Ctrl+Z")
    state = session.read(image_id)
    assert state.regions == {} and state.landmarks is None
    assert window.canvas.placing == "disc" and not window.canvas.disc_marker.isVisible()


def test_one_finding_in_one_region_takes_three_actions(qtbot, reading_project):
    project, ana = reading_project.project, reading_project.readers["Ana"]
    session = ReaderSession(project.database, ana.id)
    first = session.queue()[0]
    session.set_landmarks(first.id, DISC, FOVEA)
    window = open_window(qtbot, project, ana.id)
    press(qtbot, window, "m")                     # 1: the finding
    click_photo(qtbot, window, *IN_SUPEROTEMPORAL)  # 2: the region
    next_image(qtbot, window, "Space")            # 3: next
    state = session.read(first.id)
    assert state.regions == {"microaneurysm": frozenset({5})} and state.done


def test_n_on_marked_findings_asks_once_before_clearing_them(qtbot, reading_project):
    project, ana = reading_project.project, reading_project.readers["Ana"]
    session = ReaderSession(project.database, ana.id)
    first, second = session.queue()[:2]
    session.set_landmarks(first.id, DISC, FOVEA)
    window = open_window(qtbot, project, ana.id)
    press(qtbot, window, "h", "1", "5")
    press(qtbot, window, "N")                     # a stray N: nothing cleared, the reader is asked
    assert window.controller.image.id == first.id
    assert session.read(first.id).regions == {"haemorrhage": frozenset({1, 5})}
    assert "press N again" in window.hint_label.text() and "haemorrhage 1 5" in window.hint_label.text()
    next_image(qtbot, window, "N")                # meant: normal, findings cleared, next image
    state = session.read(first.id)
    assert state.normal and not state.regions and state.done
    assert window.controller.image.id == second.id



def test_n_asks_again_after_anything_else_the_reader_did(qtbot, reading_project):
    """N's question is withdrawn by the next other action: a stray N much later (here after a
    further finding was marked) must ask again, not clear both findings at once."""
    project, ana = reading_project.project, reading_project.readers["Ana"]
    session = ReaderSession(project.database, ana.id)
    first = session.queue()[0]
    session.set_landmarks(first.id, DISC, FOVEA)
    window = open_window(qtbot, project, ana.id)
    press(qtbot, window, "h", "1", "N")           # asked once
    press(qtbot, window, "Escape")                # the reader goes on reading instead
    assert "press N again" not in window.hint_label.text()
    press(qtbot, window, "m", "4")
    press(qtbot, window, "N")                     # a stray N: asks again, clears nothing
    assert window.controller.image.id == first.id
    assert session.read(first.id).regions == {"haemorrhage": frozenset({1}), "microaneurysm": frozenset({4})}
    assert "haemorrhage 1; microaneurysm 4" in window.hint_label.text()
    press(qtbot, window, "U", "U")                # ungradable on and off: withdrawn again
    press(qtbot, window, "N")
    assert session.read(first.id).regions and not session.read(first.id).normal

def test_second_reader_sees_nothing_of_the_first(qtbot, reading_project, no_review_session):
    project = reading_project.project
    ana, ben = reading_project.readers["Ana"], reading_project.readers["Ben"]
    ana_session = ReaderSession(project.database, ana.id)
    image = ana_session.queue()[0]
    ana_session.set_landmarks(image.id, DISC, FOVEA)
    ana_session.toggle_region(image.id, "haemorrhage", 1)
    ana_session.set_comment(image.id, "Ana's note")
    ana_session.mark_done(image.id)

    window = open_window(qtbot, project, ben.id)
    window.controller.open_image(image.id)
    qtbot.waitUntil(lambda: window.canvas.image_id == image.id)
    state = window.controller.state
    assert state.regions == {} and state.landmarks is None and state.comment == ""
    assert window.controller.shown_landmarks is None
    assert not window.canvas.disc_marker.isVisible() and window.canvas.placing == "disc"
    assert window.answer_panel.comment.toPlainText() == ""
    assert all(row.regions.text() == "" for row in window.answer_panel.rows.values())
    assert window.queue_panel.progress_label.text() == "0 / 3 done"


def test_storage_errors_are_shown_and_the_window_stays(qtbot, reading_project, monkeypatch):
    # (a locked database keeps the click and saves it later: tests/ui/test_saving_while_locked.py)
    from storage.errors import DatabaseError

    project, ana = reading_project.project, reading_project.readers["Ana"]
    landmarks_placed(project, ana.id)
    window = open_window(qtbot, project, ana.id)

    def read_only(*args, **kwargs):
        raise DatabaseError("The project database is read-only; ask for write access to its folder.")

    monkeypatch.setattr(ReaderSession, "toggle_region", read_only)
    press(qtbot, window, "h", "2")
    assert "read-only" in window.hint_label.text()
    assert window.isVisible() and window.controller.kept_clicks() == 0


def test_layout_is_remembered(qtbot, reading_project):
    project, ana = reading_project.project, reading_project.readers["Ana"]
    window = open_window(qtbot, project, ana.id)
    window.resize(760, 700)   # legible on the 800 × 800 offscreen screen: not widened at reopening
    window.close()
    again = open_window(qtbot, project, ana.id, size=None)
    assert (again.size().width(), again.size().height()) == (760, 700)


def test_model_landmarks_are_offered_and_kept_with_the_first_region(qtbot, reading_project):
    from storage.predictions import save_model_landmarks

    project, ana = reading_project.project, reading_project.readers["Ana"]
    session = ReaderSession(project.database, ana.id)
    image = session.queue()[0]
    save_model_landmarks(project.database, image.id, DISC, FOVEA, model_version="landmarks-1")
    window = open_window(qtbot, project, ana.id)
    assert window.canvas.landmarks() == (DISC, FOVEA) and window.canvas.placing == ""
    assert "model" in window.hint_label.text()
    press(qtbot, window, "h", "1")
    state = session.read(image.id)
    assert state.regions == {"haemorrhage": frozenset({1})}
    assert state.landmarks.source == "model" and state.landmarks.disc == DISC



def test_dragging_the_models_fovea_drops_the_note_that_the_model_placed_it(qtbot, reading_project):
    from PySide6.QtCore import QPoint, QPointF, Qt

    from storage.predictions import save_model_landmarks

    project, ana = reading_project.project, reading_project.readers["Ana"]
    image = ReaderSession(project.database, ana.id).queue()[0]
    save_model_landmarks(project.database, image.id, DISC, FOVEA, model_version="landmarks-1")
    window = open_window(qtbot, project, ana.id)
    assert window.hint_label.text().startswith("Disc and fovea placed by the model")
    viewport, start = window.canvas.viewport(), window.canvas.mapFromScene(QPointF(*FOVEA))
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(viewport, start + QPoint(-4, 6))
    qtbot.mouseMove(viewport, start + QPoint(-8, 12))
    with qtbot.waitSignal(window.controller.stateChanged):
        qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=start + QPoint(-8, 12))
    assert ReaderSession(project.database, ana.id).read(image.id).landmarks.source == "manual"
    assert "placed by the model" not in window.hint_label.text()

def test_ungradable_key_answers_the_image(qtbot, reading_project):
    project, ana = reading_project.project, reading_project.readers["Ana"]
    window = open_window(qtbot, project, ana.id)
    image_id = window.controller.image.id
    press(qtbot, window, "u")
    assert window.answer_panel.ungradable.isChecked()
    next_image(qtbot, window, "Space")
    state = ReaderSession(project.database, ana.id).read(image_id)
    assert state.ungradable and state.done and state.regions == {}


def test_an_unanswered_image_is_skipped_not_marked_done(qtbot, reading_project):
    project, ana = reading_project.project, reading_project.readers["Ana"]
    window = open_window(qtbot, project, ana.id)
    first = window.controller.image.id
    next_image(qtbot, window, "Space")
    assert window.controller.image.id != first
    assert not ReaderSession(project.database, ana.id).read(first).done
    assert window.queue_panel.progress_label.text() == "0 / 3 done"


def test_queue_ticks_the_images_already_done(qtbot, reading_project):
    project, ana = reading_project.project, reading_project.readers["Ana"]
    session = ReaderSession(project.database, ana.id)
    first, second, third = session.queue()
    session.mark_normal(second.id)
    session.mark_done(second.id)
    window = open_window(qtbot, project, ana.id)
    panel = window.queue_panel
    qtbot.waitUntil(lambda: panel.shows_done(second.id) is True)
    assert panel.shows_done(third.id) is False and panel.shows_done(-1) is None
    assert panel.progress_label.text() == "1 / 3 done"


def test_zooming_past_the_display_copy_brings_the_full_resolution(qtbot, reading_project,
                                                                  monkeypatch):
    import ui.display_image

    monkeypatch.setattr(ui.display_image, "DISPLAY_LONG_SIDE", 128)  # display copy at 1/2
    project, ana = reading_project.project, reading_project.readers["Ana"]
    window = open_window(qtbot, project, ana.id)
    canvas = window.canvas
    assert canvas.photo_size[0] == 128 and canvas.detail_size is None
    with qtbot.waitSignal(window.loader.detailReady, timeout=5000):
        canvas.zoom_by(8.0)
    assert canvas.detail_size[0] == 256  # the photo's own pixels for close reading
    first = window.controller.image.id
    window.controller.go(1)
    assert window.loader.detail_image_id != first  # memory freed


def test_regions_are_refused_until_the_image_has_a_disc_and_a_fovea(qtbot, reading_project):
    # A new-user trial: on a fresh demo no landmarks were placed yet, so no region outlines were
    # drawn; the reader pressed region keys anyway and the regions were saved without geometry
    # (the export could only count them as undrawn).
    from storage.predictions import save_prediction
    from ui.assist import PRESEGMENTATION
    from ui.reading_controller import REGIONS_NEED_LANDMARKS

    project, ana = reading_project.project, reading_project.readers["Ana"]
    session = ReaderSession(project.database, ana.id)
    first, second, third = session.queue()
    session.set_regions(third.id, "drusen", {2})          # saved before this rule: kept as it is
    save_prediction(project.database, first.id, PRESEGMENTATION,   # regions suggested, no landmarks
                    {"finding_regions": {"haemorrhage": [1]}, "mask_folder": None}, model_version="test-1")
    window = open_window(qtbot, project, ana.id)
    assert window.controller.image.id == first.id and window.canvas.placing == "disc"
    press(qtbot, window, "h", "1", "Shift+A")
    assert window.hint_label.text() == REGIONS_NEED_LANDMARKS
    assert session.read(first.id).regions == {} and window.answer_panel.rows["haemorrhage"].regions.text() == ""
    place_landmarks(qtbot, window)                      # one click each, then the region goes in
    press(qtbot, window, "1")
    assert session.read(first.id).regions == {"haemorrhage": frozenset({1})}
    next_image(qtbot, window, "Right")
    next_image(qtbot, window, "N")                      # normal needs no regions
    assert session.read(second.id).normal and session.read(second.id).done
    assert window.controller.image.id == third.id
    press(qtbot, window, "d", "3")
    assert window.hint_label.text() == REGIONS_NEED_LANDMARKS
    press(qtbot, window, "u")                           # ungradable needs none either
    stored = session.read(third.id)
    assert stored.ungradable and stored.regions == {"drusen": frozenset({2})}


def test_a_missing_photo_is_reported_and_reading_goes_on(qtbot, reading_project):
    project, ana = reading_project.project, reading_project.readers["Ana"]
    second = ReaderSession(project.database, ana.id).queue()[1]
    second.path.unlink()
    window = open_window(qtbot, project, ana.id)
    with qtbot.waitSignal(window.loader.failed, timeout=5000):
        press(qtbot, window, "Right")
    assert second.path.name in window.hint_label.text() and window.isVisible()
    next_image(qtbot, window, "Right")  # the third photo opens as usual
    assert window.controller.image.id != second.id


def test_a_photo_that_cannot_be_shown_cannot_be_answered_normal_or_labelled(qtbot, reading_project):
    # Trying the product: N on a damaged photo (only a sentence on the canvas) saved "Normal" and moved
    # on, so a photo nobody saw counted as a normal reading in the consensus.
    project, ana = reading_project.project, reading_project.readers["Ana"]
    second = ReaderSession(project.database, ana.id).queue()[1]
    second.path.write_bytes(second.path.read_bytes()[:200])   # cut short after import
    window = open_window(qtbot, project, ana.id)
    with qtbot.waitSignal(window.loader.failed, timeout=5000):
        press(qtbot, window, "Right")
    press(qtbot, window, "n", "h", "1", "Shift+A")
    assert window.controller.image.id == second.id                      # N did not move on
    assert window.hint_label.text().startswith("This photo could not be shown")
    stored = ReaderSession(project.database, ana.id).read(second.id)
    assert not stored.normal and not stored.regions and not stored.done
    press(qtbot, window, "u")                                           # ungradable stays possible
    assert ReaderSession(project.database, ana.id).read(second.id).ungradable
    next_image(qtbot, window, "Right")                                  # the next photo is answered as usual
    place_landmarks(qtbot, window)
    press(qtbot, window, "Escape", "h", "1")
    answered = ReaderSession(project.database, ana.id).read(window.controller.image.id)
    assert answered.regions == {"haemorrhage": frozenset({1})}


def test_a_photo_overwritten_by_another_since_import_is_not_shown_as_that_image(qtbot, reading_project):
    # Photos are read where they were imported from: a camera numbering its files again put another
    # eye under a known name, and the workstation showed it as the imported image, to be labelled.
    from tests.ui.conftest import write_fundus

    project, ana = reading_project.project, reading_project.readers["Ana"]
    second = ReaderSession(project.database, ana.id).queue()[1]
    write_fundus(second.path, seed=99)                                  # same name and size, another photo
    window = open_window(qtbot, project, ana.id)
    with qtbot.waitSignal(window.loader.failed, timeout=5000):
        press(qtbot, window, "Right")
    assert window.hint_label.text() == (f"{second.path} has changed since it was imported (another photograph "
                                         "under its name, or damage); put the original back, or move this file "
                                         "away and import the original again.")
    press(qtbot, window, "n")
    assert not ReaderSession(project.database, ana.id).read(second.id).normal


def test_a_finding_key_pressed_again_on_the_next_image_keeps_that_finding(qtbot, reading_project):
    # Trying the product: "H 1 5 Space" on every image labelled only every other one, because H stayed
    # current on the next image and pressing it again let go of it (then 1 and 5 said "choose a finding").
    project, ana = reading_project.project, reading_project.readers["Ana"]
    window = open_window(qtbot, project, ana.id)
    first = window.controller.image.id
    place_landmarks(qtbot, window)
    press(qtbot, window, "h", "1")
    next_image(qtbot, window, "Space")
    second = window.controller.image.id
    place_landmarks(qtbot, window)
    press(qtbot, window, "h", "5")
    session = ReaderSession(project.database, ana.id)
    assert session.read(first).regions == {"haemorrhage": frozenset({1})}
    assert session.read(second).regions == {"haemorrhage": frozenset({5})}
    press(qtbot, window, "Escape")
    assert window.controller.finding is None        # Esc still lets go of the finding


def test_images_assigned_while_the_window_is_open_join_its_queue_list(qtbot, reading_project):
    # Trying the product: photos imported and assigned while a reader worked were opened by Space
    # (the database knew them) but never listed: "3 / 16 done" over a list of 13 rows.
    from annotate.services.importer import import_images
    from storage.assignment import assign_readers
    from tests.ui.conftest import write_fundus

    project, ana = reading_project.project, reading_project.readers["Ana"]
    window = open_window(qtbot, project, ana.id)
    (added,) = import_images(project, [write_fundus(reading_project.folder / "photos" / "late.jpg", seed=9)]).added
    assign_readers(project.database, readers_per_image=3)
    for _ in range(3):
        next_image(qtbot, window, "N")
    assert window.controller.image.id == added
    rows = [window.queue_panel.list.item(row) for row in range(window.queue_panel.list.count())]
    assert [row.text().split()[-1] for row in rows][-1] == "late" and len(rows) == 4
    assert window.queue_panel.list.currentItem() is rows[-1] and "(4 of 4)" in window.windowTitle()


def test_only_reviewers_and_admins_see_model_training(qtbot, reading_project):
    from ui.workstation import build_window

    for name, expected in (("Ana", False), ("Admin", True)):
        window = build_window(reading_project.project, reading_project.readers[name].id)
        qtbot.addWidget(window)
        file_menu = window.menuBar().actions()[0].menu()
        assert ("Train models…" in [a.text() for a in file_menu.actions()]) is expected


def test_with_nothing_to_read_the_answer_keys_and_panel_are_off_and_the_hint_stays(qtbot, reading_project):
    # An admin (no reads assigned) pressing H saw "Haemorrhage: press 1–8 or click the regions" over an
    # empty canvas instead of what to do; the answer panel looked usable.
    from PySide6.QtWidgets import QApplication

    from ui.workstation import build_window

    window = build_window(reading_project.project, reading_project.readers["Admin"].id)
    qtbot.addWidget(window)
    window.show()
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=3000)
    hint = window.hint_label.text()
    assert hint.startswith("No images are assigned to you")
    press(qtbot, window, "h", "1", "n", "Space")
    assert window.hint_label.text() == hint and window.controller.finding is None
    assert not window.answer_panel.isEnabled()
    assert not any(action.isEnabled() for action in window.answer_actions)
    assert window.actions_by_name["fit"].isEnabled()     # the view's actions and the menus stay
