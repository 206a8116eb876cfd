"""Activation-map gallery: the validation photos with the guided network's map laid over them.

The maps are drawn by ``models.findings.activation_maps`` (Son et al., Fig. 3); this module only lays them
out in Qt.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QGridLayout, QLabel, QScrollArea, QVBoxLayout, QWidget

from models.findings.activation_maps import activation_heatmap, blur_window, overlay_activation

__all__ = ["ActivationGallery", "activation_heatmap", "blur_window", "overlay_activation", "rgb_pixmap"]


def rgb_pixmap(rgb: np.ndarray, side: int) -> QPixmap:
    rgb = np.ascontiguousarray(rgb)
    image = QImage(rgb.data, rgb.shape[1], rgb.shape[0], 3 * rgb.shape[1], QImage.Format.Format_RGB888)
    return QPixmap.fromImage(image.copy()).scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio,
                                                  Qt.TransformationMode.SmoothTransformation)


class ActivationGallery(QWidget):
    """A grid of overlays, each captioned with the consensus label and the network's probability."""

    def __init__(self, parent: QWidget | None = None, thumbnail: int = 200, columns: int = 4):
        super().__init__(parent)
        self.thumbnail, self.columns = thumbnail, columns
        self.items: list = []
        self._grid_host = QWidget()
        self._grid = QGridLayout(self._grid_host)
        self._grid.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self._grid_host)
        self._empty = QLabel("The activation maps of validation photos appear here after training.")
        self._empty.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._empty)
        layout.addWidget(scroll)

    def show_items(self, items: list) -> None:
        """``items``: ``models.findings.training.GalleryItem`` (photo, activation, probability, present)."""
        while self._grid.count():
            taken = self._grid.takeAt(0)
            widget = taken.widget() if taken is not None else None
            if widget is not None:
                widget.deleteLater()
        self.items = list(items)
        self._empty.setVisible(not self.items)
        for n, item in enumerate(self.items):
            cell = QWidget()
            column = QVBoxLayout(cell)
            column.setContentsMargins(2, 2, 2, 2)
            picture = QLabel()
            picture.setPixmap(rgb_pixmap(overlay_activation(item.photo, item.activation), self.thumbnail))
            label = "present" if item.present else "absent"
            caption = QLabel(f"{label} · p = {item.probability:.2f}")
            caption.setToolTip(item.key)
            caption.setAlignment(Qt.AlignmentFlag.AlignHCenter)
            column.addWidget(picture)
            column.addWidget(caption)
            self._grid.addWidget(cell, n // self.columns, n % self.columns)
