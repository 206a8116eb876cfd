"""Decoding happens off the GUI thread; a prefetched image is shown at once."""
from __future__ import annotations

from PySide6.QtCore import QThread

from tests.ui.conftest import write_fundus
from ui.display_image import ViewAids
from ui.image_loader import ImageLoader


def test_request_answers_with_the_decoded_image(qtbot, tmp_path):
    path = write_fundus(tmp_path / "a.jpg", seed=0)
    loader = ImageLoader()
    with qtbot.waitSignal(loader.ready, timeout=5000) as blocker:
        loader.request(7, path, (256, 192))
    image_id, display, shown = blocker.args
    assert image_id == 7 and display.original_size == (256, 192)
    assert (shown.full.width(), shown.full.height()) == (256, 192)


def test_decoding_runs_outside_the_gui_thread(qtbot, tmp_path, monkeypatch):
    import ui.image_loader as module

    threads = []
    real = module.decode_for_display

    def spy(*args, **kwargs):
        threads.append(QThread.currentThread())
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "decode_for_display", spy)
    loader = ImageLoader()
    with qtbot.waitSignal(loader.ready, timeout=5000):
        loader.request(1, write_fundus(tmp_path / "a.jpg", seed=0), (256, 192))
    assert threads and threads[0] is not QThread.currentThread()


def test_prefetched_image_is_ready_without_waiting(qtbot, tmp_path):
    first = write_fundus(tmp_path / "a.jpg", seed=0)
    second = write_fundus(tmp_path / "b.jpg", seed=1)
    loader = ImageLoader()
    with qtbot.waitSignal(loader.ready, timeout=5000):
        loader.request(1, first, (256, 192))
    loader.prefetch(2, second, (256, 192))
    assert loader.wait(5000)
    qtbot.wait(20)  # deliver the worker's queued result
    seen = []
    loader.ready.connect(lambda image_id, *_: seen.append(image_id))
    loader.request(2, second, (256, 192))
    assert seen == [2]  # emitted inside request(): no decode


def test_a_broken_file_reports_failure(qtbot, tmp_path):
    path = tmp_path / "broken.jpg"
    path.write_bytes(b"\xff\xd8\xff garbage")
    loader = ImageLoader()
    with qtbot.waitSignal(loader.failed, timeout=5000) as blocker:
        loader.request(3, path, (256, 192))
    assert blocker.args[0] == 3 and "broken.jpg" in blocker.args[1]


def test_changing_view_aids_renders_the_open_image_again(qtbot, tmp_path):
    path = write_fundus(tmp_path / "a.jpg", seed=0)
    loader = ImageLoader()
    with qtbot.waitSignal(loader.ready, timeout=5000) as plain:
        loader.request(1, path, (256, 192))
    with qtbot.waitSignal(loader.ready, timeout=5000) as green:
        loader.set_aids(ViewAids(green_channel=True))
    colour = green.args[2].full.pixelColor(128, 96)
    assert colour.red() == colour.green() == colour.blue()
    assert plain.args[2].full.pixelColor(128, 96) != colour
