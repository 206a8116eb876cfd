"""The training panel drives real (tiny) guided runs offscreen: start, cancel, resume, promote."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from storage.images import NewImage, add_images
from storage.predictions import list_models
from storage.reading import ReaderSession
from tests.ui.training_project import CUE, FINDING, make_labelled_project
from ui.screenshots.training import render_training_panel_screenshot, tiny_settings
from ui.training import TrainingPanel
from ui.training.summary import summarise_training_data

RUN_TIMEOUT_MS = 60_000


@pytest.fixture
def labelled(tmp_path):
    made, present = make_labelled_project(tmp_path / "project")
    yield made, present
    made.project.close()


def open_panel(qtbot, project, epochs: int = 2) -> TrainingPanel:
    from storage.readers import find_reader

    panel = TrainingPanel(project, reader_id=find_reader(project.database, "Admin").id)   # opened by an admin
    qtbot.addWidget(panel)
    panel.resize(1200, 800)
    panel.show()
    qtbot.waitUntil(lambda: panel.setup.counts_pending == 0, timeout=10_000)  # counted off the GUI thread
    tiny_settings(panel, FINDING, epochs=epochs)
    return panel


def test_data_summary_counts_present_absent_uncertain_and_classes(labelled):
    made, present = labelled
    some_image = sorted(set(made.image_ids) - present)[0]
    ReaderSession(made.project.database, made.readers["Ana"].id).set_regions(some_image, "drusen", {2})
    add_images(made.project.database, [NewImage("unread.png", "0" * 64, 256, 192, split="test")])
    summary = summarise_training_data(made.project)
    haemorrhage = summary.findings[FINDING]["train"]
    assert (haemorrhage.present, haemorrhage.absent, haemorrhage.uncertain) == (4, 4, 0)
    drusen = summary.findings["drusen"]["train"]
    assert (drusen.present, drusen.absent, drusen.uncertain) == (0, 7, 1)  # one vote of three
    assert summary.classes["no DR"]["train"] == 4 and summary.classes["mild NPDR"]["train"] == 4
    assert summary.trainable(FINDING) and not summary.trainable("drusen")
    assert summary.findings[FINDING]["test"].unread == 1 and summary.no_diagnosis["test"] == 1
    for split in ("train", "test"):   # every photo sits in one row of the class table, unread ones too
        rows = sum(counts[split] for counts in summary.classes.values()) + summary.no_diagnosis[split]
        assert rows == summary.images[split]


def test_panel_trains_a_tiny_guided_network_to_completion_and_promotes_it(qtbot, labelled, tmp_path):
    made, _ = labelled
    panel = open_panel(qtbot, made.project)
    assert panel.setup.engine_config().optimizer == "sgd" and panel.setup.engine_config().nesterov  # the paper's
    with qtbot.waitSignal(panel.runFinished, timeout=RUN_TIMEOUT_MS) as finished:
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
        assert not panel.start_button.isEnabled() and panel.cancel_button.isEnabled()
    outcome = finished.args[0]
    assert not outcome.result.cancelled and panel.progress.value() == 1000
    history = json.loads((panel.run_dir() / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2] and len(panel.curves.history) == 2
    assert panel.curves.batches and "val_auroc" in history[-1]
    assert list_models(made.project.database)[0].label_snapshot is None   # the consensus: not for anyone
    assert list_models(made.project.database, reader_id=made.readers["Ana"].id)[0].label_snapshot is None
    models = list_models(made.project.database, network=f"guided:{FINDING}", reader_id=made.readers["Admin"].id)
    assert len(models) == 1 and not models[0].active
    positives = [v for v in models[0].label_snapshot["derivation"].values() if v["present"]]
    assert positives and all(v["regions"] == sorted(CUE) for v in positives)  # the readers' cue
    assert outcome.weights_path.is_file() and models[0].path == str(outcome.weights_path)
    shown = [panel.results.item(r, 0).text() for r in range(panel.results.rowCount())]
    assert shown[:3] == ["AUROC", "sensitivity", "specificity"] and "AIR, true positives" in shown
    assert len(panel.gallery.items) == 2 and panel.gallery.items[0].present  # 10 % of 4 + 4 photos
    assert panel.start_button.isEnabled() and panel.resume_button.isEnabled()

    panel.results.setRowCount(0)
    panel.gallery.show_items([])
    panel.models.selectRow(0)  # a registered model's metrics come back from the registry
    assert panel.results.rowCount() == len(shown) and panel.results.item(0, 0).text() == "AUROC"
    with qtbot.waitSignal(panel.galleryShown, timeout=RUN_TIMEOUT_MS):
        qtbot.mouseClick(panel.maps_button, Qt.MouseButton.LeftButton)
    assert [item.key for item in panel.gallery.items] == [item.key for item in outcome.gallery]
    assert np.allclose([i.probability for i in panel.gallery.items],  # the fp16 weights, reloaded
                       [i.probability for i in outcome.gallery], atol=0.02)
    qtbot.mouseClick(panel.promote_button, Qt.MouseButton.LeftButton)
    assert list_models(made.project.database)[0].active
    assert panel.models.item(0, 5).text() == "active"

    png = render_training_panel_screenshot(made.project, tmp_path / "panel.png")
    image = cv2.imread(str(png))
    assert image is not None and image.shape[:2] == (860, 1280)


def test_cancel_keeps_the_finished_epoch_and_resume_completes_the_run(qtbot, labelled, monkeypatch):
    import ui.training.panel as panel_module

    made, _ = labelled
    panel = open_panel(qtbot, made.project, epochs=2)
    real_train = panel_module.train_guided

    def cancel_after_first_epoch(*args, progress, cancel, **kwargs):
        # On the training thread: the worker's cancel flag is set before epoch 2's first batch.
        def relay(event):
            progress(event)
            if event.kind == "epoch":
                cancel.set()
        return real_train(*args, progress=relay, cancel=cancel, **kwargs)

    monkeypatch.setattr(panel_module, "train_guided", cancel_after_first_epoch)
    with qtbot.waitSignal(panel.runFinished, timeout=RUN_TIMEOUT_MS) as finished:
        panel.start(resume=False)
    assert finished.args[0].result.cancelled and "Cancelled" in panel.status.text()
    assert len(json.loads((panel.run_dir() / "history.json").read_text())) == 1
    assert list_models(made.project.database) == []  # a cancelled run is not registered
    assert panel.resume_button.isEnabled()

    monkeypatch.setattr(panel_module, "train_guided", real_train)
    with qtbot.waitSignal(panel.runFinished, timeout=RUN_TIMEOUT_MS) as finished:
        qtbot.mouseClick(panel.resume_button, Qt.MouseButton.LeftButton)
    assert not finished.args[0].result.cancelled
    assert [row["epoch"] for row in finished.args[0].result.history] == [1, 2]
    assert len(list_models(made.project.database)) == 1


def test_a_finding_nobody_marked_is_refused_with_advice_and_the_panel_stays_usable(qtbot, labelled):
    made, _ = labelled
    panel = open_panel(qtbot, made.project)
    panel.setup.finding.setCurrentIndex(panel.setup.finding.findData("drusen"))
    with qtbot.waitSignal(panel.runFailed, timeout=RUN_TIMEOUT_MS) as failed:
        panel.start()
    assert "label more photos" in failed.args[0] and panel.status.text() == failed.args[0]
    assert panel.start_button.isEnabled() and not panel.cancel_button.isEnabled()


def test_results_show_per_class_accuracy_and_the_confusion_matrix_of_a_diagnosis_model(qtbot):
    from ui.training import tables

    results, confusion = tables.results_table(), tables.confusion_table()
    qtbot.addWidget(results)
    qtbot.addWidget(confusion)
    metrics = {"val_loss": 1.2, "val_accuracy": 0.75, "test_accuracy": 0.5,
               "val_per_class_accuracy": {"no DR": 1.0, "PDR": 0.5},
               "val_confusion_matrix": [[2, 0], [1, 1]], "val_classes": ["no DR", "PDR"]}
    tables.fill_results(results, metrics)
    rows = {results.item(r, 0).text(): (results.item(r, 1).text(), results.item(r, 2).text())
            for r in range(results.rowCount())}
    assert rows["accuracy"] == ("0.750", "0.500") and rows["accuracy, PDR"] == ("0.500", "")
    tables.fill_confusion(confusion, metrics)
    assert not confusion.isHidden() and confusion.item(1, 0).text() == "1"
    tables.fill_confusion(confusion, {"val_auroc": 0.9})
    assert confusion.isHidden()  # a finding model has no confusion matrix


def test_refresh_counts_photos_the_readers_finished_after_the_panel_opened(qtbot, labelled):
    made, present = labelled
    panel = open_panel(qtbot, made.project)
    image = sorted(present)[0]
    for name in ("Ana", "Ben"):
        ReaderSession(made.project.database, made.readers[name].id).mark_normal(image)
    setup = panel.setup
    with qtbot.waitSignal(setup.summaryReady, timeout=10_000):
        setup.refresh_data()
    counts = setup.finding_counts
    row = [counts.item(r, 0).text() for r in range(counts.rowCount())].index("Haemorrhage")
    assert [counts.item(row, c).text() for c in (1, 2, 3)] == ["3", "4", "1"]
    assert setup.finding.itemText(setup.finding.currentIndex()).endswith("(3 present, 4 absent)")


def test_forms_open_on_the_papers_defaults_and_unavailable_devices_are_disabled(qtbot, labelled):
    from models.diagnosis.attention_mask import attention_train_config
    from models.engine.weights import starter_for
    from models.findings.guided import GuidedConfig, guided_train_config
    from ui.training.setup import ATTENTION, available_devices

    made, _ = labelled
    panel = TrainingPanel(made.project)
    qtbot.addWidget(panel)
    setup = panel.setup
    starter = str(starter_for("guided", setup.finding_code()))   # fine-tuned by default (issue: starters)
    assert setup.engine_config() == guided_train_config(init_weights=starter)  # SGD, Nesterov, batch 32 (§3.1)
    assert setup.guided_config() == GuidedConfig(finding=setup.finding_code(), size_class="small")
    setup.engine_form.set_values(lr=0.5, nesterov=False)
    setup.reset_defaults()
    assert setup.engine_config() == guided_train_config(init_weights=starter)
    setup.start_from.setCurrentIndex(setup.start_from.findData("scratch"))
    assert setup.engine_config() == guided_train_config() and "random" in setup.start_note.text()
    setup.start_from.setCurrentIndex(setup.start_from.findData("starter"))
    setup.network.setCurrentIndex(setup.network.findData(ATTENTION))
    assert setup.engine_config() == attention_train_config(init_weights=str(starter_for("attention-mask")))
    assert setup.run_name.text() == "dr_grade_attention"
    setup.network_form.set_values(masked=False)
    assert setup.run_name.text() == "dr_grade_baseline"  # the paper's unmasked baseline, from the same start
    assert setup.engine_config() == attention_train_config(init_weights=str(starter_for("attention-mask")))
    assert "Fine-tunes dr_grade_attention" in setup.start_note.text()
    model = setup.device.model()
    for row, (name, usable) in enumerate(available_devices().items()):
        assert setup.device.itemText(row) == name and model.item(row).isEnabled() == usable
    assert available_devices()["cpu"] and available_devices()["auto"]


def test_the_window_stays_responsive_while_training_and_closing_it_cancels_the_run(qtbot, labelled):
    from PySide6.QtCore import QTimer

    from ui.training.window import TrainingWindow

    made, _ = labelled
    window = TrainingWindow(made.project)
    qtbot.addWidget(window)
    window.show()
    panel = window.panel
    tiny_settings(panel, FINDING, epochs=50)
    ticks: list[int] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(10)
    panel.start()
    # On a loaded machine the first epoch may end before the timer's fifth tick: wait for both.
    qtbot.waitUntil(lambda: len(panel.curves.history) >= 1 and len(ticks) >= 5, timeout=RUN_TIMEOUT_MS)
    timer.stop()
    assert panel.running()  # the GUI's own timer kept firing while training went on
    window.close()
    assert not panel.running()
    rows = json.loads((panel.run_dir() / "history.json").read_text())
    assert 1 <= len(rows) < 50 and list_models(made.project.database) == []


def test_the_consensus_table_shows_each_finding_name_whole(qtbot, labelled):
    # The panel's left column cut "Retinal pigmentary change" to "Retinal pigmenta…" at 1280 × 800.
    made, _ = labelled
    panel = open_panel(qtbot, made.project)
    panel.resize(1280, 800)
    qtbot.wait(50)
    table = panel.setup.finding_counts
    names = [table.item(row, 0).text() for row in range(table.rowCount())]
    assert "Chorioretinal atrophy or scar" in names
    room = table.columnWidth(0) - 2 * table.style().pixelMetric(table.style().PixelMetric.PM_FocusFrameHMargin)
    assert all(table.fontMetrics().horizontalAdvance(name) <= room for name in names)
    last = table.columnCount() - 1     # and the counts beside them are not cut off by the column either
    right = QPoint(table.columnViewportPosition(last) + table.columnWidth(last) - 1, 0)
    assert panel.setup.rect().contains(table.viewport().mapTo(panel.setup, right))


def test_before_any_run_the_panel_says_what_its_empty_curves_and_tables_are_for(qtbot, labelled):
    made, _ = labelled
    panel = open_panel(qtbot, made.project)
    assert panel.results.rowCount() == 0 and "Start trains" in panel.status.text()
