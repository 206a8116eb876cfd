"""Decoding off the GUI thread, a small LRU cache and prefetch of the next image in the queue.

The GUI thread never decodes: it asks for an image and gets ``ready`` when the display copy is
in memory (at once when the image is cached, e.g. prefetched while the reader looked at the
previous one). View aids are rendered in the same worker pool from the cached decode, so moving a
slider never blocks the window either.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from storage.errors import OctantError
from ui.background import track_pool
from ui.assist import render_overlay
from annotate.services.photos import read_fundus
from ui.display_image import (DisplayImage, ShownImage, ViewAids, apply_view_aids,
                              decode_for_display, render_shown, to_qimage)

CACHE_SIZE = 4  # current, previous, next and one spare: ~12 MB each at 2144 × 1424 display size


@dataclass
class _Entry:
    display: DisplayImage | None = None
    shown: ShownImage | None = None
    shown_aids: ViewAids | None = None


class _JobSignals(QObject):
    finished = Signal(int, object, object, object)  # image_id, DisplayImage, ShownImage, ViewAids
    failed = Signal(int, str)
    overlay = Signal(int, str, object)              # image_id, overlay key, QImage
    detail = Signal(int, object, object)            # image_id, full-resolution QImage, ViewAids


class _RenderJob(QRunnable):
    """Decode (unless already decoded) and apply the view aids: pure work, no Qt widgets."""

    def __init__(self, signals: _JobSignals, image_id: int, path: Path,
                 size: tuple[int, int] | None, display: DisplayImage | None, aids: ViewAids,
                 fit_size: tuple[int, int] | None):
        super().__init__()
        self.signals, self.image_id, self.path, self.size = signals, image_id, path, size
        self.display, self.aids, self.fit_size = display, aids, fit_size

    def run(self) -> None:
        try:
            display = self.display or decode_for_display(self.path, self.size)
            shown = render_shown(display.bgr, self.aids, self.fit_size)
            self.signals.finished.emit(self.image_id, display, shown, self.aids)
        except OctantError as error:
            self.signals.failed.emit(self.image_id, str(error))
        except Exception as error:  # a worker must never take the window down
            self.signals.failed.emit(self.image_id, f"Could not show this image ({error}).")


class _OverlayJob(QRunnable):
    def __init__(self, signals: "_JobSignals", image_id: int, key: str, layers: list,
                 size: tuple[int, int]):
        super().__init__()
        self.signals, self.image_id, self.key, self.layers, self.size = (signals, image_id, key,
                                                                          layers, size)

    def run(self) -> None:
        try:
            image = render_overlay(self.layers, self.size)
        except Exception as error:  # a damaged mask must not take the window down
            self.signals.failed.emit(self.image_id, f"Could not draw the model overlay ({error}).")
            return
        self.signals.overlay.emit(self.image_id, self.key, image)


class _DetailJob(QRunnable):
    """The photo at full resolution, for zooms beyond the display copy (1:1 on microaneurysms)."""

    def __init__(self, signals: "_JobSignals", image_id: int, path: Path, aids: ViewAids):
        super().__init__()
        self.signals, self.image_id, self.path, self.aids = signals, image_id, path, aids

    def run(self) -> None:
        try:
            bgr = read_fundus(self.path)
            shown = apply_view_aids(bgr, self.aids) if self.aids.active else bgr
            self.signals.detail.emit(self.image_id, to_qimage(shown), self.aids)
        except OctantError as error:
            self.signals.failed.emit(self.image_id, str(error))
        except Exception as error:  # a worker must never take the window down
            self.signals.failed.emit(self.image_id, f"Could not show this image ({error}).")


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
        self._pool = track_pool(QThreadPool(self))   # joined at quit (ui.background)
        self._pool.setMaxThreadCount(threads)
        self._signals = _JobSignals(self)
        self._signals.finished.connect(self._on_finished)
        self._signals.failed.connect(self._on_failed)
        self._signals.overlay.connect(self.overlayReady)
        self._signals.detail.connect(self._on_detail)
        # One full-resolution copy at a time (≈ 50 MB for 4288 × 2848), for the open image only.
        self._detail: tuple[int, ViewAids, object] | None = None
        self._detail_in_flight: tuple[int, ViewAids] | None = None
        self._cache: OrderedDict[int, _Entry] = OrderedDict()
        self._cache_size = cache_size
        self._in_flight: dict[int, ViewAids] = {}
        self._sources: dict[int, tuple[Path, tuple[int, int] | None]] = {}
        self._wanted: int | None = None
        self.aids = ViewAids()
        self.prefetch_enabled = True
        self.fit_size: tuple[int, int] | None = None
        self._closed = False

    # --- asking -------------------------------------------------------------------------------
    def request(self, image_id: int, path: Path, size: tuple[int, int] | None = None) -> None:
        """Show ``image_id`` next; emits ``ready`` now if it is cached with the current aids."""
        if self._detail is not None and self._detail[0] != image_id:
            self._detail = None
        self._wanted = image_id
        self._sources[image_id] = (Path(path), size)
        entry = self._cache.get(image_id)
        if entry and entry.shown is not None and entry.shown_aids == self.aids:
            self._cache.move_to_end(image_id)
            self.ready.emit(image_id, entry.display, entry.shown)
            return
        self._submit(image_id)

    def prefetch(self, image_id: int, path: Path, size: tuple[int, int] | None = None) -> None:
        if not self.prefetch_enabled:
            return
        self._sources[image_id] = (Path(path), size)
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
        self._pool.start(_DetailJob(self._signals, image_id, self._sources[image_id][0],
                                    self.aids))

    def request_overlay(self, image_id: int, key: str, layers: list,
                        size: tuple[int, int]) -> None:
        """Compose model masks off the GUI thread; ``overlayReady`` answers."""
        if not self._closed:
            self._pool.start(_OverlayJob(self._signals, image_id, key, layers, size))

    def clear(self) -> None:
        self._cache.clear()
        self._wanted = None

    def wait(self, msecs: int = 5000) -> bool:
        return self._pool.waitForDone(msecs)

    def shutdown(self, msecs: int = 5000) -> None:
        """No new work, queued work dropped; wait for the running jobs (one decode each)."""
        self._closed = True
        self._pool.clear()
        self._pool.waitForDone(msecs)

    # --- work ---------------------------------------------------------------------------------
    def _submit(self, image_id: int) -> None:
        if self._closed or self._in_flight.get(image_id) == self.aids:
            return
        path, size = self._sources[image_id]
        entry = self._cache.get(image_id)
        self._in_flight[image_id] = self.aids
        job = _RenderJob(self._signals, image_id, path, size,
                         entry.display if entry else None, self.aids, self.fit_size)
        self._pool.start(job)

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
