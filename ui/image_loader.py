"""Decoding off the GUI thread, a small LRU cache and prefetch of the next image in the queue.

The GUI thread never decodes: it asks for an image and gets ``ready`` when the display copy is
in memory (at once when the image is cached, e.g. prefetched while the reader looked at the
previous one). View aids are rendered in the same worker pool from the cached decode, so moving a
slider never blocks the window either.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from annotate.services.photos import read_fundus
from storage.errors import BadImageError, OctantError
from ui.assist import render_overlay
from ui.background import Worker, worker_pool
from ui.display_image import (
    DisplayImage,
    ShownImage,
    ViewAids,
    apply_view_aids,
    decode_for_display,
    render_shown,
    to_qimage,
)

CACHE_SIZE = 4  # current, previous, next and one spare: ~12 MB each at 2144 × 1424 display size


@dataclass
class _Entry:
    display: DisplayImage | None = None
    shown: ShownImage | None = None
    shown_aids: ViewAids | None = None


def _render(path: Path, size: tuple[int, int] | None, display: DisplayImage | None, aids: ViewAids,
            fit_size: tuple[int, int] | None, sha256: str | None = None) -> tuple[DisplayImage, ShownImage, ViewAids]:
    """Decode (unless already decoded; then, when its ``sha256`` is given, check the file is still
    the one imported: a damaged file has said why already) and apply the view aids: pure work, no
    Qt widgets."""
    try:
        if display is None:
            display = decode_for_display(path, size, sha256=sha256)
        return display, render_shown(display.bgr, aids, fit_size), aids
    except OctantError:
        raise
    except Exception as error:  # a worker must never take the window down
        raise BadImageError(f"Could not show this image ({error}).") from error


def _overlay(layers: list, size: tuple[int, int]):
    try:
        return render_overlay(layers, size)
    except Exception as error:  # a damaged mask must not take the window down
        raise BadImageError(f"Could not draw the model overlay ({error}).") from error


def _detail(path: Path, aids: ViewAids):
    """The photo at full resolution, for zooms beyond the display copy (1:1 on microaneurysms)."""
    try:
        bgr = read_fundus(path)
        return to_qimage(apply_view_aids(bgr, aids) if aids.active else bgr), aids
    except OctantError:
        raise
    except Exception as error:  # a worker must never take the window down
        raise BadImageError(f"Could not show this image ({error}).") from error


class ImageLoader(QObject):
    """Ask with ``request``; ``ready(image_id, DisplayImage, ShownImage)`` answers when ready.

    ``fit_size`` (device pixels of the canvas) lets the worker pre-shrink the photo for "fit".
    """

    ready = Signal(int, object, object)
    failed = Signal(int, str)
    overlayReady = Signal(int, str, object)  # image_id, key, QImage (model masks, translucent)
    detailReady = Signal(int, object)        # image_id, QImage at full resolution

    def __init__(self, parent: QObject | None = None, threads: int = 2,
                 cache_size: int = CACHE_SIZE):
        super().__init__(parent)
        self._pool = worker_pool(self, threads)   # its workers are joined at quit (ui.background)
        self._workers: set[Worker] = set()
        # One full-resolution copy at a time (≈ 50 MB for 4288 × 2848), for the open image only.
        self._detail: tuple[int, ViewAids, object] | None = None
        self._detail_in_flight: tuple[int, ViewAids] | None = None
        self._cache: OrderedDict[int, _Entry] = OrderedDict()
        self._cache_size = cache_size
        self._in_flight: dict[int, ViewAids] = {}
        self._sources: dict[int, tuple[Path, tuple[int, int] | None, str | None]] = {}  # path, size, SHA-256
        self._wanted: int | None = None
        self.aids = ViewAids()
        self.prefetch_enabled = True
        self.fit_size: tuple[int, int] | None = None
        self._closed = False

    # --- asking -------------------------------------------------------------------------------
    def request(self, image_id: int, path: Path, size: tuple[int, int] | None = None,
                sha256: str | None = None) -> None:
        """Show ``image_id`` next; emits ``ready`` now if it is cached with the current aids. With
        ``sha256`` (the imported file's), a file that changed since is refused (``failed``)."""
        if self._detail is not None and self._detail[0] != image_id:
            self._detail = None
        self._wanted = image_id
        self._sources[image_id] = (Path(path), size, sha256)
        entry = self._cache.get(image_id)
        if entry and entry.shown is not None and entry.shown_aids == self.aids:
            self._cache.move_to_end(image_id)
            self.ready.emit(image_id, entry.display, entry.shown)
            return
        self._submit(image_id)

    def prefetch(self, image_id: int, path: Path, size: tuple[int, int] | None = None,
                 sha256: str | None = None) -> None:
        if not self.prefetch_enabled:
            return
        self._sources[image_id] = (Path(path), size, sha256)
        entry = self._cache.get(image_id)
        if entry and entry.shown_aids == self.aids:
            return
        self._submit(image_id)

    def set_aids(self, aids: ViewAids) -> None:
        """Change the view aids; the wanted image is re-rendered from its cached decode."""
        self.aids = aids
        if self._wanted is not None:
            self._submit(self._wanted)
            if self._detail is not None and self._detail[0] == self._wanted:
                self.request_detail(self._wanted)  # the zoomed-in copy follows the aids

    def request_detail(self, image_id: int) -> None:
        """The full-resolution copy of the wanted image; ``detailReady`` answers."""
        if self._closed or image_id != self._wanted or image_id not in self._sources:
            return
        if self._detail is not None and self._detail[:2] == (image_id, self.aids):
            self.detailReady.emit(image_id, self._detail[2])
            return
        if self._detail_in_flight == (image_id, self.aids):
            return
        self._detail_in_flight = (image_id, self.aids)
        path, aids = self._sources[image_id][0], self.aids
        self._start(lambda: _detail(path, aids), image_id,
                    lambda answer: self._on_detail(image_id, *answer))

    def request_overlay(self, image_id: int, key: str, layers: list,
                        size: tuple[int, int]) -> None:
        """Compose model masks off the GUI thread; ``overlayReady`` answers."""
        if not self._closed:
            self._start(lambda: _overlay(layers, size), image_id,
                        lambda image: self.overlayReady.emit(image_id, key, image))

    def clear(self) -> None:
        self._cache.clear()
        self._wanted = None

    def wait(self, msecs: int = 5000) -> bool:
        """Join every job asked for so far (True when all have ended within ``msecs``)."""
        deadline = time.monotonic() + msecs / 1000
        return all(worker.wait(max(0, round(1000 * (deadline - time.monotonic()))))
                   for worker in list(self._workers))

    def shutdown(self, msecs: int = 5000) -> None:
        """No new work, queued work dropped; wait for the running jobs (one decode each)."""
        self._closed = True
        for worker in list(self._workers):
            worker.cancel()
        self.wait(msecs)

    def is_rendered(self, image_id: int) -> bool:
        """Whether ``image_id`` is cached as shown with the current view aids."""
        entry = self._cache.get(image_id)
        return entry is not None and entry.shown is not None and entry.shown_aids == self.aids

    @property
    def detail_image_id(self) -> int | None:
        """The image whose full-resolution copy is held (one at a time), if any."""
        return self._detail[0] if self._detail is not None else None

    # --- work ---------------------------------------------------------------------------------
    def _submit(self, image_id: int) -> None:
        if self._closed or self._in_flight.get(image_id) == self.aids:
            return
        path, size, sha256 = self._sources[image_id]
        entry = self._cache.get(image_id)
        self._in_flight[image_id] = aids = self.aids
        display, fit_size = (entry.display if entry else None), self.fit_size
        self._start(lambda: _render(path, size, display, aids, fit_size, sha256), image_id,
                    lambda answer: self._on_finished(image_id, *answer))

    def _start(self, work, image_id: int, on_result) -> None:
        """One job on this loader's pool; a failure is reported for ``image_id``."""
        worker = Worker.call(work, name="Showing the image", pool=self._pool, owner=self)
        worker.returned.connect(on_result)
        worker.errored.connect(lambda message: self._on_failed(image_id, message))
        self._workers = {running for running in self._workers if not running.has_ended}
        self._workers.add(worker)
        worker.start()

    def _on_finished(self, image_id: int, display: DisplayImage, shown: ShownImage,
                     aids: ViewAids) -> None:
        if self._in_flight.get(image_id) == aids:
            del self._in_flight[image_id]
        entry = self._cache.setdefault(image_id, _Entry())
        entry.display = display
        if aids == self.aids:
            entry.shown, entry.shown_aids = shown, aids
        self._cache.move_to_end(image_id)
        while len(self._cache) > self._cache_size:
            oldest = next(iter(self._cache))
            if oldest == self._wanted:
                self._cache.move_to_end(oldest)
                continue
            del self._cache[oldest]
        if image_id != self._wanted:
            return
        if aids == self.aids:
            self.ready.emit(image_id, display, shown)
        else:  # the aids changed while this was rendering
            self._submit(image_id)

    def _on_detail(self, image_id: int, image, aids: ViewAids) -> None:
        if self._detail_in_flight == (image_id, aids):
            self._detail_in_flight = None
        if image_id == self._wanted and aids == self.aids:
            self._detail = (image_id, aids, image)
            self.detailReady.emit(image_id, image)

    def _on_failed(self, image_id: int, message: str) -> None:
        self._in_flight.pop(image_id, None)
        if image_id == self._wanted:
            self.failed.emit(image_id, message)
