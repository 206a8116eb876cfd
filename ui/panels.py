"""The two side panels: the reader's queue (left) and the answer for this image (right)."""
from __future__ import annotations

from pathlib import Path

import qtawesome as qta
from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QIcon, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from storage.catalogue import FindingSpec
from storage.images import ImageRecord
from storage.labels import ReadState
from ui.colours import finding_colours

COMMENT_SAVE_DELAY_MS = 1200  # a comment is saved once typing pauses, not per keystroke


def _heading(text: str) -> QLabel:
    label = QLabel(text.upper())
    font = label.font()
    font.setPointSizeF(font.pointSizeF() * 0.85)
    font.setBold(True)
    font.setLetterSpacing(QFont.SpacingType.PercentageSpacing, 108)
    label.setFont(font)
    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
    return label


class QueuePanel(QWidget):
    """"37 / 300 done", a bar, and the list with a tick on every finished image."""

    imageChosen = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        self.reader_label = QLabel()
        self.reader_label.setWordWrap(True)
        self.progress_label = QLabel("0 / 0 done")
        font = self.progress_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setBold(True)
        self.progress_label.setFont(font)
        self.bar = QProgressBar()
        self.bar.setTextVisible(False)
        self.bar.setMaximumHeight(6)
        self.list = QListWidget()
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setUniformItemSizes(True)
        self.list.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.list.itemActivated.connect(self._chosen)
        self.list.itemClicked.connect(self._chosen)
        for widget in (self.reader_label, self.progress_label, self.bar, self.list):
            layout.addWidget(widget)
        self._rows: dict[int, QListWidgetItem] = {}
        # Rendered once: a font icon repaints its glyph on every paint of every row.
        self._done_icon = QIcon(qta.icon("mdi6.check-circle", color="#2e9d58").pixmap(32, 32))
        self._open_icon = QIcon(qta.icon("mdi6.circle-outline", color="#8a8f98").pixmap(32, 32))

    def set_reader(self, name: str, role: str) -> None:
        self.reader_label.setText(f"<b>{name}</b><br><span style='color:gray'>"
                                  f"{role.replace('_', ' ')}</span>")

    def set_queue(self, records: list[ImageRecord], done: dict[int, bool]) -> None:
        self.list.clear()
        self._rows.clear()
        for number, record in enumerate(records, start=1):
            item = QListWidgetItem(f"{number:>3}  {Path(record.path).stem}")
            item.setData(Qt.ItemDataRole.UserRole, record.id)
            item.setToolTip(f"{Path(record.path).name}\n{record.width} × {record.height} · "
                            f"{record.laterality or 'eye unknown'} · {record.split}")
            self.list.addItem(item)
            self._rows[record.id] = item
            self.set_done(record.id, done.get(record.id, False))

    def show_waiting(self, text: str) -> None:
        """No queue yet (it is being ordered): one line saying so, that nobody can choose."""
        self.list.clear()
        self._rows.clear()
        item = QListWidgetItem(text)
        item.setFlags(Qt.ItemFlag.NoItemFlags)
        self.list.addItem(item)

    def set_done(self, image_id: int, done: bool) -> None:
        item = self._rows.get(image_id)
        if item is not None:
            item.setIcon(self._done_icon if done else self._open_icon)

    def shows_done(self, image_id: int) -> bool | None:
        """Whether the queue shows ``image_id`` ticked as done (None: not in the queue)."""
        item = self._rows.get(image_id)
        if item is None:
            return None
        return item.icon().cacheKey() == self._done_icon.cacheKey()

    def set_current(self, image_id: int) -> None:
        item = self._rows.get(image_id)
        if item is not None:
            self.list.setCurrentItem(item)
            self.list.scrollToItem(item, QAbstractItemView.ScrollHint.EnsureVisible)

    def set_progress(self, done: int, total: int) -> None:
        self.progress_label.setText(f"{done} / {total} done")
        self.bar.setRange(0, max(total, 1))
        self.bar.setValue(done)

    def _chosen(self, item: QListWidgetItem) -> None:
        image_id = item.data(Qt.ItemDataRole.UserRole)
        if image_id is not None:   # not the line shown while the queue is ordered
            self.imageChosen.emit(int(image_id))


class FindingRow(QFrame):
    """Key, colour swatch, name and the regions chosen for one finding; click to select."""

    clicked = Signal(str)

    def __init__(self, spec: FindingSpec, colour: QColor, parent: QWidget | None = None):
        super().__init__(parent)
        self.code = spec.code
        self.setObjectName("findingRow")
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip(f"{spec.name}: press {spec.key.upper()}, then 1–8 or click regions")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 3, 6, 3)
        key = QLabel(spec.key.upper())
        key.setObjectName("keycap")
        key.setAlignment(Qt.AlignmentFlag.AlignCenter)
        key.setFixedWidth(22)
        swatch = QLabel()
        swatch.setFixedSize(12, 12)
        swatch.setStyleSheet(f"background:{colour.name()}; border-radius:6px;")
        self.name = QLabel(spec.name)
        self.name.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.regions = QLabel("")
        self.regions.setObjectName("regions")
        self.suggested = QLabel("")
        self.suggested.setObjectName("suggested")
        self.suggested.setToolTip(f"Regions the model suggests for {spec.name.lower()}, not chosen yet "
                                  "(Shift+A accepts them)")
        for widget in (key, swatch, self.name, self.suggested, self.regions):
            layout.addWidget(widget)

    def show_regions(self, regions: frozenset[int]) -> None:
        text = " ".join(str(c) for c in sorted(regions))
        if text == self.regions.text() and self.name.font().bold() == bool(regions):
            return  # unchanged: no relayout
        self.regions.setText(text)
        font = self.name.font()
        font.setBold(bool(regions))
        self.name.setFont(font)

    def show_suggested(self, suggested: frozenset[int], chosen: frozenset[int]) -> None:
        """Suggested regions the reader has not chosen, e.g. "+2 5"."""
        left = sorted(suggested - chosen)
        self.suggested.setText(("+" + " ".join(map(str, left))) if left else "")

    def set_current(self, current: bool) -> None:
        self.setProperty("current", current)
        # The labels too: their colours hang on this frame's property (ui.app.STYLE), and a style
        # does not re-polish children by itself (the name stayed dark on the highlight).
        for widget in (self, *self.findChildren(QLabel)):
            self.style().unpolish(widget)
            self.style().polish(widget)

    def mousePressEvent(self, event) -> None:
        self.clicked.emit(self.code)


class AnswerPanel(QWidget):
    """Findings, Normal, Ungradable, diagnosis and comment: the reader's answer for the image."""

    findingChosen = Signal(str)
    normalClicked = Signal()
    ungradableToggled = Signal(bool)
    diagnosisChosen = Signal(object)   # str or None
    commentEdited = Signal(str)

    def __init__(self, findings: list[FindingSpec], diagnoses: list[str],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.colours = finding_colours(findings)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.setSpacing(4)
        layout.addWidget(_heading("Findings"))
        self.rows: dict[str, FindingRow] = {}
        for spec in findings:
            row = FindingRow(spec, self.colours[spec.code])
            row.clicked.connect(self.findingChosen)
            layout.addWidget(row)
            self.rows[spec.code] = row
        # What the grey "+2 5" beside a finding means, said while any are shown.
        self.suggestions_note = QLabel("Grey +numbers: regions the model suggests (Shift+A accepts them)")
        self.suggestions_note.setObjectName("suggested")
        self.suggestions_note.setWordWrap(True)
        self.suggestions_note.setVisible(False)
        layout.addWidget(self.suggestions_note)
        layout.addSpacing(8)
        self.normal = QPushButton(qta.icon("mdi6.check-decagram-outline"), "  Normal   (N)")
        self.normal.setCheckable(True)
        self.normal.setToolTip("No finding in this eye: saves and opens the next unfinished image")
        self.normal.clicked.connect(lambda: self.normalClicked.emit())
        self.ungradable = QCheckBox("Ungradable   (U)")
        self.ungradable.setToolTip("The photo cannot be graded (blur, media opacity, poor field)")
        self.ungradable.clicked.connect(self.ungradableToggled)
        for widget in (self.normal, self.ungradable):
            widget.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            layout.addWidget(widget)
        layout.addSpacing(8)
        layout.addWidget(_heading("Diagnosis"))
        self.diagnosis = QComboBox()
        self.diagnosis.addItem("—", None)
        for name in diagnoses:
            self.diagnosis.addItem(name, name)
        self.diagnosis.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.diagnosis.activated.connect(
            lambda index: self.diagnosisChosen.emit(self.diagnosis.itemData(index)))
        layout.addWidget(self.diagnosis)
        layout.addSpacing(8)
        layout.addWidget(_heading("Comment"))
        self.comment = QPlainTextEdit()
        self.comment.setPlaceholderText("Free comment (saved as you type)")
        self.comment.setMaximumHeight(90)
        self.comment.setTabChangesFocus(True)
        layout.addWidget(self.comment)
        layout.addStretch(1)
        self._comment_timer = QTimer(self, singleShot=True, interval=COMMENT_SAVE_DELAY_MS)
        self._comment_timer.timeout.connect(self.flush_comment)
        self.comment.textChanged.connect(self._comment_typed)
        self._loading = False
        self._comment_dirty = False

    def show_state(self, state: ReadState,
                   suggested: dict[str, frozenset[int]] | None = None) -> None:
        """Reflect a saved state (and the model's suggestions) without emitting edits back."""
        self._loading = True
        try:
            for code, row in self.rows.items():
                chosen = state.regions.get(code, frozenset())
                row.show_regions(chosen)
                row.show_suggested((suggested or {}).get(code, frozenset()), chosen)
            self.suggestions_note.setVisible(any(row.suggested.text() for row in self.rows.values()))
            self.normal.setChecked(state.normal)
            self.ungradable.setChecked(state.ungradable)
            index = self.diagnosis.findData(state.diagnosis) if state.diagnosis else 0
            self.diagnosis.setCurrentIndex(max(index, 0))
            if self.comment.toPlainText() != state.comment and not self.comment.hasFocus():
                self.comment.setPlainText(state.comment)
                self._comment_timer.stop()
        finally:
            self._loading = False

    def reset_comment(self, text: str) -> None:
        self._comment_timer.stop()
        self._comment_dirty = False
        self._loading = True
        self.comment.setPlainText(text)
        self._loading = False

    def _comment_typed(self) -> None:
        if not self._loading:
            self._comment_dirty = True
            self._comment_timer.start()

    def flush_comment(self) -> None:
        """Save a comment typed since the last save (on a pause, or before leaving the image)."""
        self._comment_timer.stop()
        if self._comment_dirty:
            self._comment_dirty = False
            self.commentEdited.emit(self.comment.toPlainText())

    def set_current_finding(self, code: str | None) -> None:
        for c, row in self.rows.items():
            row.set_current(c == code)

    def sizeHint(self) -> QSize:
        return QSize(280, 600)
