"""The three readers, their consensus and the model, side by side for one image and finding."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QVBoxLayout, QWidget

from storage.labels import Landmarks, ReadState
from ui.display_image import DisplayImage, to_qimage
from ui.region_shapes import display_name
from ui.review.data import ReviewData
from ui.review.legend import FILL, HATCH, HEAT, Legend, LegendEntry, landmark_entries
from ui.review.pictures import PictureView, regions_picture

READER_SLOTS = 3
MIN_PICTURE_SIDE = 320   # pictures are drawn at about the size shown, never smaller than this


def regions_text(regions) -> str:
    return ", ".join(f"{code} {display_name(code).lower()}" for code in sorted(regions)) or "—"


def role_text(role) -> str:
    return str(getattr(role, "value", role)).replace("_", " ")


class Panel(QFrame):
    """A title, a picture and a few lines of text."""

    def __init__(self, title: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.title = QLabel(title)
        self.title.setStyleSheet("font-weight: 600;")
        self.title.setWordWrap(True)
        self.picture = PictureView()
        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.title)
        layout.addWidget(self.picture, 1)
        layout.addWidget(self.details)

    def show_text(self, title: str, lines: list[str]) -> None:
        self.title.setText(title)
        self.details.setText("<br>".join(lines))


def _consensus_diagnosis(diagnosis: str | None, reads: dict) -> str:
    """"no majority" only where readers gave diagnoses that split; it was said also where none gave one."""
    if diagnosis:
        return diagnosis
    return "no majority" if any(state.done and state.diagnosis for state in reads.values()) else "none given"


class SideBySide(QWidget):
    """Reader 1–3 on the top row, consensus and model below (a 3 + 2 grid)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.readers = [Panel(f"Reader {n + 1}") for n in range(READER_SLOTS)]
        self.consensus = Panel("Consensus")
        self.model = Panel("Model")
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        for n, panel in enumerate(self.readers):
            grid.addWidget(panel, 0, n)
        grid.addWidget(self.consensus, 1, 0)
        grid.addWidget(self.model, 1, 1, 1, 2)
        self.legend = Legend()
        grid.addWidget(self.legend, 2, 0, 1, READER_SLOTS)
        self.shown_fills: dict[str, dict[int, QColor]] = {}   # panel name -> regions filled

    def show_image(self, data: ReviewData, image_id: int, finding: str, colour: QColor,
                   photo: DisplayImage | None) -> None:
        record = data.image(image_id)
        reads = data.reads.get(image_id, {})
        name = data.finding_names.get(finding, finding)
        qphoto = to_qimage(photo.bgr) if photo is not None else None
        scale = photo.scale if photo is not None else 1.0
        self.shown_fills = {}
        finding_name = name.lower()
        self.legend.set_entries([
            LegendEntry(FILL, f"This reader's {finding_name} regions (consensus: all that its readers marked)", colour),
            LegendEntry(HATCH, f"Only other readers' {finding_name} regions", colour),
            LegendEntry(HEAT, "Model activation: blue low → red high"),
            *landmark_entries("each reader's own")])
        marked_by_anyone: set[int] = set()
        for state in reads.values():
            marked_by_anyone |= set(state.regions.get(finding, ()))
        slots = list(reads.items())[:READER_SLOTS]
        for n, panel in enumerate(self.readers):
            if n >= len(slots):
                panel.show_text(f"Reader {n + 1}", ["Not assigned."])
                panel.picture.set_image(None, "No reader")
                continue
            reader_id, state = slots[n]
            info = data.readers.get(reader_id)
            who = f"{info.name} ({role_text(info.role)})" if info else f"reader {reader_id}"
            chosen = set(state.regions.get(finding, ()))
            fills = {code: colour for code in chosen}
            self.shown_fills[f"reader{n + 1}"] = fills
            panel.show_text(f"Reader {n + 1} · {who}", _read_lines(state, finding, data))
            self._picture(panel, qphoto, scale, record.fov, state.landmarks, fills,
                          marked_by_anyone - chosen, colour)
        self._show_consensus(data, image_id, finding, name, colour, qphoto, scale, record.fov, reads)

    def _show_consensus(self, data, image_id, finding, name, colour, qphoto, scale, fov, reads) -> None:
        found = data.consensus_state(image_id, finding)
        k = data.consensus.k
        if found is None:
            self.consensus.show_text("Consensus", ["No reader has finished this image yet."])
            self.shown_fills["consensus"] = {}
            self._picture(self.consensus, qphoto, scale, fov, _first_landmarks(reads), {}, set())
            return
        image = data.consensus.image(image_id)
        fills = {code: colour for code in found.cue_regions}
        self.shown_fills["consensus"] = fills
        lines = [f"<b>{name}: {found.state}</b> — {found.votes} of {image.gradable_reads} gradable "
                 f"readers marked it (present needs {k})",
                 f"Regions (all that they marked): {regions_text(found.cue_regions)}",
                 f"Diagnosis: {_consensus_diagnosis(image.diagnosis, reads)}"
                 + (" · <b>ungradable</b> (majority)" if image.ungradable else ""),
                 f"Done reads: {image.reads}"
                 + (f" · {len(reads) - READER_SLOTS} more reader(s) not shown above" if len(reads) > READER_SLOTS else "")]
        self.consensus.show_text("Consensus", lines)
        self._picture(self.consensus, qphoto, scale, fov, _first_landmarks(reads), fills, set())

    def show_model(self, title: str, lines: list[str], overlay: np.ndarray | None, message: str = "") -> None:
        self.model.show_text(title, lines)
        image = None
        if overlay is not None:
            rgb = np.ascontiguousarray(overlay)
            image = QImage(rgb.data, rgb.shape[1], rgb.shape[0], 3 * rgb.shape[1],
                           QImage.Format.Format_RGB888).copy()
        self.model.picture.set_image(image, message)

    @staticmethod
    def _picture(panel: Panel, qphoto, scale, fov, landmarks, fills, dashed, colour=None) -> None:
        if qphoto is None:
            panel.picture.set_image(None, "Loading the photo…")
            return
        side = max(MIN_PICTURE_SIDE, panel.picture.width(), panel.picture.height())
        panel.picture.set_image(regions_picture(qphoto, scale, fov, landmarks, fills, dashed, colour, side))
        if landmarks is None:
            panel.picture.setToolTip("No disc and fovea placed, so no regions can be drawn.")
        else:
            panel.picture.setToolTip("Filled: this reader's regions. Hatched: regions only other readers chose.")


def _first_landmarks(reads: dict[int, ReadState]) -> Landmarks | None:
    """The consensus has no landmarks of its own: draw its cue on the first reader's."""
    return next((s.landmarks for s in reads.values() if s.landmarks is not None), None)


def _read_lines(state: ReadState, code: str, data: ReviewData) -> list[str]:
    chosen = state.regions.get(code)
    lines = [f"<b>{data.finding_names.get(code, code)}:</b> {regions_text(chosen) if chosen else 'not marked'}"]
    others = [f"{data.finding_names.get(c, c)} {','.join(map(str, sorted(r)))}"
              for c, r in state.regions.items() if c != code and r]
    if others:
        lines.append("Other findings: " + "; ".join(others))
    answer = []
    if state.normal:
        answer.append("normal")
    if state.ungradable:
        answer.append("<b>ungradable</b>")
    answer.append(f"Diagnosis: {state.diagnosis or '—'}")
    answer.append("done" if state.done else "<i>not done</i>")
    lines.append(" · ".join(answer))
    if state.landmarks is None:
        lines.append("<i>No landmarks placed.</i>")
    if state.comment:
        lines.append(f"Comment: “{state.comment}”")
    return lines
