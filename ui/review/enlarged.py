"""One reader, the consensus or the model over the whole canvas, zoomed and panned like the workstation.

The canvas is the workstation's (``ui.canvas.FundusCanvas``) with the landmarks fixed: readers'
answers are looked at here, never changed. A left click on a region is passed on (the reviewer's
adjudication uses it); the sources switch with keys 1, 2, 3, C and M (``ui.review.window``) or the
buttons above the photo. What each mark means is said in the legend below it.
"""
from __future__ import annotations

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QButtonGroup, QGraphicsItem, QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from storage.labels import Landmarks, ReadState
from ui.canvas import FundusCanvas
from ui.region_shapes import xy_pair
from ui.review.data import ReviewData
from ui.review.legend import DASHED, FILL, HATCH, HEAT, Legend, LegendEntry, landmark_entries
from ui.review.model_view import ModelView
from ui.review.side_by_side import READER_SLOTS, regions_text, role_text

READERS = tuple(f"reader{n + 1}" for n in range(READER_SLOTS))
CONSENSUS, MODEL = "consensus", "model"
SOURCES = READERS + (CONSENSUS, MODEL)
SOURCE_KEYS = {**{name: str(n + 1) for n, name in enumerate(READERS)}, CONSENSUS: "C", MODEL: "M"}
DRAFT_COLOUR = QColor("white")


class ReviewCanvas(FundusCanvas):
    """The workstation canvas, for looking: landmarks are neither dragged nor placed."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        for marker in (self.disc_marker, self.fovea_marker):
            marker.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsMovable, False)
            marker.setCursor(Qt.CursorShape.ArrowCursor)

    def click_at(self, scene_point) -> None:
        if self.placing:   # this source has no landmarks: there are no regions to click
            return
        code = self.region_at(scene_point)
        if code:
            self.regionClicked.emit(code)


class EnlargedView(QWidget):
    """``source_changed(name)`` when the shown source changes; ``regionClicked(code)`` from the canvas."""

    source_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.canvas = ReviewCanvas()
        self.regionClicked = self.canvas.regionClicked
        self.buttons: dict[str, QToolButton] = {}
        group = QButtonGroup(self)
        group.setExclusive(True)
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        for name in SOURCES:
            button = QToolButton()
            button.setCheckable(True)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)   # the keys stay with the window
            button.clicked.connect(lambda _=False, n=name: self.show_source(n))
            group.addButton(button)
            bar.addWidget(button)
            self.buttons[name] = button
        bar.addStretch(1)
        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.legend = Legend()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addLayout(bar)
        layout.addWidget(self.details)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.legend)
        self.source = READERS[0]
        self.shown_fills: dict[int, QColor] = {}
        self._data: ReviewData | None = None
        self._image_id: int | None = None
        self._finding = ""
        self._colour = QColor("white")
        self._draft: set[int] = set()
        self._model: tuple[str, list[str], ModelView | None] = ("Model", [], None)   # title, lines, map
        self._overlay_cache: tuple[tuple[int, int] | None, QImage | None] = (None, None)
        self._label_buttons()
        self.buttons[self.source].setChecked(True)

    # What is shown ------------------------------------------------------------------------------
    def show_image(self, data: ReviewData, image_id: int, finding: str, colour: QColor) -> None:
        """A new image or finding: the canvas restarts at "fit" when the image changes."""
        self._data, self._finding, self._colour = data, finding, colour
        if image_id != self._image_id:
            record = data.image(image_id)
            self._image_id = image_id
            self._model = ("Model", ["Computing the activation map…"], None)
            self.canvas.fit()
            self.canvas.begin_image(image_id, (record.width, record.height), record.fov)
        self._label_buttons()
        self._show()

    def show_source(self, name: str) -> None:
        if name not in SOURCES:
            return
        changed = name != self.source
        self.source = name
        self.buttons[name].setChecked(True)
        if self._data is not None:
            self._show()
        if changed:
            self.source_changed.emit(name)

    def set_photo(self, image_id: int, display, shown) -> None:
        self.canvas.show_image(image_id, display, shown)

    def set_model(self, title: str, lines: list[str], view: ModelView | None = None) -> None:
        """The model's verdict and its activation map (``ModelView``), or why there is none."""
        self._model = (title, lines, view)
        if self.source == MODEL and self._data is not None:
            self._show()

    def set_draft(self, regions: set[int]) -> None:
        """The reviewer's adjudicated regions (drawn dashed white over every source)."""
        self._draft = set(regions)
        self.canvas.overlay.set_outlined(self._draft, DRAFT_COLOUR)
        if self._data is not None:
            self.legend.set_entries(self._legend(self._data))

    # Internals ----------------------------------------------------------------------------------
    @staticmethod
    def _reads(data: ReviewData, image_id: int) -> list[tuple[int, ReadState]]:
        return list(data.reads.get(image_id, {}).items())[:READER_SLOTS]

    def _label_buttons(self) -> None:
        data, image_id = self._data, self._image_id
        slots = self._reads(data, image_id) if data is not None and image_id is not None else []
        for n, name in enumerate(READERS):
            who = "not assigned"
            if data is not None and n < len(slots):
                info = data.readers.get(slots[n][0])
                who = info.name if info else f"reader {slots[n][0]}"
            self.buttons[name].setText(f"{n + 1}  Reader {n + 1} · {who}")
            self.buttons[name].setToolTip(f"Show reader {n + 1}'s answer on the whole canvas (key {n + 1}).")
            self.buttons[name].setEnabled(n < len(slots) or self._data is None)
        self.buttons[CONSENSUS].setText("C  Consensus")
        self.buttons[CONSENSUS].setToolTip("Show the readers' consensus (key C).")
        self.buttons[MODEL].setText("M  Model")
        self.buttons[MODEL].setToolTip("Show the guided model's activation map (key M).")

    def _show(self) -> None:
        data, image_id = self._data, self._image_id
        if data is None or image_id is None:   # show_image sets both
            return
        reads = self._reads(data, image_id)
        name = data.finding_names.get(self._finding, self._finding)
        first_landmarks = next((s.landmarks for _, s in reads if s.landmarks is not None), None)
        fills: dict[int, QColor] = {}
        hatched: set[int] = set()
        overlay = None
        source = self.source
        if source in READERS:
            n = READERS.index(source)
            if n >= len(reads):
                self.details.setText(f"Reader {n + 1}: nobody is assigned in this slot.")
                landmarks = first_landmarks
            else:
                reader_id, state = reads[n]
                info = data.readers.get(reader_id)
                who = f"{info.name} ({role_text(info.role)})" if info else f"reader {reader_id}"
                chosen = set(state.regions.get(self._finding, ()))
                others = set().union(*(set(s.regions.get(self._finding, ())) for _, s in reads)) - chosen
                fills = {code: self._colour for code in chosen}
                hatched = others
                status = [("normal" if state.normal else ""), ("ungradable" if state.ungradable else ""),
                          f"Diagnosis: {state.diagnosis or '—'}", "done" if state.done else "not done"]
                self.details.setText(f"<b>Reader {n + 1} · {who}</b> — {name}: "
                                     f"{regions_text(chosen) if chosen else 'not marked'} · "
                                     + " · ".join(s for s in status if s)
                                     + (f"<br>Comment: “{state.comment}”" if state.comment else ""))
                landmarks = state.landmarks
        elif source == CONSENSUS:
            found = data.consensus_state(image_id, self._finding)
            landmarks = first_landmarks
            if found is None:
                self.details.setText("<b>Consensus</b> — no reader has finished this image yet.")
            else:
                fills = {code: self._colour for code in found.cue_regions}
                self.details.setText(f"<b>Consensus</b> — {name}: <b>{found.state}</b>, {found.votes} "
                                     f"reader(s) marked it (present needs {data.consensus.k}); regions "
                                     f"(all that they marked): {regions_text(found.cue_regions)}")
        else:
            title, lines, view = self._model
            landmarks = first_landmarks
            self.details.setText(f"<b>{title}</b> — " + " · ".join(lines))
            overlay = view
        self.shown_fills = fills
        self._set_landmarks(landmarks)
        self.canvas.set_fills(fills)
        self.canvas.overlay.set_hatched(hatched, self._colour)
        self.canvas.overlay.set_outlined(self._draft, DRAFT_COLOUR)
        if overlay is not None and overlay.overlay is not None:
            image = self._overlay_image(overlay)
            x0, y0, x1, y1 = overlay.crop_box
            self.canvas.set_overlay(image, QRectF(x0, y0, x1 - x0, y1 - y0))
        elif self.canvas.has_overlay():
            self.canvas.set_overlay(None)
        self.legend.set_entries(self._legend(data))

    def _overlay_image(self, view: ModelView) -> QImage:
        """The activation picture as the canvas draws it fastest (RGB32, converted once per view)."""
        key = (view.model_id, view.image_id)
        cached_key, image = self._overlay_cache
        if cached_key != key or image is None:
            rgb = view.overlay
            assert rgb is not None   # called only for a view with an overlay (a red-free photo has none)
            image = QImage(rgb.data, rgb.shape[1], rgb.shape[0], 3 * rgb.shape[1], QImage.Format.Format_RGB888)
            image = image.convertToFormat(QImage.Format.Format_RGB32)
            self._overlay_cache = (key, image)
        return image

    def _set_landmarks(self, landmarks: Landmarks | None) -> None:
        if landmarks is None:
            self.canvas.set_landmarks(None, None)
        else:
            self.canvas.set_landmarks(xy_pair(landmarks.disc), xy_pair(landmarks.fovea))

    def _legend(self, data: ReviewData) -> list[LegendEntry]:
        name = data.finding_names.get(self._finding, self._finding).lower()
        colour = self._colour
        if self.source in READERS:
            n = READERS.index(self.source) + 1
            entries = [LegendEntry(FILL, f"Reader {n}'s {name} regions", colour),
                       LegendEntry(HATCH, f"Only other readers' {name} regions", colour)]
            whose = f"reader {n}'s"
        elif self.source == CONSENSUS:
            entries = [LegendEntry(FILL, f"Consensus {name} regions (all that its readers marked)", colour)]
            whose = "reader 1's"
        else:   # the heat entry only over a map: a red-free photo, or no model, has none
            view = self._model[2]
            entries = ([LegendEntry(HEAT, "Model activation (Son et al. Fig. 3): blue low → red high")]
                       if view is not None and view.overlay is not None else [])
            whose = "reader 1's"
        if self._draft:
            entries.append(LegendEntry(DASHED, "Your adjudication's regions", DRAFT_COLOUR))
        return entries + landmark_entries(whose)
