"""The review screen driven by its keys: the enlarged canvas (1/2/3/C/M), the queue (←/→), zoom,
legends and readable queue entries. The tiny project is test_review's (three readers, a reviewer)."""
from __future__ import annotations

import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QApplication

from tests.ui.conftest import DISC, FOVEA
from tests.ui.review_project import FINDING, keep_starter_models_out, make_review_project
from ui.review import legend as mark


@pytest.fixture(autouse=True)
def no_starter_models(tmp_path, monkeypatch):
    return keep_starter_models_out(tmp_path, monkeypatch)


@pytest.fixture
def review_project(tmp_path):
    made = make_review_project(tmp_path / "project")
    yield made
    made.project.close()


def open_active(qtbot, made, size=(1400, 900)):
    from ui.review import ReviewWindow

    window = ReviewWindow(made.project, made.readers["Rhea"].id)
    qtbot.addWidget(window)
    window.resize(*size)
    window.show()
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=3000)
    qtbot.waitUntil(lambda: window.data is not None and window.current is not None, timeout=10_000)
    return window


def press(qtbot, window, *keys: str) -> None:
    """Keys as the reviewer types them, to whatever has the focus in the window."""
    for key in keys:
        modifiers = Qt.KeyboardModifier.NoModifier
        parts = [key] if key == "+" else key.split("+")
        for part in parts[:-1]:
            modifiers |= {"Ctrl": Qt.KeyboardModifier.ControlModifier,
                          "Shift": Qt.KeyboardModifier.ShiftModifier}[part]
        name = parts[-1]
        code = {"+": Qt.Key.Key_Plus, "-": Qt.Key.Key_Minus}.get(name) or \
            getattr(Qt.Key, f"Key_{name.upper() if len(name) == 1 else name}")
        qtbot.keyClick(QApplication.focusWidget() or window, code, modifiers)


def go_to_disagreement(qtbot, window):
    from ui.review.queues import DISAGREEMENTS

    window.queues.queue.setCurrentIndex(window.queues.queue.findData(DISAGREEMENTS))
    qtbot.waitUntil(lambda: window.enlarged.canvas.has_photo(), timeout=5000)


def test_keys_put_each_reader_the_consensus_and_the_model_on_the_whole_canvas(qtbot, review_project):
    window = open_active(qtbot, review_project)
    go_to_disagreement(qtbot, window)   # image 1: Ana {1}, Ben {1, 4}, Cleo normal
    enlarged = window.enlarged
    assert window.tabs.currentWidget() is enlarged
    seen = {}
    for key, source in (("1", "reader1"), ("2", "reader2"), ("3", "reader3"), ("C", "consensus")):
        press(qtbot, window, key)
        assert enlarged.source == source and enlarged.buttons[source].isChecked()
        seen[source] = (set(enlarged.canvas.overlay.fills()), enlarged.canvas.overlay.hatched(),
                        enlarged.legend.kinds(), enlarged.details.text())
    assert seen["reader1"][:2] == ({1}, {4})            # Ana's region filled, Ben's extra one hatched
    assert seen["reader2"][:2] == ({1, 4}, set())
    assert seen["reader3"][:2] == (set(), {1, 4})       # Cleo said normal: both hatched
    assert seen["consensus"][:2] == ({1, 4}, set())
    assert seen["reader1"][2][:2] == [mark.FILL, mark.HATCH] and mark.HATCH not in seen["consensus"][2]
    assert {mark.DISC, mark.FOVEA, mark.OUTLINED} <= set(seen["consensus"][2])
    assert "Ana" in enlarged.buttons["reader1"].text() and "Cleo" in enlarged.buttons["reader3"].text()
    assert "Cleo" in seen["reader3"][3] and "normal" in seen["reader3"][3]
    assert "Diagnosis: no DR" in seen["reader3"][3] and "diagnosis:" not in seen["reader3"][3]
    assert "present" in seen["consensus"][3]
    # The consensus's regions in the reviewer's words ("cue regions" was the code's name for them).
    assert "regions (all that they marked): 1 macula, 4 temporal" in seen["consensus"][3]
    assert "cue" not in " ".join(entry.lower() for entry in enlarged.legend.texts())
    press(qtbot, window, "M")
    assert enlarged.source == "model" and not enlarged.canvas.has_overlay()
    assert "No active model for haemorrhage" in enlarged.details.text()
    assert mark.HEAT not in enlarged.legend.kinds()   # no map, so no heat legend
    # The photo fills the canvas: fit, far larger than a side-by-side panel.
    assert enlarged.canvas.width() > 700


def activate_a_tiny_model(made, tmp_path) -> None:
    """An active guided model for the finding, small enough to run at once on a tiny crop."""
    import torch

    from models.engine.weights import save_weights
    from models.findings.guided import GuidedConfig, GuidedNet
    from storage.predictions import register_model

    torch.manual_seed(0)
    config = GuidedConfig(finding=FINDING, input_size=32, width=2, atrous_channels=2)
    path = tmp_path / "tiny.safetensors"
    save_weights(GuidedNet(config), path, {"architecture": "guided"})
    register_model(made.project.database, "tiny", f"guided:{FINDING}", {"val_threshold": 0.5},
                   {"task": {"network": "guided", **config.to_dict()}}, {}, str(path), active=True)


def test_the_model_key_shows_its_activation_map_over_the_crop(qtbot, review_project, tmp_path):
    activate_a_tiny_model(review_project, tmp_path)
    window = open_active(qtbot, review_project)
    go_to_disagreement(qtbot, window)
    press(qtbot, window, "M")
    canvas = window.enlarged.canvas
    qtbot.waitUntil(canvas.has_overlay, timeout=10_000)
    assert "p = " in window.enlarged.details.text() and window.enlarged.legend.kinds()[0] == mark.HEAT
    rect = canvas.overlay_rect
    assert rect is not None and rect.width() > 0 and rect.right() <= 256 and rect.bottom() <= 192
    press(qtbot, window, "1")
    assert not canvas.has_overlay()


def test_a_photo_replaced_since_import_gets_no_activation_map_and_says_why(qtbot, review_project, tmp_path):
    # Photos are read where they were imported from: another patient's photo put under a known name
    # must not be run through the model as this image.
    activate_a_tiny_model(review_project, tmp_path)
    window = open_active(qtbot, review_project)
    go_to_disagreement(qtbot, window)
    record = window.data.image(window.current[0])
    others = [r.path for r in window.data.images if r.id != record.id]
    record.path.write_bytes(others[0].read_bytes())            # another photograph under its name
    press(qtbot, window, "M")
    qtbot.waitUntil(lambda: "has changed since it was imported" in window.enlarged.details.text(), timeout=10_000)
    assert not window.enlarged.canvas.has_overlay()


def test_arrow_keys_move_through_the_queue_and_zoom_keys_zoom(qtbot, review_project):
    window = open_active(qtbot, review_project)
    ids = review_project.image_ids
    assert window.current[0] == ids[0]
    press(qtbot, window, "Right")
    assert window.current[0] == ids[1]
    press(qtbot, window, "J", "J")
    assert window.current[0] == ids[3]
    press(qtbot, window, "Left", "K")
    assert window.current[0] == ids[1]
    press(qtbot, window, "Left", "Left")        # stops at the first
    assert window.current[0] == ids[0]
    qtbot.waitUntil(window.enlarged.canvas.has_photo, timeout=5000)
    canvas = window.enlarged.canvas
    fitted = canvas.zoom()
    press(qtbot, window, "+")
    assert canvas.zoom() > 1.2 * fitted
    press(qtbot, window, "-", "-")
    assert canvas.zoom() < fitted
    press(qtbot, window, "F")
    assert abs(canvas.zoom() - fitted) < 1e-6
    press(qtbot, window, "S")
    assert window.tabs.currentWidget() is window.side_by_side
    press(qtbot, window, "C")                   # a source key brings the enlarged view back
    assert window.tabs.currentWidget() is window.enlarged and window.enlarged.source == "consensus"


def test_landmarks_stay_put_and_a_click_on_a_region_is_passed_on(qtbot, review_project):
    window = open_active(qtbot, review_project)
    go_to_disagreement(qtbot, window)
    canvas = window.enlarged.canvas
    clicked = []
    window.enlarged.regionClicked.connect(clicked.append)
    canvas.click_at(QPointF(FOVEA[0], FOVEA[1] + 10))     # inside the macula
    assert clicked == [1]
    disc = canvas.disc_marker
    assert not disc.flags() & disc.GraphicsItemFlag.ItemIsMovable
    assert (disc.pos().x(), disc.pos().y()) == DISC


def test_queue_entries_are_two_readable_lines_with_the_whole_text_in_the_tooltip(qtbot, review_project):
    from ui.review.queues import DISAGREEMENTS

    window = open_active(qtbot, review_project, size=(1280, 800))
    window.queues.queue.setCurrentIndex(window.queues.queue.findData(DISAGREEMENTS))
    item = window.queues.list.item(0)
    first, second = item.text().split("\n")
    assert first.startswith("eye_1.jpg") and second == "Haemorrhage: regions differ"
    assert item.toolTip() == f"{first} — {second}"
    assert window.queues.width() >= 260
    assert window.queues.list.textElideMode() == Qt.TextElideMode.ElideMiddle


def test_a_thin_strip_at_the_edge_still_gets_its_number():
    from PySide6.QtCore import QRectF
    from PySide6.QtGui import QPainterPath, QTransform

    from ui.region_shapes import number_position

    clip = QPainterPath()
    clip.addRect(QRectF(0, 0, 1000, 1000))
    strip = QPainterPath()
    strip.addRect(QRectF(-500, 500, 2000, 4))            # 4 pixels tall where it meets the image
    away = QTransform.fromTranslate(-5000, 0)             # every anchor of region 4 lies off the image
    point = number_position(4, strip, away, clip)
    assert point is not None and 0 <= point.x() <= 1000 and 500 <= point.y() <= 504
    outside = QPainterPath()
    outside.addRect(QRectF(2000, 0, 50, 50))
    assert number_position(4, outside, away, clip) is None


def test_the_side_by_side_has_a_legend_for_fills_hatches_landmarks_and_the_heat_map(qtbot, review_project):
    window = open_active(qtbot, review_project)
    go_to_disagreement(qtbot, window)
    qtbot.keyClick(window, Qt.Key.Key_S)
    assert window.side_by_side.legend.kinds() == [mark.FILL, mark.HATCH, mark.HEAT, mark.OUTLINED, mark.DISC, mark.FOVEA]


def all_reads(made):
    from storage.review import iter_all_reads

    return sorted((i, r, repr(s)) for i, r, s in iter_all_reads(made.project.database))


def test_adjudicating_with_keys_and_clicks_records_a_row_and_leaves_the_readers_alone(qtbot, review_project):
    from storage.adjudication import list_adjudications

    before = all_reads(review_project)
    ids = review_project.image_ids
    window = open_active(qtbot, review_project)
    go_to_disagreement(qtbot, window)             # image 1, haemorrhage: consensus present in {1, 4}
    panel = window.adjudication
    assert (panel.image_id, panel.finding) == (ids[1], FINDING)
    assert panel.answer is True and panel.regions == {1, 4} and panel.present.isChecked()
    assert "consensus" in panel.in_force.text()
    press(qtbot, window, "A")
    assert panel.answer is False and panel.regions == set() and panel.absent.isChecked()
    press(qtbot, window, "P")
    window.enlarged.canvas.click_at(QPointF(FOVEA[0], FOVEA[1] + 10))     # region 1 in
    assert panel.answer is True and panel.regions == {1}
    assert window.enlarged.canvas.overlay.outlined() == {1}               # drawn dashed on the canvas
    assert mark.DASHED in window.enlarged.legend.kinds()
    press(qtbot, window, "Ctrl+Return")                                  # no reason yet: refused
    assert "reason" in panel.message.text() and list_adjudications(review_project.project.database) == []
    press(qtbot, window, "R")
    assert panel.reason.hasFocus()
    qtbot.keyClicks(panel.reason, "Ben's temporal mark is a vessel crossing")
    press(qtbot, window, "Escape", "2")     # out of the reason, kept: 2 shows reader 2 (it was typed there)
    assert window.enlarged.source == "reader2" and not panel.reason.hasFocus()
    assert panel.reason.text() == "Ben's temporal mark is a vessel crossing"
    press(qtbot, window, "Ctrl+Return")
    [entry] = list_adjudications(review_project.project.database)
    assert (entry.image_id, entry.finding, entry.present, set(entry.regions)) == (ids[1], FINDING, True, {1})
    assert entry.reason == "Ben's temporal mark is a vessel crossing"
    assert entry.reviewer_id == review_project.readers["Rhea"].id
    assert all_reads(review_project) == before                           # readers' rows untouched
    # The queue moved on to the next entry (image 1's diagnosis, still pending, now first) and ticks the decided one.
    assert window.current[0] == ids[1] and panel.finding is None
    listed = [(window.queues.list.item(n).data(256), window.queues.list.item(n).data(257),
               window.queues.list.item(n).text()) for n in range(window.queues.list.count())]
    assert [(i, f) for i, f, _ in listed] == [(ids[1], ""), (ids[1], FINDING), (ids[2], FINDING), (ids[2], "")]
    # The decided entry says what was decided and by whom; the open ones carry no mark.
    assert listed[1][2].endswith("\n✓ Haemorrhage: present in 1 macula (you)")
    assert window.queues.list.item(1).toolTip().endswith("(you); the readers: regions differ")
    assert not any("✓" in t for _, _, t in listed[2:])
    assert "3 to adjudicate, 1 adjudicated" == window.queues.count.text()
    # Back on it: the answer in force is shown and is the draft.
    window.queues.select((ids[1], FINDING))
    assert "In force" in panel.in_force.text() and panel.regions == {1}


def test_the_queues_mark_other_reviewers_decisions_and_can_hide_them(qtbot, review_project):
    from storage.adjudication import record_adjudication
    from ui.review.queues import ALL_IMAGES, DISAGREEMENTS

    db, ids, admin = review_project.project.database, review_project.image_ids, review_project.readers["Admin"]
    record_adjudication(db, admin.id, ids[2], FINDING, False, diagnosis="no DR", reason="One vote, a reflex.")
    window = open_active(qtbot, review_project)
    queues = window.queues

    def shown():
        return [(queues.list.item(n).data(256), queues.list.item(n).data(257), queues.list.item(n).text())
                for n in range(queues.list.count())]

    queues.queue.setCurrentIndex(queues.queue.findData(ALL_IMAGES))
    marks = {image: text.split("\n")[1] for image, _, text in shown()}
    assert marks[ids[2]] == "✓ Haemorrhage: absent (Admin); Diagnosis: no DR (Admin)"
    assert all("✓" not in marks[i] for i in ids if i != ids[2])
    assert queues.count.text() == "5 images: 1 adjudicated, 4 not"
    queues.hide_settled.setChecked(True)
    assert [image for image, _, _ in shown()] == [i for i in ids if i != ids[2]]
    assert queues.count.text() == "5 images: 1 adjudicated, 4 not (adjudicated hidden)"
    queues.queue.setCurrentIndex(queues.queue.findData(DISAGREEMENTS))   # the filter stays on: the open ones
    assert [(i, f) for i, f, _ in shown()] == [(ids[1], FINDING), (ids[1], "")]
    queues.hide_settled.setChecked(False)
    entries = shown()
    assert [(i, f) for i, f, _ in entries][2:] == [(ids[2], FINDING), (ids[2], "")]   # settled last
    assert entries[2][2].endswith("\n✓ Haemorrhage: absent (Admin)")
    assert entries[3][2].endswith("\n✓ Diagnosis: no DR (Admin)")
    assert queues.list.item(2).toolTip().endswith("(Admin); the readers: uncertain vote")   # what was disputed
    # Another reviewer decides while this screen is open: the mark comes with this reviewer's next decision.
    record_adjudication(db, admin.id, ids[1], None, None, diagnosis="mild NPDR", reason="Two of three.")
    queues.select((ids[1], FINDING))
    press(qtbot, window, "A", "R")
    qtbot.keyClicks(window.adjudication.reason, "No haemorrhage on the better photo")
    press(qtbot, window, "Ctrl+Return")
    marks = {(i, f): text.split("\n")[1] for i, f, text in shown()}
    assert marks[(ids[1], FINDING)] == "✓ Haemorrhage: absent (you)"
    assert marks[(ids[1], "")] == "✓ Diagnosis: mild NPDR (Admin)"
    assert queues.count.text() == "0 to adjudicate, 4 adjudicated"


def test_decisions_recorded_elsewhere_are_marked_when_the_screen_comes_back_and_the_draft_stays(
        qtbot, review_project):
    from PySide6.QtCore import QEvent

    from storage.adjudication import record_adjudication

    db, ids, admin = review_project.project.database, review_project.image_ids, review_project.readers["Admin"]
    window = open_active(qtbot, review_project)
    go_to_disagreement(qtbot, window)                     # image 1, haemorrhage
    queues, panel = window.queues, window.adjudication
    queues.hide_settled.setChecked(True)
    press(qtbot, window, "R")
    qtbot.keyClicks(panel.reason, "half written")
    # Another reviewer, on another workstation, decides this very entry and image 2's haemorrhage.
    record_adjudication(db, admin.id, ids[1], FINDING, False, reason="A reflex.")
    record_adjudication(db, admin.id, ids[2], FINDING, True, [5], reason="Seen on the red-free.")
    window.changeEvent(QEvent(QEvent.Type.ActivationChange))   # the screen comes to the front

    def entries():
        return {(queues.list.item(n).data(256), queues.list.item(n).data(257)): queues.list.item(n).text()
                for n in range(queues.list.count())}

    qtbot.waitUntil(lambda: "(Admin)" in entries().get((ids[1], FINDING), ""), timeout=5000)
    shown = entries()
    assert shown[(ids[1], FINDING)].endswith("\n✓ Haemorrhage: absent (Admin)")   # stays: it is on screen
    assert (ids[2], FINDING) not in shown                                      # hidden: decided, not on screen
    assert window.current == (ids[1], FINDING) and queues.current() == (ids[1], FINDING)
    assert panel.reason.text() == "half written"                               # nothing typed is lost
    assert queues.count.text() == "2 to adjudicate, 2 adjudicated (adjudicated hidden)"


def test_a_diagnosis_entry_decides_the_diagnosis_alone(qtbot, review_project):
    from storage.adjudication import adjudicated_answers

    ids = review_project.image_ids
    window = open_active(qtbot, review_project)
    go_to_disagreement(qtbot, window)
    press(qtbot, window, "Right")                 # image 1's diagnoses differ
    panel = window.adjudication
    assert panel.finding is None and not panel.present.isEnabled()
    press(qtbot, window, "P")
    assert panel.answer is None
    panel.diagnosis.setCurrentIndex(panel.diagnosis.findData("mild NPDR"))
    press(qtbot, window, "R")
    qtbot.keyClicks(panel.reason, "two of three and the haemorrhage")
    qtbot.keyClick(panel.reason, Qt.Key.Key_Return)                       # Enter in the reason records too
    answers = adjudicated_answers(review_project.project.database)
    assert answers.diagnoses == {ids[1]: "mild NPDR"} and answers.findings == {}


def test_the_dashboard_shows_the_report_numbers_computed_off_the_gui_thread(qtbot, review_project, monkeypatch):
    import threading

    import numpy as np
    from sklearn.metrics import roc_auc_score

    from models.report.project_numbers import project_numbers
    from storage.predictions import FINDINGS_PREDICTION, save_prediction
    from ui.review import dashboard as dashboard_module

    db = review_project.project.database
    ids = review_project.image_ids
    # Stored model outputs (what `screen --project` keeps): image 0 and 1 present, 3 and 4 absent.
    for image_id, p in zip(ids, (0.9, 0.4, 0.5, 0.6, 0.1)):
        save_prediction(db, image_id, FINDINGS_PREDICTION,
                        {"findings": {FINDING: {"probability": p, "region_activation": [0.1] * 9}}}, "test")
    threads = []
    compute = dashboard_module.compute_dashboard
    monkeypatch.setattr("ui.review.window.compute_dashboard",
                        lambda *a: threads.append(threading.current_thread()) or compute(*a))
    window = open_active(qtbot, review_project)
    window.tabs.setCurrentWidget(window.dashboard)
    assert not window.adjudication.isVisible()
    qtbot.waitUntil(lambda: window.dashboard.shown is not None, timeout=20_000)
    assert threads and threads[0] is not threading.main_thread()
    view = window.dashboard
    expected = project_numbers(db, review_project.readers["Rhea"].id)
    table = view.table
    rows = {table.item(r, 0).text(): [table.item(r, c).text() for c in range(table.columnCount())]
            for r in range(table.rowCount())}
    haem = rows["Haemorrhage"]
    number = expected.finding(FINDING)
    assert haem[1] == f"{number.prevalence:.2f}" and haem[5] == f"{number.kappa:.2f}"
    assert haem[6] == f"{number.regional_kappa:.2f}"
    # AUROC against scikit-learn, on the images whose consensus is decided (image 2 is uncertain).
    truth = np.array([1, 1, 0, 0])
    scores = np.array([0.9, 0.4, 0.6, 0.1])
    assert haem[7] == f"{roc_auc_score(truth, scores):.3f}" == f"{number.model.auroc:.3f}"
    assert rows["Drusen"][5] == "—"                  # nobody marked drusen: kappa undefined
    assert set(view.canvases) == {"prevalence", "kappa", "roc", "pr", "readers", "regional_kappa",
                                  "diagnoses", "regional_confusion"}
    roc_axes = view.canvases["roc"].figure.axes[0]
    assert any("AUROC" in text.get_text() for text in roc_axes.get_legend().get_texts())
    # A decision makes it stale: it is computed again when the tab is next opened.
    window.tabs.setCurrentWidget(window.enlarged)
    window.adjudication.reason.setText("consensus stands")
    window.record_decision()
    window.tabs.setCurrentWidget(window.dashboard)
    qtbot.waitUntil(lambda: len(threads) == 2 and view.shown is not None and not view.status.isVisible(),
                    timeout=20_000)



def test_ctrl_w_closes_the_review_screen_and_ctrl_q_asks_the_workstation_to_quit(qtbot, review_project):
    window = open_active(qtbot, review_project)
    press(qtbot, window, "Ctrl+W")
    assert not window.isVisible()
    window = open_active(qtbot, review_project)
    with qtbot.waitSignal(window.quitRequested):   # the workstation's File → Quit is connected to it
        press(qtbot, window, "Ctrl+Q")
    assert not window.isVisible()


def test_the_dashboards_short_headers_say_what_they_mean_on_hover(qtbot):
    # "AP", "AIR TP", "Sens." … meant nothing to a clinician reviewer without the docs at hand.
    from ui.review.dashboard import COLUMNS, DashboardView

    view = DashboardView()
    qtbot.addWidget(view)
    tips = {name: view.table.horizontalHeaderItem(column).toolTip() for column, name in enumerate(COLUMNS)}
    assert all(tips[name] for name in COLUMNS if name not in ("Finding", "Present", "Absent"))
    assert "activation" in tips["AIR TP"].lower() and "precision" in tips["AP"].lower()
