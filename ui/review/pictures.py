"""A photo with the eight regions drawn the workstation's way, as a still picture.

The shapes are the canvas's own (``ui.region_shapes``: built once in the landmarks' frame, moved
by one QTransform) and the look follows ``ui.canvas_items.RegionOverlay``: chosen regions filled
translucently in the finding's colour, the rest outlined, all clipped to image ∩ field of view.
"""
from __future__ import annotations

from collections.abc import Set as AbstractSet

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QImage, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from storage.labels import Landmarks
from ui.canvas_items import DISC_COLOUR, FILL_ALPHA, FOVEA_COLOUR, OUTLINE, OUTLINE_SHADOW
from ui.region_shapes import LandmarkFrame, extent_for, fov_clip_path, number_position, region_paths_in_frame, xy_pair

MARKER = 6.0  # landmark cross half-size, picture pixels


def _cosmetic(colour: QColor, width: float, style=Qt.PenStyle.SolidLine) -> QPen:
    pen = QPen(colour, width, style)
    pen.setCosmetic(True)
    return pen


def regions_picture(photo: QImage, scale: float, fov: tuple[float, float, float] | None,
                    landmarks: Landmarks | None, fills: dict[int, QColor],
                    dashed: AbstractSet[int] = frozenset(), dashed_colour: QColor | None = None,
                    max_side: int | None = None) -> QImage:
    """``photo`` (display copy, ``scale`` original pixels per pixel) with regions and landmarks.

    ``fills``: region code -> colour of the chosen regions; ``dashed``: regions hatched with a
    dashed outline (another reader's choice shown for comparison; in ``dashed_colour``, default the first fill's
    colour or white). ``max_side`` shrinks the photo first. Without landmarks only the photo comes back.
    """
    dashed_colour = dashed_colour or next(iter(fills.values()), QColor("white"))
    if max_side and max(photo.width(), photo.height()) > max_side:
        # Drawn at the size it is shown: hairlines and numbers drawn larger and shrunk on
        # screen would fade into dashes.
        shrunk = photo.scaled(max_side, max_side, Qt.AspectRatioMode.KeepAspectRatio,
                              Qt.TransformationMode.SmoothTransformation)
        scale *= photo.width() / shrunk.width()
        photo = shrunk
    picture = photo.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)
    if landmarks is None:
        return picture
    width, height = photo.width() * scale, photo.height() * scale
    frame = LandmarkFrame(xy_pair(landmarks.disc), xy_pair(landmarks.fovea))
    if frame.distance < 1.0:
        return picture
    painter = QPainter(picture)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.scale(1.0 / scale, 1.0 / scale)               # draw in original pixels
    clip = fov_clip_path(width, height, fov)
    painter.setClipPath(clip)
    to_image = frame.to_image()
    placed = {code: to_image.map(path)
              for code, path in region_paths_in_frame(extent_for(frame, int(width), int(height))).items()}
    painter.setBrush(Qt.BrushStyle.NoBrush)
    for colour, offset in ((OUTLINE_SHADOW, 1.0), (OUTLINE, 0.0)):
        painter.save()
        painter.translate(0, offset * scale)
        painter.setPen(_cosmetic(colour, 1.0))
        for code, path in placed.items():
            if code not in fills and code not in dashed:
                painter.drawPath(path)
        painter.restore()
    for code, colour in fills.items():
        painter.setBrush(QColor(colour.red(), colour.green(), colour.blue(), FILL_ALPHA))
        painter.setPen(_cosmetic(colour, 2.5))
        painter.drawPath(placed[code])
    for code in set(dashed) - set(fills):
        painter.setBrush(QBrush(dashed_colour, Qt.BrushStyle.BDiagPattern))
        painter.setPen(_cosmetic(dashed_colour, 1.5, Qt.PenStyle.DashLine))
        painter.drawPath(placed[code])
    painter.setBrush(Qt.BrushStyle.NoBrush)
    _numbers(painter, to_image, clip, scale, placed)
    painter.setClipping(False)
    for (x, y), colour in ((landmarks.disc, DISC_COLOUR), (landmarks.fovea, FOVEA_COLOUR)):
        s = MARKER * scale
        for pen in (_cosmetic(QColor(20, 20, 20), 3.5), _cosmetic(colour, 1.8)):
            painter.setPen(pen)
            painter.drawLine(QPointF(x - s, y), QPointF(x + s, y))
            painter.drawLine(QPointF(x, y - s), QPointF(x, y + s))
    painter.end()
    return picture


def _numbers(painter: QPainter, to_image, clip: QPainterPath, scale: float,
             placed: dict[int, QPainterPath]) -> None:
    """Each visible region's number (``ui.region_shapes.number_position``)."""
    font = QFont()
    font.setBold(True)
    font.setPixelSize(11)
    painter.save()
    painter.resetTransform()
    painter.setFont(font)
    for code, path in placed.items():
        point = number_position(code, path, to_image, clip)
        if point is None:
            continue
        at = QPointF(point.x() / scale - 3, point.y() / scale + 4)
        painter.setPen(QColor(0, 0, 0, 200))
        painter.drawText(at + QPointF(1, 1), str(code))
        painter.setPen(QColor(255, 255, 255, 230))
        painter.drawText(at, str(code))
    painter.restore()


class PictureView(QWidget):
    """Shows one QImage scaled to fit, aspect kept; a line of text when there is none."""

    def __init__(self, parent: QWidget | None = None, minimum: int = 160):
        super().__init__(parent)
        self.image: QImage | None = None
        self.text = ""
        self.setMinimumSize(minimum, int(minimum * 0.75))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_image(self, image: QImage | None, text: str = "") -> None:
        self.image, self.text = image, text
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(320, 240)

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(18, 18, 20))
        if self.image is not None and not self.image.isNull():
            size = self.image.size().scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
            x, y = (self.width() - size.width()) // 2, (self.height() - size.height()) // 2
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawImage(QRectF(x, y, size.width(), size.height()), self.image)
        elif self.text:
            painter.setPen(QColor(200, 200, 200))
            painter.drawText(self.rect().adjusted(8, 8, -8, -8),
                             Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.text)
        painter.end()
