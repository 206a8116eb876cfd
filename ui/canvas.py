"""The fundus canvas: zoom around the cursor, pan, fit, 1:1, landmarks and the eight regions.

Scene coordinates are original image pixels (what the database stores). The display copy is a
reduced decode drawn stretched over the original-pixel rectangle, so nothing else needs to know
its scale. A left click toggles the region under the cursor; a left drag (or a middle or right
drag) pans; the markers are dragged directly. With no landmarks yet, the first two clicks place
the disc and then the fovea.
"""
from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, QRect, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QTransform
from PySide6.QtWidgets import QFrame, QGraphicsScene, QGraphicsView

from annotate.fov import FieldOfView
from annotate.geometry import region_at
from storage.errors import GeometryError
from ui.canvas_items import HoverLabel, LandmarkMarker, RegionOverlay
from ui.display_image import DisplayImage, ShownImage
from ui.region_shapes import LandmarkFrame

PAN_THRESHOLD = 4        # screen pixels a press may move and still count as a click
WHEEL_STEP = 1.0015      # zoom factor per 1/8° of wheel: 120 units (one notch) ≈ ×1.2
MIN_ZOOM, MAX_ZOOM = 0.02, 16.0
BACKGROUND = QColor("#101214")


class FundusCanvas(QGraphicsView):
    regionClicked = Signal(int)              # region code 1..8 under a left click
    landmarksChanged = Signal(object, object)  # (disc, fovea) after a placement or a drag
    placingChanged = Signal(str)             # "disc", "fovea" or "" while landmarks are placed
    regionHovered = Signal(int)              # 0 when the cursor leaves every region
    resized = Signal()
    detailWanted = Signal(int)  # zoomed in beyond the display copy: full resolution, please

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setRenderHints(QPainter.RenderHint.Antialiasing
                            | QPainter.RenderHint.SmoothPixmapTransform)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)  # see zoom_by
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.FullViewportUpdate)
        self.setMouseTracking(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        # The photo is the background, cached at the current zoom: a landmark drag then only
        # blits it and redraws the region paths (≤ 16 ms); zoom and pan re-render it.
        self.setCacheMode(QGraphicsView.CacheModeFlag.CacheBackground)
        self._photo = ShownImage(QImage())
        self._overlay_image = QImage()  # model masks, drawn over the photo
        self._overlay_rect: QRectF | None = None  # where it goes (original pixels); None: the whole photo
        self._detail = QImage()         # full resolution, only while zoomed in that far
        self._message = ""              # why there is no photo (unreadable file)
        self._detail_asked = False
        self.overlay = RegionOverlay()
        self.disc_marker = LandmarkMarker("disc", self._on_marker_moved, self._on_marker_released)
        self.fovea_marker = LandmarkMarker("fovea", self._on_marker_moved,
                                           self._on_marker_released)
        self._hover = HoverLabel()
        for item in (self.overlay, self.disc_marker, self.fovea_marker, self._hover):
            self.scene().addItem(item)
        self.disc_marker.setVisible(False)
        self.fovea_marker.setVisible(False)
        self.image_id: int | None = None
        self.image_size: tuple[int, int] | None = None
        self.fov: FieldOfView | None = None
        self.placing = ""
        self._fit_mode = True
        self._press: QPointF | None = None
        self._panning = False
        self._hovered = 0

    # --- content ------------------------------------------------------------------------------
    def begin_image(self, image_id: int, size: tuple[int, int],
                    fov: tuple[float, float, float] | None) -> None:
        """A new image: scene, clip and view are set at once; the photo follows when decoded."""
        self.image_id = image_id
        self.image_size = size
        self.fov = FieldOfView(*fov) if fov is not None else None
        w, h = size
        self._overlay_image = QImage()
        self._detail, self._detail_asked = QImage(), False
        self._message = ""
        self._set_photo(ShownImage(QImage()))
        self.scene().setSceneRect(QRectF(-0.05 * w, -0.05 * h, 1.1 * w, 1.1 * h))
        self.overlay.set_image(w, h, fov)
        self._set_hover(0, QPointF())
        if self._fit_mode:
            self.fit()

    def show_image(self, image_id: int, display: DisplayImage, shown: ShownImage) -> None:
        """The decoded display copy (or a re-render with other view aids) of the open image."""
        if image_id != self.image_id:
            return
        self._detail, self._detail_asked = QImage(), False  # other aids: the loader redoes it
        self._set_photo(shown)
        self._check_detail()

    def show_message(self, image_id: int, text: str) -> None:
        """Instead of a photo that cannot be read: the reason, on the canvas."""
        if image_id == self.image_id:
            self._message = text
            self.resetCachedContent()
            self.viewport().update()

    def set_detail(self, image_id: int, image: QImage) -> None:
        if image_id == self.image_id:
            self._detail = image
            self.resetCachedContent()
            self.viewport().update()

    def _device_pixels_across(self) -> float:
        """How many screen pixels the photo's width spans at the current zoom."""
        w = self.image_size[0] if self.image_size else 0
        return w * self.zoom() * (self.devicePixelRatioF() or 1.0)

    def _check_detail(self) -> None:
        full = self._photo.full
        if (not full.isNull() and self._detail.isNull() and not self._detail_asked
                and self.image_size is not None and full.width() < self.image_size[0]
                and self._device_pixels_across() > 1.05 * full.width()):
            self._detail_asked = True
            self.detailWanted.emit(self.image_id)

    def set_overlay(self, image: QImage | None, where: QRectF | None = None) -> None:
        """Model masks over the photo (display size; stretched like the photo), or none.

        ``where``: the rectangle it covers in original pixels (an activation map of the photo's
        field-of-view crop); the whole photo when None.
        """
        self._overlay_image = image if image is not None else QImage()
        self._overlay_rect = where
        self.resetCachedContent()
        self.viewport().update()

    def has_overlay(self) -> bool:
        return not self._overlay_image.isNull()

    @property
    def overlay_rect(self) -> QRectF | None:
        """Where the overlay goes in original pixels (None: over the whole photo)."""
        return self._overlay_rect

    def has_photo(self) -> bool:
        return not self._photo.full.isNull()

    @property
    def photo_size(self) -> tuple[int, int] | None:
        """The shown display copy's size in pixels (None before a photo arrives)."""
        full = self._photo.full
        return None if full.isNull() else (full.width(), full.height())

    @property
    def detail_size(self) -> tuple[int, int] | None:
        """The full-resolution copy's size while zoomed in that far, else None."""
        return None if self._detail.isNull() else (self._detail.width(), self._detail.height())

    def fit_size(self) -> tuple[int, int]:
        """The viewport in device pixels: the size the loader pre-shrinks photos to."""
        ratio = self.devicePixelRatioF() or 1.0
        size = self.viewport().size()
        return max(1, round(size.width() * ratio)), max(1, round(size.height() * ratio))

    def _set_photo(self, photo: ShownImage) -> None:
        self._photo = photo
        self.resetCachedContent()
        self.viewport().update()

    def drawBackground(self, painter: QPainter, rect: QRectF | QRect) -> None:
        painter.fillRect(rect, BACKGROUND)
        if self._message and self.image_size is not None:
            painter.setPen(QColor("#e0e0e0"))
            font = painter.font()
            font.setPointSizeF(font.pointSizeF() / max(self.zoom(), 1e-3))  # readable at any zoom
            painter.setFont(font)
            w, h = self.image_size
            painter.drawText(QRectF(0, 0, w, h),
                             int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap),
                             self._message)
        if self._photo.full.isNull() or self.image_size is None:
            return
        w, h = self.image_size
        # The smallest copy with enough pixels for this zoom: pre-shrunk, display, full.
        needed = self._device_pixels_across()
        fitted, image = self._photo.fitted, self._photo.full
        if fitted is not None and fitted.width() >= 0.98 * needed:
            image = fitted
        elif not self._detail.isNull() and image.width() < 0.98 * needed:
            image = self._detail
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.drawImage(QRectF(0, 0, w, h), image, QRectF(image.rect()))
        if not self._overlay_image.isNull():
            painter.drawImage(self._overlay_rect or QRectF(0, 0, w, h), self._overlay_image,
                              QRectF(self._overlay_image.rect()))

    def set_landmarks(self, disc: tuple[float, float] | None,
                      fovea: tuple[float, float] | None) -> None:
        """Show the markers and regions, or start placing (disc first) when there are none."""
        for marker, point in ((self.disc_marker, disc), (self.fovea_marker, fovea)):
            marker.setVisible(point is not None)
            if point is not None:
                marker.setPos(QPointF(*point))
        self._update_regions()
        self._set_placing("" if disc and fovea else ("fovea" if disc else "disc"))

    def landmarks(self) -> tuple[tuple[float, float], tuple[float, float]] | None:
        if not (self.disc_marker.isVisible() and self.fovea_marker.isVisible()):
            return None
        d, f = self.disc_marker.pos(), self.fovea_marker.pos()
        return (d.x(), d.y()), (f.x(), f.y())

    def set_fills(self, fills: dict[int, QColor]) -> None:
        self.overlay.set_fills(fills)

    def set_regions_visible(self, visible: bool) -> None:
        self.overlay.setOpacity(1.0 if visible else 0.0)

    def region_at(self, scene_point: QPointF) -> int:
        """Region code under a scene point (original pixels): 0 outside the image/FOV.

        Asks annotate.geometry, the same arithmetic that rasterises labels for training.
        """
        frame = self.overlay.frame
        if frame is None or not self.overlay.isVisible() or self.image_size is None:
            return 0
        w, h = self.image_size
        try:
            return region_at(frame.disc, frame.fovea, (scene_point.x(), scene_point.y()),
                             shape=(h, w), fov=self.fov)
        except GeometryError:
            return 0

    # --- zoom and pan -------------------------------------------------------------------------
    def fit(self) -> None:
        self._fit_mode = True
        if self.image_size:
            w, h = self.image_size
            self.fitInView(QRectF(0, 0, w, h), Qt.AspectRatioMode.KeepAspectRatio)

    def actual_size(self) -> None:
        """One original pixel per physical screen pixel (HiDPI aware)."""
        self._fit_mode = False
        centre = self.mapToScene(self.viewport().rect().center())
        ratio = self.devicePixelRatioF() or 1.0
        self.setTransform(QTransform.fromScale(1.0 / ratio, 1.0 / ratio))
        self.centerOn(centre)
        self._check_detail()

    def zoom(self) -> float:
        return self.transform().m11()

    def zoom_by(self, factor: float, at: QPoint | None = None) -> None:
        """Zoom keeping the photo point under ``at`` (viewport pixels; default centre) still."""
        factor = max(MIN_ZOOM / self.zoom(), min(MAX_ZOOM / self.zoom(), factor))
        at = at if at is not None else self.viewport().rect().center()
        fixed = self.mapToScene(at)
        self._fit_mode = False
        self.scale(factor, factor)
        drift = self.mapFromScene(fixed) - at
        h, v = self.horizontalScrollBar(), self.verticalScrollBar()
        h.setValue(h.value() + drift.x())
        v.setValue(v.value() + drift.y())
        self._check_detail()

    def wheelEvent(self, event) -> None:
        delta = event.angleDelta().y() or event.pixelDelta().y()
        if delta:
            self.zoom_by(WHEEL_STEP ** delta, event.position().toPoint())
        event.accept()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.resized.emit()
        if self._fit_mode:
            self.fit()

    # --- mouse --------------------------------------------------------------------------------
    def mousePressEvent(self, event) -> None:
        item = self.itemAt(event.position().toPoint())
        if isinstance(item, LandmarkMarker) and event.button() == Qt.MouseButton.LeftButton:
            super().mousePressEvent(event)
            return
        self._press = event.position()
        self._panning = event.button() != Qt.MouseButton.LeftButton
        if self._panning:
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
        event.accept()

    def mouseMoveEvent(self, event) -> None:
        if self._press is not None:
            delta = event.position() - self._press
            if self._panning or delta.manhattanLength() > PAN_THRESHOLD:
                if not self._panning:
                    self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
                self._panning = True
                self._fit_mode = False
                h, v = self.horizontalScrollBar(), self.verticalScrollBar()
                h.setValue(h.value() - round(delta.x()))
                v.setValue(v.value() - round(delta.y()))
                self._press = event.position()
            return
        super().mouseMoveEvent(event)
        self.hover_at(self.mapToScene(event.position().toPoint()))

    def mouseReleaseEvent(self, event) -> None:
        if self._press is None:
            super().mouseReleaseEvent(event)
            return
        was_click = not self._panning and event.button() == Qt.MouseButton.LeftButton
        self._press, self._panning = None, False
        self.viewport().unsetCursor()
        if was_click:
            self.click_at(self.mapToScene(event.position().toPoint()))

    def leaveEvent(self, event) -> None:
        self._set_hover(0, QPointF())
        super().leaveEvent(event)

    def hover_at(self, scene_point: QPointF) -> None:
        """The pointer over ``scene_point``: its region is highlighted and named, as on a mouse move."""
        self._set_hover(self.region_at(scene_point), scene_point)

    def clear_hover(self) -> None:
        self._set_hover(0, QPointF())

    def click_at(self, scene_point: QPointF) -> None:
        """A click in scene coordinates: place the next landmark, or toggle the region there."""
        if self.placing and self.image_size:
            w, h = self.image_size
            if not (0 <= scene_point.x() < w and 0 <= scene_point.y() < h):
                return
            marker = self.disc_marker if self.placing == "disc" else self.fovea_marker
            marker.setPos(scene_point)
            marker.setVisible(True)
            landmarks = self.landmarks()
            if landmarks is None:
                self._set_placing("fovea")
            else:
                self._set_placing("")
                self._update_regions()
                self.landmarksChanged.emit(*landmarks)
            return
        code = self.region_at(scene_point)
        if code:
            self.regionClicked.emit(code)

    # --- internals ----------------------------------------------------------------------------
    def _set_placing(self, placing: str) -> None:
        if placing != self.placing:
            self.placing = placing
            self.placingChanged.emit(placing)
        self.viewport().setCursor(Qt.CursorShape.CrossCursor if placing
                                  else Qt.CursorShape.ArrowCursor)

    def _set_hover(self, code: int, at: QPointF) -> None:
        if code:
            self._hover.show_region(code, at + QPointF(14 / max(self.zoom(), 1e-6), 0))
        else:
            self._hover.setVisible(False)
        if code != self._hovered:
            self._hovered = code
            self.overlay.set_hover(code)
            self.regionHovered.emit(code)

    def _update_regions(self) -> None:
        landmarks = self.landmarks()
        frame = LandmarkFrame(*landmarks) if landmarks else None
        self.overlay.set_frame(frame if frame and frame.distance >= 1.0 else None)

    def _on_marker_moved(self) -> None:
        if not self.placing:
            self._update_regions()

    def _on_marker_released(self) -> None:
        landmarks = self.landmarks()
        if landmarks and not self.placing:
            self.landmarksChanged.emit(*landmarks)
