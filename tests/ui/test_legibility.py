"""What a reader must be able to read (issue 19 point 9): docks keep a legible width whatever layout
was remembered, and every menu entry says what it does, once."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget

from tests.ui.driving import open_window


def test_a_squeezed_remembered_layout_leaves_the_docks_legible(qtbot, reading_project):
    from ui.main_window import DOCK_MIN_WIDTH

    window = open_window(qtbot, reading_project.project, reading_project.readers["Ana"].id, size=(1600, 1000))
    docks = {name: window.findChild(QDockWidget, f"dock_{name}") for name in DOCK_MIN_WIDTH}
    window.resizeDocks(list(docks.values()), [40, 40], Qt.Orientation.Horizontal)   # as a 50 × 50 run left it
    qtbot.wait(50)
    window.close()                       # remembers the layout
    again = open_window(qtbot, reading_project.project, reading_project.readers["Ana"].id, size=None)
    again.resize(1600, 1000)
    qtbot.wait(50)
    for name, minimum in DOCK_MIN_WIDTH.items():
        assert again.findChild(QDockWidget, f"dock_{name}").width() >= minimum


def test_a_tiny_remembered_window_comes_back_at_a_legible_size(qtbot, reading_project):
    from ui.main_window import LEGIBLE_WINDOW

    window = open_window(qtbot, reading_project.project, reading_project.readers["Ana"].id, size=(420, 300))
    qtbot.wait(50)
    window.close()                       # remembers the tiny window
    again = open_window(qtbot, reading_project.project, reading_project.readers["Ana"].id, size=None)
    available = again.screen().availableGeometry().size()
    assert again.width() >= min(LEGIBLE_WINDOW[0], available.width())
    assert again.height() >= min(LEGIBLE_WINDOW[1], available.height())


def test_menu_entries_are_unique_and_whole(qtbot, reading_project):
    window = open_window(qtbot, reading_project.project, reading_project.readers["Ana"].id)
    for top in window.menuBar().actions():
        texts = [a.text() for a in top.menu().actions() if not a.isSeparator() and a.text()]
        assert len(texts) == len(set(texts)), (top.text(), texts)
        assert all(len(text) > 2 for text in texts), (top.text(), texts)
    view = [a.text() for a in next(t for t in window.menuBar().actions() if t.text() == "&View").menu().actions()]
    model = [a.text() for a in next(t for t in window.menuBar().actions() if t.text() == "&Model").menu().actions()]
    assert "Actual size (1:1)" in view
    assert {"Vessels overlay", "Disc and cup overlay", "Lesions overlay"} <= set(model)


def test_a_screenshot_run_leaves_the_readers_remembered_layout_alone(qapp, reading_project, tmp_path):
    from ui.screenshots.workstation import render_screenshots
    from ui.workstation_settings import workstation_settings

    settings = workstation_settings()
    settings.setValue("window/state", b"the reader's own layout")
    settings.sync()
    file = settings.fileName()
    before = open(file, "rb").read()
    render_screenshots(tmp_path / "shots", project=reading_project.folder, reader="Ana", size=(400, 300))
    assert workstation_settings().fileName() == file
    assert open(file, "rb").read() == before


def test_the_grey_suggested_numbers_are_explained_while_shown(qtbot, reading_project):
    from storage.reading import ReaderSession
    from tests.ui.driving import press
    from tests.ui.test_assist import store_presegmentation

    project, ana = reading_project.project, reading_project.readers["Ana"]
    image_id = ReaderSession(project.database, ana.id).queue()[0].id
    store_presegmentation(project, image_id)
    window = open_window(qtbot, project, ana.id)
    panel = window.answer_panel
    assert panel.rows["haemorrhage"].suggested.text() == "+1 5"
    assert panel.suggestions_note.isVisible() and "model suggests" in panel.suggestions_note.text()
    assert "haemorrhage" in panel.rows["haemorrhage"].suggested.toolTip()
    press(qtbot, window, "Shift+A")                  # accepted: nothing left to explain
    assert not panel.suggestions_note.isVisible()


def test_a_long_hint_is_shortened_before_the_status_bar_labels_beside_it(qtbot, reading_project):
    window = open_window(qtbot, reading_project.project, reading_project.readers["Ana"].id, size=(1280, 800))
    window.ahead_label.setText("Pre-segmentation ready for your queue (6 new, 0 done before).")
    long_hint = "Model suggests: " + ", ".join(f"Finding number {i} in regions 1 4 5 6 7 8" for i in range(12))
    window.show_hint(long_hint)
    qtbot.wait(50)
    hint, ahead = window.hint_label, window.ahead_label
    assert hint.text() == long_hint and hint.toolTip() == long_hint   # the whole text is kept
    assert hint.shown_text().endswith("…") and len(hint.shown_text()) < len(long_hint)
    assert hint.geometry().right() < ahead.geometry().left()          # drawn short of its neighbour
    assert ahead.width() >= ahead.fontMetrics().horizontalAdvance(ahead.text())   # which stays whole


def test_an_empty_queue_tells_each_role_what_to_do(qtbot, clinic):
    from ui.workstation import build_window

    hints = {}
    for name in ("Admin", "Rhea"):
        window = build_window(clinic.project, clinic.readers[name].id)
        qtbot.addWidget(window)
        hints[name] = window.hint_label.text()
    assert "File → Readers and sets" in hints["Admin"] and "ask the project lead" not in hints["Admin"]
    assert "File → Review" in hints["Rhea"] and "ask the project lead" not in hints["Rhea"]


def relative_luminance(rgb) -> float:
    """WCAG 2's, of an sRGB colour (0–255 per channel)."""
    linear = [c / 255 / 12.92 if c / 255 <= 0.04045 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def test_the_suggested_numbers_stay_readable_on_the_current_findings_highlight(qtbot, reading_project):
    # Grey (#8a8f98) on the highlight's blue: about 1.1 to 1, "+4 6 7 8" could not be read.
    from PySide6.QtWidgets import QApplication

    from storage.reading import ReaderSession
    from tests.ui.test_assist import store_presegmentation
    from ui.app import STYLE

    project, ana = reading_project.project, reading_project.readers["Ana"]
    store_presegmentation(project, ReaderSession(project.database, ana.id).queue()[0].id)
    app = QApplication.instance()
    before = app.styleSheet()
    app.setStyleSheet(STYLE)            # the workstation's own (ui.app.make_app), not the tests' plain one
    try:
        window = open_window(qtbot, project, ana.id)
        row = window.answer_panel.rows["haemorrhage"]
        window.controller.select_finding("haemorrhage")
        qtbot.waitUntil(lambda: row.property("current") is True, timeout=2000)
        assert row.suggested.text() == "+1 5"
        qtbot.wait(50)                  # laid out again in the highlight's font
        picture = row.grab().toImage()
    finally:
        app.setStyleSheet(before)
    # The name too: the labels were not re-polished when the row became current, so it stayed dark.
    assert strongest_contrast(picture, row.suggested.geometry()) >= 3.0
    assert strongest_contrast(picture, row.name.geometry()) >= 3.0


def strongest_contrast(picture, box) -> float:
    """WCAG contrast of the text pixel that stands out most in ``box`` against the pixel just left of it."""
    background = relative_luminance(picture.pixelColor(box.left() - 2, box.top() + 1).getRgb()[:3])
    text = (relative_luminance(picture.pixelColor(x, y).getRgb()[:3])
            for x in range(box.left(), box.right()) for y in range(box.top(), box.bottom()))
    return max((max(value, background) + 0.05) / (min(value, background) + 0.05) for value in text)


def test_help_says_which_octant_which_project_and_where_the_log_is(qtbot, reading_project):
    from ui.about import about_text

    window = open_window(qtbot, reading_project.project, reading_project.readers["Ana"].id)
    help_menu = next(t for t in window.menuBar().actions() if t.text() == "&Help").menu()
    assert "About Octant…" in [a.text() for a in help_menu.actions()]
    text = about_text(window)
    assert str(reading_project.folder) in text and "Ana (ophthalmologist)" in text and "octant.log" in text
