"""Brightness and contrast sliders, shown from the toolbar; they only change the display copy."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFormLayout, QPushButton, QSlider, QWidget

from ui.display_image import ViewAids

BRIGHTNESS_STEP = 10
CONTRAST_STEP = 0.1
CONTRAST_RANGE = (0.5, 2.5)


class ViewAidsPanel(QWidget):
    changed = Signal(object)  # ViewAids

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.aids = ViewAids()
        self.brightness = QSlider(Qt.Orientation.Horizontal)
        self.brightness.setRange(-100, 100)
        self.contrast = QSlider(Qt.Orientation.Horizontal)
        self.contrast.setRange(int(CONTRAST_RANGE[0] * 100), int(CONTRAST_RANGE[1] * 100))
        self.contrast.setValue(100)
        reset = QPushButton("Photo as recorded")
        reset.clicked.connect(lambda: self.set_aids(ViewAids()))
        for slider in (self.brightness, self.contrast):
            slider.setMinimumWidth(180)
            slider.valueChanged.connect(self._from_sliders)
        form = QFormLayout(self)
        form.addRow("Brightness", self.brightness)
        form.addRow("Contrast", self.contrast)
        form.addRow(reset)

    def set_aids(self, aids: ViewAids) -> None:
        if aids == self.aids:
            return
        self.aids = aids
        for slider, value in ((self.brightness, aids.brightness),
                              (self.contrast, round(aids.contrast * 100))):
            slider.blockSignals(True)
            slider.setValue(value)
            slider.blockSignals(False)
        self.changed.emit(aids)

    def adjust(self, brightness: int = 0, contrast: float = 0.0, **flags: bool) -> None:
        """Step the aids (keyboard); ``flags`` toggles green_channel / clahe when True."""
        a = self.aids
        low, high = CONTRAST_RANGE
        self.set_aids(ViewAids(
            brightness=max(-100, min(100, a.brightness + brightness)),
            contrast=round(max(low, min(high, a.contrast + contrast)), 2),
            green_channel=a.green_channel ^ flags.get("green_channel", False),
            clahe=a.clahe ^ flags.get("clahe", False),
        ))

    def _from_sliders(self) -> None:
        a = self.aids
        self.set_aids(ViewAids(self.brightness.value(), self.contrast.value() / 100.0,
                               a.green_channel, a.clahe))
