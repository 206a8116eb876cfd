"""The canvas: zoom around the cursor, placing and dragging landmarks, clicks on regions."""
from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent

from annotate.geometry import region_at
from tests.ui.conftest import DISC, FOVEA, write_fundus
from ui.canvas import FundusCanvas
from ui.display_image import ViewAids, decode_for_display, render_shown

SIZE = (256, 192)


@pytest.fixture
def canvas(qtbot, tmp_path):
    view = FundusCanvas()
    qtbot.addWidget(view)
    view.resize(640, 480)
    view.show()
    qtbot.waitExposed(view)
    display = decode_for_display(write_fundus(tmp_path / "eye.jpg", seed=0), SIZE)
    view.begin_image(1, SIZE, None)
    view.show_image(1, display, render_shown(display.bgr, ViewAids(), view.fit_size()))
    return view


def test_wheel_zooms_around_the_cursor(canvas):
    cursor = QPoint(400, 150)
    before = canvas.mapToScene(cursor)
    zoom = canvas.zoom()
    event = QWheelEvent(QPointF(cursor), QPointF(canvas.mapToGlobal(cursor)), QPoint(0, 0),
                        QPoint(0, 240), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    canvas.wheelEvent(event)
    assert canvas.zoom() == pytest.approx(zoom * 1.0015 ** 240)
    after = canvas.mapToScene(cursor)
    assert (after - before).manhattanLength() < 2.0 / canvas.zoom()


def test_fit_and_one_to_one(canvas):
    canvas.actual_size()
    assert canvas.zoom() == pytest.approx(1.0 / canvas.devicePixelRatioF())
    canvas.fit()
    assert canvas.zoom() == pytest.approx(min(640 / 256, 480 / 192), rel=0.05)


def test_first_two_clicks_place_disc_then_fovea(qtbot, canvas):
    canvas.set_landmarks(None, None)
    assert canvas.placing == "disc"
    canvas.click_at(QPointF(*DISC))
    assert canvas.placing == "fovea"
    with qtbot.waitSignal(canvas.landmarksChanged) as placed:
        canvas.click_at(QPointF(*FOVEA))
    assert placed.args == [DISC, FOVEA]
    assert canvas.placing == "" and canvas.overlay.isVisible()


def test_clicks_name_the_region_annotate_geometry_names(qtbot, canvas):
    canvas.set_landmarks(DISC, FOVEA)
    for x, y in ((195, 90), (125, 40), (125, 160), (60, 40), (60, 160), (240, 100), (80, 85)):
        expected = region_at(DISC, FOVEA, (x, y), shape=(SIZE[1], SIZE[0]))
        with qtbot.waitSignal(canvas.regionClicked) as clicked:
            canvas.click_at(QPointF(x, y))
        assert clicked.args == [expected]


def test_dragging_a_marker_moves_the_regions_live_and_reports_on_release(qtbot, canvas):
    canvas.set_landmarks(DISC, FOVEA)
    transform = canvas.overlay.transform_to_image
    start = canvas.mapFromScene(QPointF(*FOVEA))
    end = start + QPoint(-20, 15)
    viewport = canvas.viewport()
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(viewport, start + QPoint(-10, 8))
    qtbot.mouseMove(viewport, end)
    assert canvas.overlay.transform_to_image != transform  # redrawn during the drag
    with qtbot.waitSignal(canvas.landmarksChanged) as moved:
        qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=end)
    disc, fovea = moved.args
    assert disc == DISC
    target = canvas.mapToScene(end)
    assert fovea == pytest.approx((target.x(), target.y()), abs=1.0)


def test_left_drag_on_the_photo_pans_instead_of_clicking(qtbot, canvas):
    canvas.set_landmarks(DISC, FOVEA)
    canvas.zoom_by(3.0)
    clicked = []
    canvas.regionClicked.connect(clicked.append)
    viewport = canvas.viewport()
    centre = canvas.mapToScene(viewport.rect().center())
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=QPoint(300, 300))
    qtbot.mouseMove(viewport, QPoint(340, 300))
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=QPoint(340, 300))
    assert clicked == []
    assert canvas.mapToScene(viewport.rect().center()).x() < centre.x()
