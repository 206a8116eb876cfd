"""The reviewer's decision for the image and finding on screen: present (with the regions clicked on
the photo) or absent, optionally the image's diagnosis, and the reason; recorded through
``storage.adjudication.record_adjudication`` (its own audited rows; readers' answers never change).

A draft starts from the answer in force, else from the consensus (present: its cue regions). For a
"diagnoses differ" entry the decision is about the diagnosis alone. Keys: P present, A absent,
click regions, R reason, Ctrl+Enter record (``ui.review.keys``).
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from annotate.consensus import FindingConsensus
from storage.adjudication import AdjudicationRecord
from ui.review.side_by_side import regions_text

MIN_WIDTH = 250


class AdjudicationPanel(QFrame):
    """``draft_changed(regions)`` whenever the drafted regions change; ``record_requested()`` on Record."""

    draft_changed = Signal(object)
    record_requested = Signal()

    def __init__(self, diagnosis_classes: list[str], parent: QWidget | None = None):
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setMinimumWidth(MIN_WIDTH)
        self.title = QLabel("<b>Adjudication</b>")
        self.title.setWordWrap(True)
        self.in_force = QLabel()
        self.in_force.setWordWrap(True)
        self.in_force.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.present = QRadioButton("Present  (P)")
        self.absent = QRadioButton("Absent  (A)")
        for button in (self.present, self.absent):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self._answer = QButtonGroup(self)
        self._answer.addButton(self.present)
        self._answer.addButton(self.absent)
        self.present.toggled.connect(lambda on: self.set_present(True) if on else None)
        self.absent.toggled.connect(lambda on: self.set_present(False) if on else None)
        self.regions_label = QLabel()
        self.regions_label.setWordWrap(True)
        self.diagnosis = QComboBox()
        self.diagnosis.addItem("— leave undecided —", None)
        for name in diagnosis_classes:
            self.diagnosis.addItem(name, name)
        self.diagnosis.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.reason = QLineEdit()
        self.reason.setPlaceholderText("Why this is the final answer (R)")
        self.reason.returnPressed.connect(self.record_requested)
        self.record = QPushButton("Record  (Ctrl+Enter)")
        self.record.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.record.clicked.connect(self.record_requested)
        self.message = QLabel()
        self.message.setWordWrap(True)
        answer_row = QHBoxLayout()
        answer_row.addWidget(self.present)
        answer_row.addWidget(self.absent)
        answer_row.addStretch(1)
        form = QFormLayout()
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapAllRows)
        form.addRow("Answer", answer_row)
        form.addRow("Regions (click them on the photo)", self.regions_label)
        form.addRow("Diagnosis of the image", self.diagnosis)
        form.addRow("Reason", self.reason)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.in_force)
        layout.addLayout(form)
        layout.addWidget(self.record)
        layout.addWidget(self.message)
        layout.addStretch(1)
        self.image_id: int | None = None
        self.finding: str | None = None
        self.regions: set[int] = set()
        self.answer: bool | None = None
        self.set_target(None, None, "", None, None, "")

    # The target ---------------------------------------------------------------------------------
    def set_target(self, image_id: int | None, finding: str | None, finding_name: str,
                   consensus: FindingConsensus | None,
                   latest: AdjudicationRecord | None, image_name: str,
                   latest_diagnosis: str | None = None) -> None:
        """A new image and finding (None: the diagnosis alone); the draft starts from ``latest``, else
        from ``consensus`` (``FindingConsensus`` or None)."""
        self.image_id, self.finding = image_id, finding
        self.message.setText("")
        self.reason.clear()
        about = finding_name if finding is not None else "the diagnosis"
        self.title.setText(f"<b>Adjudicate {about.lower() if finding is not None else about}</b>"
                           + (f" on {image_name}" if image_name else ""))
        for button in (self.present, self.absent):
            button.setEnabled(finding is not None)
        if latest is not None:
            self.in_force.setText(describe(latest, finding_name))
            answer, regions = latest.present, set(latest.regions)
        elif finding is None and latest_diagnosis:
            self.in_force.setText(f"<b>In force:</b> diagnosis {latest_diagnosis}")
            answer, regions = None, set()
        else:
            self.in_force.setText("Not adjudicated yet: the draft below starts from the consensus."
                                  if finding is not None and image_id is not None else
                                  "Not adjudicated yet." if image_id is not None else "")
            state = consensus.state if consensus is not None else None
            answer = {"present": True, "absent": False}.get(state) if state is not None else None
            regions = set(consensus.cue_regions) if consensus is not None and state == "present" else set()
        decided = latest.diagnosis if latest is not None and latest.diagnosis else latest_diagnosis
        self.diagnosis.setCurrentIndex(max(0, self.diagnosis.findData(decided)))
        self._set(answer if finding is not None else None, regions if finding is not None else set())

    # Editing the draft --------------------------------------------------------------------------
    def set_present(self, present: bool) -> None:
        """P / A. Absent clears the regions; present keeps them."""
        if self.finding is None:
            return
        self._set(present, self.regions if present else set())

    def toggle_region(self, code: int) -> None:
        """A click on a region: in or out of the draft (which then says present)."""
        if self.finding is None:
            return
        regions = set(self.regions) ^ {code}
        self._set(True if regions else self.answer, regions)

    def focus_reason(self) -> None:
        self.reason.setFocus(Qt.FocusReason.ShortcutFocusReason)

    def draft(self) -> dict:
        """What ``record_adjudication`` gets (besides the database and reviewer)."""
        return dict(image_id=self.image_id, finding=self.finding,
                    present=self.answer if self.finding is not None else None,
                    regions=sorted(self.regions), diagnosis=self.diagnosis.currentData(),
                    reason=self.reason.text())

    def show_message(self, text: str) -> None:
        self.message.setText(text)

    def _set(self, answer: bool | None, regions: set[int]) -> None:
        self.answer, self.regions = answer, set(regions)
        for button, checked in ((self.present, answer is True), (self.absent, answer is False)):
            button.blockSignals(True)
            button.setChecked(checked)
            button.blockSignals(False)
        if answer is None and self.finding is not None:   # neither: the group shows no choice
            self._answer.setExclusive(False)
            self.present.setChecked(False)
            self.absent.setChecked(False)
            self._answer.setExclusive(True)
        if self.finding is None:
            self.regions_label.setText("— (a decision about the diagnosis alone)")
        else:
            self.regions_label.setText(regions_text(self.regions) if self.regions else
                                       ("none: absent" if answer is False else "none yet"))
        self.record.setEnabled(self.image_id is not None)
        self.draft_changed.emit(set(self.regions))


def describe(entry: AdjudicationRecord, finding_name: str) -> str:
    """'In force: present in 1 macula, 4 temporal; diagnosis mild NPDR — “reason” (11:40, 4 Dec)'."""
    if entry.finding is None:
        what = "diagnosis decided"
    elif entry.present:
        what = f"{finding_name.lower()} present in {regions_text(entry.regions)}"
    else:
        what = f"{finding_name.lower()} absent"
    if entry.diagnosis:
        what += f"; diagnosis {entry.diagnosis}"
    when = entry.decided_at.astimezone().strftime("%d %b %Y %H:%M")
    return f"<b>In force:</b> {what} — “{entry.reason}” ({when})"
