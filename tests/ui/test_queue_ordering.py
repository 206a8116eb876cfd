"""Signing in with the queue in the model's reading order: the first ordering of a session (every
open image scored) runs off the GUI thread, so the window keeps processing events and keys while
it runs, opens the queue when it is ready, and joins it when it closes first.

The ordering is made deliberately slow (each image's score waits for the test), so nothing here
depends on how fast the machine is."""
from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

import storage.queue_order
from tests.ui.conftest import order_by_the_model
from tests.ui.driving import press
from ui.main_window import ORDERING_NOTE
from ui.workstation import build_window


@pytest.fixture
def slow_ordering(reading_project, monkeypatch):
    """The model's order on the reading project (the third image first), each score held until
    ``release`` is set; yields (release, the images in the expected order)."""
    expected = order_by_the_model(reading_project)
    release = threading.Event()
    score = storage.queue_order.image_score

    def held_score(*args, **kwargs):
        release.wait(0.05)   # in steps: a cancel between images is still seen
        return score(*args, **kwargs)

    monkeypatch.setattr(storage.queue_order, "image_score", held_score)
    monkeypatch.setattr(storage.queue_order, "SCORE_CHUNK", 1)   # a checkpoint after every image
    yield release, expected
    release.set()


def shown_ids(window) -> list:
    shown = window.queue_panel.list
    return [shown.item(n).data(256) for n in range(shown.count())]


def test_the_window_keeps_processing_events_and_keys_while_the_first_ordering_runs(
        qtbot, reading_project, slow_ordering):
    release, expected = slow_ordering
    window = build_window(reading_project.project, reading_project.readers["Ben"].id)
    qtbot.addWidget(window)
    window.show()
    window.activateWindow()
    try:
        assert window.ordering is not None and window.ordering.is_running
        assert window.controller.image is None
        assert window.queue_panel.list.item(0).text() == ORDERING_NOTE
        ticks: list[int] = []
        QTimer.singleShot(0, lambda: ticks.append(1))   # the event loop runs while the ordering waits
        qtbot.waitUntil(lambda: ticks == [1], timeout=5000)
        qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=3000)
        press(qtbot, window, "h", "1", "Space", "Right", "n")   # nothing to answer yet: the keys do nothing
        QApplication.processEvents()
        assert window.ordering.is_running and window.controller.image is None
        assert window.controller.finding is None and window.hint_label.text().startswith(ORDERING_NOTE)
        assert not window.answer_panel.isEnabled() and window.actions_by_name["fit"].isEnabled()
        release.set()
        qtbot.waitUntil(lambda: window.controller.image is not None, timeout=10000)
        assert window.controller.image.id == expected[0]
        assert shown_ids(window) == expected
        assert not window.hint_label.text().startswith(ORDERING_NOTE)
        assert window.answer_panel.isEnabled() and all(action.isEnabled() for action in window.answer_actions)
        press(qtbot, window, "h")
        assert window.controller.finding == "haemorrhage"
    finally:
        release.set()
        window.close()


def test_closing_the_window_while_the_queue_is_ordered_cancels_and_joins_the_ordering(
        qtbot, reading_project, slow_ordering):
    window = build_window(reading_project.project, reading_project.readers["Ben"].id)
    qtbot.addWidget(window)
    ordering = window.ordering
    assert ordering is not None and not ordering.has_ended
    window.close()   # never released: only the cancel ends it
    assert ordering.has_ended and ordering.cancel_requested
    assert window.controller.image is None
    reading_project.project.close()   # nothing of the ordering still uses the database
