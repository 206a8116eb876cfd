"""Scene items of the fundus canvas: the landmark markers and the region overlay.

The scene is in original image pixels. The region overlay is a clipping parent (image rectangle
∩ field of view, `geometry.md`: pixels outside the FOV belong to no region) holding eight path
items whose shapes are fixed in the landmarks' frame; moving a landmark only replaces their
common QTransform (see ``region_shapes``).
"""
from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import (QGraphicsItem, QGraphicsPathItem, QGraphicsSimpleTextItem,
                               QStyleOptionGraphicsItem, QWidget)

from ui.region_shapes import (FRAME_UNIT, LABEL_ANCHORS, LandmarkFrame, display_name, extent_for,
                              region_paths_in_frame)

OUTLINE = QColor(255, 255, 255, 170)
OUTLINE_HOVER = QColor(255, 255, 255, 255)
DISC_COLOUR = QColor("#ffd54f")
FOVEA_COLOUR = QColor("#4fc3f7")
FILL_ALPHA = 90  # translucent enough to keep the lesion underneath visible


class LandmarkMarker(QGraphicsItem):
    """A draggable cross-hair that keeps its size on screen at any zoom."""

    SIZE = 11.0

    def __init__(self, kind: str, on_moved: Callable[[], None], on_released: Callable[[], None]):
        super().__init__()
        self.kind = kind  # "disc" | "fovea"
        self._on_moved, self._on_released = on_moved, on_released
        self._colour = DISC_COLOUR if kind == "disc" else FOVEA_COLOUR
        self.setFlags(QGraphicsItem.GraphicsItemFlag.ItemIsMovable
                      | QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations
                      | QGraphicsItem.GraphicsItemFlag.ItemSendsGeometryChanges)
        self.setCursor(Qt.CursorShape.SizeAllCursor)
        self.setZValue(20)
        self.setToolTip("Optic disc centre: drag to move" if kind == "disc"
                        else "Fovea: drag to move")

    def boundingRect(self) -> QRectF:
        s = self.SIZE + 3
        return QRectF(-s, -s, 2 * s, 2 * s)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        s = self.SIZE
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        for colour, width in ((QColor(0, 0, 0, 160), 4.0), (self._colour, 2.0)):
            painter.setPen(QPen(colour, width))
            painter.drawLine(QPointF(-s, 0), QPointF(-3, 0))
            painter.drawLine(QPointF(3, 0), QPointF(s, 0))
            painter.drawLine(QPointF(0, -s), QPointF(0, -3))
            painter.drawLine(QPointF(0, 3), QPointF(0, s))
            if self.kind == "disc":
                painter.drawEllipse(QPointF(0, 0), s - 3, s - 3)

    def itemChange(self, change, value):
        if change == QGraphicsItem.GraphicsItemChange.ItemPositionHasChanged:
            self._on_moved()
        return super().itemChange(change, value)

    def mouseReleaseEvent(self, event) -> None:
        super().mouseReleaseEvent(event)
        self._on_released()


class RegionOverlay(QGraphicsPathItem):
    """Clip (image ∩ FOV) holding the eight region outlines, their numbers and fills."""

    def __init__(self) -> None:
        super().__init__()
        self.setPen(QPen(Qt.PenStyle.NoPen))
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemClipsChildrenToShape)
        self.setZValue(10)
        self._extent = 0.0
        self._image_size = (1, 1)
        self._clip = QPainterPath()
        self.frame: LandmarkFrame | None = None
        self._fills: dict[int, QColor] = {}
        self._hovered = 0
        self.regions: dict[int, QGraphicsPathItem] = {}
        self.numbers: dict[int, QGraphicsSimpleTextItem] = {}
        font = QFont()
        font.setBold(True)
        font.setPointSizeF(11)
        for code in range(1, 9):
            item = QGraphicsPathItem(self)
            item.setPen(self._pen(OUTLINE, 1.4))
            self.regions[code] = item
            number = QGraphicsSimpleTextItem(str(code), self)
            number.setFont(font)
            number.setBrush(QColor(255, 255, 255, 230))
            number.setPen(QPen(QColor(0, 0, 0, 200), 0.8))
            number.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
            number.setZValue(3)
            self.numbers[code] = number
        self.setVisible(False)

    @staticmethod
    def _pen(colour: QColor, width: float) -> QPen:
        pen = QPen(colour, width)
        pen.setCosmetic(True)  # screen pixels, whatever the zoom
        return pen

    def set_image(self, width: int, height: int, fov: tuple[float, float, float] | None) -> None:
        self._image_size = (width, height)
        clip = QPainterPath()
        clip.addRect(QRectF(0, 0, width, height))
        if fov is not None:
            circle = QPainterPath()
            circle.addEllipse(QPointF(fov[0], fov[1]), fov[2], fov[2])
            clip = clip.intersected(circle)
        self._clip = clip
        self.setPath(clip)

    def set_frame(self, frame: LandmarkFrame | None) -> None:
        """Move the regions to new landmarks: only transforms and label positions change."""
        self.frame = frame
        if frame is None or frame.distance < 1.0:
            self.setVisible(False)
            return
        extent = extent_for(frame, *self._image_size)
        if extent != self._extent:
            self._extent = extent
            for code, path in region_paths_in_frame(extent).items():
                self.regions[code].setPath(path)
        transform = frame.to_image()
        for code, item in self.regions.items():
            item.setTransform(transform)
            label = self.numbers[code]
            label.setVisible(False)
            for a, b in LABEL_ANCHORS[code]:  # the first anchor inside the image and FOV
                anchor = transform.map(QPointF(a * FRAME_UNIT, b * FRAME_UNIT))
                if self._clip.contains(anchor):
                    label.setPos(anchor)
                    label.setVisible(True)
                    break
        self.setVisible(True)

    def set_fills(self, fills: dict[int, QColor]) -> None:
        """Chosen regions: a translucent fill and an outline in the current finding's colour."""
        self._fills = dict(fills)
        for code, item in self.regions.items():
            colour = fills.get(code)
            if colour is None:
                item.setBrush(QBrush(Qt.BrushStyle.NoBrush))
            else:
                item.setBrush(QColor(colour.red(), colour.green(), colour.blue(), FILL_ALPHA))
        self._restyle()

    def set_hover(self, code: int) -> None:
        self._hovered = code
        self._restyle()

    def _restyle(self) -> None:
        for code, item in self.regions.items():
            if code == self._hovered:
                item.setPen(self._pen(OUTLINE_HOVER, 3.0))
            elif code in self._fills:
                item.setPen(self._pen(self._fills[code], 2.5))
            else:
                item.setPen(self._pen(OUTLINE, 1.4))
            item.setZValue(2 if code == self._hovered else 1 if code in self._fills else 0)

    def inside(self, point: QPointF) -> bool:
        return self._clip.contains(point)


class HoverLabel(QGraphicsSimpleTextItem):
    """The hovered region's number and name, next to the cursor, on a dark plate."""

    def __init__(self) -> None:
        super().__init__()
        font = QFont()
        font.setPointSizeF(11)
        font.setBold(True)
        self.setFont(font)
        self.setBrush(QColor("white"))
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.setZValue(30)
        self.setVisible(False)

    def show_region(self, code: int, at: QPointF) -> None:
        self.setText(f"{code}  {display_name(code)}")
        self.setPos(at)
        self.setVisible(True)

    def paint(self, painter: QPainter, option, widget=None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(20, 20, 20, 200))
        painter.drawRoundedRect(super().boundingRect().adjusted(-5, -3, 5, 3), 4, 4)
        super().paint(painter, option, widget)

    def boundingRect(self) -> QRectF:
        return super().boundingRect().adjusted(-6, -4, 6, 4)
