"""Scene items of the fundus canvas: the landmark markers and the region overlay.

The scene is in original image pixels. The region overlay draws eight paths whose shapes are
fixed in the landmarks' frame, clipped to image rectangle ∩ field of view (`docs/geometry.md`: pixels
outside the FOV belong to no region); moving a landmark only replaces their common QTransform
(see ``region_shapes``).
"""
from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QPainter, QPainterPath, QPen, QTransform
from PySide6.QtWidgets import QGraphicsItem, QGraphicsSimpleTextItem, QStyleOptionGraphicsItem, QWidget

from ui.region_shapes import (
    LandmarkFrame,
    display_name,
    extent_for,
    fov_clip_path,
    number_position,
    region_paths_in_frame,
)

OUTLINE = QColor(236, 236, 236)  # opaque: translucent hairlines take a slow path
OUTLINE_SHADOW = QColor(30, 24, 20)
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
                      | QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
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
        for colour, width in ((QColor(20, 20, 20), 4.0), (self._colour, 2.0)):
            painter.setPen(QPen(colour, width))
            painter.drawLine(QPointF(-s, 0), QPointF(-3, 0))
            painter.drawLine(QPointF(3, 0), QPointF(s, 0))
            painter.drawLine(QPointF(0, -s), QPointF(0, -3))
            painter.drawLine(QPointF(0, 3), QPointF(0, s))
            if self.kind == "disc":
                painter.drawEllipse(QPointF(0, 0), s - 3, s - 3)

    # Not itemChange(): overriding it in PySide6 6.12 leaks a reference to None per call and
    # crashed the interpreter after a few hundred moves. The drag itself is what must redraw.
    def mouseMoveEvent(self, event) -> None:
        super().mouseMoveEvent(event)
        self._on_moved()

    def mouseReleaseEvent(self, event) -> None:
        super().mouseReleaseEvent(event)
        self._on_released()


class RegionOverlay(QGraphicsItem):
    """The eight region outlines and fills, clipped to image ∩ FOV, and their numbers.

    One item paints all eight paths (a clipping parent per path cost more than the drawing);
    the numbers are child items that keep their size on screen.
    """

    def __init__(self) -> None:
        super().__init__()
        self.setZValue(10)
        self._extent = 0.0
        self._image_size = (1, 1)
        self._clip = QPainterPath()
        self._paths: dict[int, QPainterPath] = {}    # in the landmarks' frame
        self._placed: dict[int, QPainterPath] = {}  # the same in image pixels
        self.frame: LandmarkFrame | None = None
        self.transform_to_image = QTransform()
        self._fills: dict[int, QColor] = {}
        self._suggested: set[int] = set()
        self._suggested_colour = QColor("white")
        self._hatched: set[int] = set()
        self._hatched_colour = QColor("white")
        self._placed_for: LandmarkFrame | None = None   # the frame _placed and the numbers are for
        self._outlined: set[int] = set()
        self._outlined_colour = QColor("white")
        self._hovered = 0
        self.numbers: dict[int, QGraphicsSimpleTextItem] = {}
        font = QFont()
        font.setBold(True)
        font.setPointSizeF(11)
        for code in range(1, 9):
            number = QGraphicsSimpleTextItem(str(code), self)
            number.setFont(font)
            number.setBrush(QColor(255, 255, 255, 230))
            number.setPen(QPen(QColor(0, 0, 0, 200), 0.8))
            number.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
            box = number.boundingRect()   # centred on its anchor (screen pixels): it hung down-right of it
            number.setTransform(QTransform.fromTranslate(-box.width() / 2, -box.height() / 2))
            self.numbers[code] = number
        self.setVisible(False)

    @staticmethod
    def _pen(colour: QColor, width: float) -> QPen:
        pen = QPen(colour, width)
        pen.setCosmetic(True)  # screen pixels, whatever the zoom
        return pen

    def boundingRect(self) -> QRectF:
        return self._clip.boundingRect()

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        if self.frame is None:
            return
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setClipPath(self._clip, Qt.ClipOperation.IntersectClip)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        # Plain outlines are opaque 1-pixel cosmetic lines, which Qt draws with its fast hairline
        # stroker (0.2 ms for all eight; 6.5 ms at 1.4 px, and translucent ones are as slow).
        # A dark copy one screen pixel lower keeps them visible on the bright disc.
        plain = [code for code in self._placed if code not in self._fills
                 and code != self._hovered]
        to_screen = painter.transform()
        painter.setTransform(to_screen * QTransform.fromTranslate(0, 1))
        painter.setPen(self._pen(OUTLINE_SHADOW, 1.0))
        for code in plain:
            painter.drawPath(self._placed[code])
        painter.setTransform(to_screen)
        painter.setPen(self._pen(OUTLINE, 1.0))
        for code in plain:
            painter.drawPath(self._placed[code])
        # Chosen regions (few), then the hovered one, with full-width outlines.
        for code in sorted(self._fills, key=lambda c: c == self._hovered):
            colour = self._fills[code]
            painter.setBrush(QColor(colour.red(), colour.green(), colour.blue(), FILL_ALPHA))
            painter.setPen(self._pen(colour, 2.5))
            painter.drawPath(self._placed[code])
        if self._hatched:  # regions other readers chose (review): hatched, dashed outline
            pen = self._pen(self._hatched_colour, 1.5)
            pen.setStyle(Qt.PenStyle.DashLine)
            painter.setPen(pen)
            painter.setBrush(QBrush(self._hatched_colour, Qt.BrushStyle.BDiagPattern))
            for code in self._hatched - set(self._fills):
                if code in self._placed:
                    painter.drawPath(self._placed[code])
        if self._suggested:  # the model's regions for the current finding, not yet chosen
            pen = self._pen(self._suggested_colour, 2.0)
            pen.setStyle(Qt.PenStyle.DashLine)
            painter.setPen(pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            for code in self._suggested - set(self._fills):
                painter.drawPath(self._placed[code])
        if self._outlined:  # a reviewer's drafted answer (review): dashed over everything else
            painter.setBrush(Qt.BrushStyle.NoBrush)
            for colour, width, style in ((OUTLINE_SHADOW, 4.0, Qt.PenStyle.SolidLine),
                                         (self._outlined_colour, 2.0, Qt.PenStyle.DashLine)):
                pen = self._pen(colour, width)
                pen.setStyle(style)   # dashes on a solid dark line: visible on any background
                painter.setPen(pen)
                for code in self._outlined & set(self._placed):
                    painter.drawPath(self._placed[code])
        if self._hovered in self._placed:
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.setPen(self._pen(OUTLINE_HOVER, 3.0))
            painter.drawPath(self._placed[self._hovered])

    def set_image(self, width: int, height: int, fov: tuple[float, float, float] | None) -> None:
        self.prepareGeometryChange()
        self._image_size = (width, height)
        self._clip = fov_clip_path(width, height, fov)
        self._placed_for = None
        if self.frame is not None:
            self.set_frame(self.frame)

    def set_frame(self, frame: LandmarkFrame | None) -> None:
        """Move the regions to new landmarks: only a transform and label positions change."""
        self.frame = frame
        if frame is None or frame.distance < 1.0:
            self.setVisible(False)
            return
        if frame == self._placed_for:   # the same landmarks again (review: readers who agree on them)
            self.setVisible(True)
            return
        self._placed_for = frame
        extent = extent_for(frame, *self._image_size)
        if extent != self._extent:
            self._extent = extent
            self._paths = region_paths_in_frame(extent)
        transform = self.transform_to_image = frame.to_image()
        self._placed = {code: transform.map(path) for code, path in self._paths.items()}
        for code, label in self.numbers.items():
            anchor = number_position(code, self._placed[code], transform, self._clip)
            label.setVisible(anchor is not None)
            if anchor is not None:
                label.setPos(anchor)
        self.setVisible(True)
        self.update()

    def set_fills(self, fills: dict[int, QColor]) -> None:
        """Chosen regions: a translucent fill and an outline in the current finding's colour."""
        self._fills = dict(fills)
        self.update()

    def set_suggested(self, codes: set[int], colour: QColor) -> None:
        """Regions the model suggests for the current finding: dashed, in its colour."""
        self._suggested, self._suggested_colour = set(codes), colour
        self.update()

    def set_hatched(self, codes: set[int], colour: QColor) -> None:
        """Regions shown for comparison (another reader's choice): hatched and dashed, in its colour."""
        self._hatched, self._hatched_colour = set(codes), colour
        self.update()

    def set_outlined(self, codes: set[int], colour: QColor) -> None:
        """Regions of a reviewer's draft: a thick dashed outline over fills and hatches."""
        self._outlined, self._outlined_colour = set(codes), colour
        self.update()

    def set_hover(self, code: int) -> None:
        self._hovered = code
        self.update()

    def fills(self) -> dict[int, QColor]:
        return dict(self._fills)

    def hatched(self) -> set[int]:
        """The regions shown hatched for comparison."""
        return set(self._hatched)

    def suggested(self) -> set[int]:
        """The regions drawn dashed as the model's suggestion."""
        return set(self._suggested)

    def outlined(self) -> set[int]:
        """Regions of the reviewer's draft (dashed over everything)."""
        return set(self._outlined)

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
