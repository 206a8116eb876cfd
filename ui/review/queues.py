"""The reviewer's queues: all images, readers' disagreements, model against consensus; by finding."""
from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

ALL_IMAGES, DISAGREEMENTS, MODEL_VS_CONSENSUS = "all", "disagreements", "model"
QUEUE_TITLES = {ALL_IMAGES: "All images", DISAGREEMENTS: "Readers disagree",
                MODEL_VS_CONSENSUS: "Model vs consensus"}
QUEUE_TIPS = {
    ALL_IMAGES: "Every image of the project.",
    DISAGREEMENTS: "Some but fewer than k readers marked the finding (uncertain consensus), or two or "
                   "more readers marked it in different regions.",
    MODEL_VS_CONSENSUS: "The guided model's call (the active model, else the starter model; probability "
                        "at or above its validation threshold) differs from a present or absent consensus.",
}
IMAGE_ROLE = Qt.ItemDataRole.UserRole
FINDING_ROLE = Qt.ItemDataRole.UserRole + 1


class QueuePanel(QWidget):
    """Emits ``selected(image_id, finding or None)``; ``finding_changed(code or None)``."""

    selected = Signal(int, object)
    finding_changed = Signal(object)
    queue_changed = Signal(str)

    def __init__(self, finding_names: dict[str, str], parent: QWidget | None = None):
        super().__init__(parent)
        self.queue = QComboBox()
        self.finding = QComboBox()
        self.finding.addItem("All findings", None)
        for code, name in finding_names.items():
            self.finding.addItem(name, code)
        self.finding.setToolTip("Show one finding: the queues, the panels and the pairwise tables follow it.")
        self.hide_settled = QCheckBox("Hide adjudicated")
        self.hide_settled.setToolTip("List only the entries no reviewer has decided yet (marked ✓ otherwise).")
        self.hide_settled.setFocusPolicy(Qt.FocusPolicy.NoFocus)   # the keys stay with the photo
        self.count = QLabel()
        self.count.setWordWrap(True)
        self.list = QListWidget()
        self.list.setUniformItemSizes(True)
        # Two lines per entry (file; finding and why), long names shortened in the middle, whole in the tooltip.
        self.list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.list.setWordWrap(False)
        self.list.setAlternatingRowColors(True)   # where one two-line entry ends and the next begins
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(QLabel("Queue"))
        layout.addWidget(self.queue)
        layout.addWidget(QLabel("Finding"))
        layout.addWidget(self.finding)
        layout.addWidget(self.hide_settled)
        layout.addWidget(self.count)
        layout.addWidget(self.list, 1)
        self.set_queues([ALL_IMAGES, DISAGREEMENTS])
        self.queue.currentIndexChanged.connect(lambda _: self.queue_changed.emit(self.current_queue()))
        self.finding.currentIndexChanged.connect(lambda _: self.finding_changed.emit(self.current_finding()))
        self.hide_settled.toggled.connect(lambda _: self.queue_changed.emit(self.current_queue()))
        self.list.currentItemChanged.connect(self._on_item)

    def set_queues(self, queues: list[str]) -> None:
        current = self.current_queue() if self.queue.count() else ALL_IMAGES
        self.queue.blockSignals(True)
        self.queue.clear()
        for name in queues:
            self.queue.addItem(QUEUE_TITLES[name], name)
            self.queue.setItemData(self.queue.count() - 1, QUEUE_TIPS[name], Qt.ItemDataRole.ToolTipRole)
        self.queue.setCurrentIndex(max(0, self.queue.findData(current)))
        self.queue.blockSignals(False)

    def current_queue(self) -> str:
        return self.queue.currentData() or ALL_IMAGES

    def current_finding(self) -> str | None:
        return self.finding.currentData()

    def show_items(self, items: Sequence[tuple[int, str | None, str]], note: str = "",
                   tips: Sequence[str] | None = None, quiet: bool = False) -> None:
        """``items``: (image id, finding or None, text); keeps the selection when it is still listed.
        The tooltips are the texts whole, else ``tips`` (one per item). ``quiet``: an entry kept
        selected is not announced again (``selected``), so the screen beside it stays as it is."""
        keep = self.current()
        self.list.blockSignals(True)
        self.list.clear()
        for n, (image_id, finding, label) in enumerate(items):
            item = QListWidgetItem(label)
            item.setToolTip(tips[n] if tips is not None else label.replace("\n", " — "))
            item.setData(IMAGE_ROLE, image_id)
            item.setData(FINDING_ROLE, finding)
            self.list.addItem(item)
        self.list.blockSignals(False)
        images = len({image_id for image_id, _, _ in items})
        plural = lambda n, word: f"{n} {word}{'s' if n != 1 else ''}"  # noqa: E731
        counted = plural(images, "image") if images == len(items) else \
            f"{plural(len(items), 'finding')} on {plural(images, 'image')}"
        self.count.setText(note or counted)
        kept = next((n for n, (image_id, finding, _) in enumerate(items) if keep and (image_id, finding) == keep), None)
        if quiet and kept is not None:
            self.list.blockSignals(True)
            self.list.setCurrentRow(kept)
            self.list.blockSignals(False)
        elif items:
            self.list.setCurrentRow(kept or 0)
            self._on_item(self.list.currentItem(), None)

    def current(self) -> tuple[int, str | None] | None:
        item = self.list.currentItem()
        return None if item is None else (item.data(IMAGE_ROLE), item.data(FINDING_ROLE))

    def neighbour(self, step: int) -> tuple[int, str | None] | None:
        """The entry ``step`` rows from the current one (None past either end)."""
        row = self.list.currentRow() + step
        if not 0 <= row < self.list.count():
            return None
        item = self.list.item(row)
        return item.data(IMAGE_ROLE), item.data(FINDING_ROLE)

    def select(self, entry: tuple[int, str | None]) -> bool:
        """Select the entry for (image id, finding); False when it is not listed."""
        for row in range(self.list.count()):
            item = self.list.item(row)
            if (item.data(IMAGE_ROLE), item.data(FINDING_ROLE)) == tuple(entry):
                self.list.setCurrentRow(row)
                return True
        return False

    def step(self, step: int) -> bool:
        """Select the entry ``step`` rows on (keys ←/→); False at either end."""
        row = self.list.currentRow() + step
        if not 0 <= row < self.list.count():
            return False
        self.list.setCurrentRow(row)
        return True

    def _on_item(self, item, _previous) -> None:
        if item is not None:
            self.selected.emit(item.data(IMAGE_ROLE), item.data(FINDING_ROLE))
