"""The reviewers' screen on a tiny project: three readers, two disagreements, a reviewer."""
from __future__ import annotations

import math

import pytest

from storage.errors import AccessDeniedError
from tests.ui.conftest import FOVEA
from tests.ui.review_project import FINDING, RHEA_PIN, keep_starter_models_out, make_review_project


@pytest.fixture(autouse=True)
def no_starter_models(tmp_path, monkeypatch):
    return keep_starter_models_out(tmp_path, monkeypatch)


@pytest.fixture
def review_project(tmp_path):
    made = make_review_project(tmp_path / "project")
    yield made
    made.project.close()


def open_review(qtbot, made, name="Rhea"):
    from ui.review import ReviewWindow

    window = ReviewWindow(made.project, made.readers[name].id)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.data is not None and window.agreement.shown is not None, timeout=10_000)
    return window


def choose_queue(window, queue):
    window.queues.queue.setCurrentIndex(window.queues.queue.findData(queue))


def listed(window):
    lst = window.queues.list
    return [(lst.item(n).data(256), lst.item(n).data(257), lst.item(n).text()) for n in range(lst.count())]


def test_a_plain_reader_is_refused_and_has_no_review_menu(qtbot, review_project):
    from ui.review import ReviewWindow
    from ui.workstation import build_window

    with pytest.raises(AccessDeniedError):
        ReviewWindow(review_project.project, review_project.readers["Ana"].id)
    for name, expected in (("Ana", False), ("Admin", True)):
        window = build_window(review_project.project, review_project.readers[name].id)
        qtbot.addWidget(window)
        file_menu = window.menuBar().actions()[0].menu()
        assert ("Review…" in [a.text() for a in file_menu.actions()]) is expected


def test_disagreement_queue_lists_the_uncertain_vote_and_the_differing_regions(qtbot, review_project):
    from ui.review.queues import DISAGREEMENTS, MODEL_VS_CONSENSUS

    window = open_review(qtbot, review_project)
    ids = review_project.image_ids
    assert window.queues.list.count() == len(ids)  # all images first
    assert window.queues.queue.findData(MODEL_VS_CONSENSUS) == -1  # no active model
    choose_queue(window, DISAGREEMENTS)
    items = listed(window)
    # Each image's findings, then its diagnosis when the readers gave different ones ("" in the list).
    assert [(i, f) for i, f, _ in items] == [(ids[1], FINDING), (ids[1], ""), (ids[2], FINDING), (ids[2], "")]
    assert "regions differ" in items[0][2] and "uncertain vote" in items[2][2]
    assert "Diagnosis: diagnoses differ" in items[1][2]
    window.queues.finding.setCurrentIndex(window.queues.finding.findData("drusen"))
    assert window.queues.list.count() == 0


def test_side_by_side_shows_each_readers_regions_and_the_consensus(qtbot, review_project):
    from ui.review.queues import DISAGREEMENTS

    window = open_review(qtbot, review_project)
    window.tabs.setCurrentWidget(window.side_by_side)
    choose_queue(window, DISAGREEMENTS)
    window.queues.list.setCurrentRow(0)  # image 1: Ana {1}, Ben {1, 4}, Cleo normal
    qtbot.waitUntil(lambda: review_project.image_ids[1] in window.photos, timeout=5000)
    sbs = window.side_by_side
    assert {name: set(fills) for name, fills in sbs.shown_fills.items()} == {
        "reader1": {1}, "reader2": {1, 4}, "reader3": set(), "consensus": {1, 4}}
    assert [p.title.text() for p in sbs.readers] == [
        "Reader 1 · Ana (ophthalmologist)", "Reader 2 · Ben (ophthalmologist)", "Reader 3 · Cleo (ophthalmologist)"]
    assert "normal" in sbs.readers[2].details.text()
    # Labels are capitalised like the rest of the screen ("Comment:", "Other findings:").
    assert "Diagnosis: mild NPDR" in sbs.readers[0].details.text() and "diagnosis:" not in sbs.readers[0].details.text()
    assert "present" in sbs.consensus.details.text() and "2 of 3" in sbs.consensus.details.text()
    assert "Regions (all that they marked): 1 macula, 4 temporal" in sbs.consensus.details.text()
    # The fill is painted: inside the macula (region 1) Ana's picture is tinted, Cleo's is not.
    x, y = int(FOVEA[0]), int(FOVEA[1] + 25)
    ana, cleo = (sbs.readers[n].picture.image.pixelColor(x, y) for n in (0, 2))
    assert ana != cleo
    assert "No active model for haemorrhage" in sbs.model.details.text()


def test_the_consensus_says_no_diagnosis_was_given_rather_than_no_majority(qtbot, review_project):
    # Three readers who gave no diagnosis at all read "Diagnosis: no majority", as if they had split.
    from storage.reading import ReaderSession
    from ui.review.queues import DISAGREEMENTS

    image = review_project.image_ids[1]
    for name in ("Ana", "Ben", "Cleo"):
        ReaderSession(review_project.project.database, review_project.readers[name].id).set_diagnosis(image, None)
    window = open_review(qtbot, review_project)
    window.tabs.setCurrentWidget(window.side_by_side)
    choose_queue(window, DISAGREEMENTS)
    window.queues.list.setCurrentRow(0)  # image 1
    qtbot.waitUntil(lambda: image in window.photos, timeout=5000)
    text = window.side_by_side.consensus.details.text()
    assert "Diagnosis: none given" in text and "no majority" not in text


def test_agreement_numbers_match_annotate_agreement(qtbot, review_project):
    from annotate.agreement import agreement_report
    from annotate.consensus import consensus_for_project
    from storage.review import iter_all_reads

    window = open_review(qtbot, review_project)
    db = review_project.project.database
    codes = [f.code for f in review_project.project.settings().findings]
    expected = agreement_report(consensus_for_project(iter_all_reads(db), codes, k=2))
    table = window.agreement.fleiss
    shown = {table.item(r, 0).text(): table.item(r, 1) for r in range(table.rowCount())}
    kappa = expected.fleiss_by_finding[FINDING].kappa
    assert shown["Haemorrhage"].text() == f"{kappa:.2f}"
    assert shown["Overall (all findings pooled)"].text() == f"{expected.fleiss_overall.kappa:.2f}"
    assert math.isnan(expected.fleiss_by_finding["drusen"].kappa)  # nobody marked drusen
    assert shown["Drusen"].text() == "—" and shown["Drusen"].toolTip()
    pairs = window.agreement.pairs
    assert pairs.rowCount() == len(expected.pairs) == 3
    assert [pairs.item(r, 4).text() for r in range(3)] == [f"{p.kappa:.2f}" for p in expected.pairs]
    readers = window.agreement.readers
    assert [readers.item(r, 1).text() for r in range(3)] == [f"{a.sensitivity:.2f}" for a in expected.readers]
    # One finding chosen: pairs and readers are computed on that finding alone.
    from annotate.agreement import pairwise_cohen_kappa

    window.queues.finding.setCurrentIndex(window.queues.finding.findData(FINDING))
    qtbot.waitUntil(lambda: window.agreement.shown.finding == FINDING, timeout=5000)
    consensus = consensus_for_project(iter_all_reads(db), codes, k=2)
    assert [pairs.item(r, 4).text() for r in range(3)] == [
        f"{p.kappa:.2f}" for p in pairwise_cohen_kappa(consensus, FINDING)]


def activate_a_tiny_model(made, tmp_path) -> None:
    """An active guided model whose threshold near 0 calls every photo present: the absent images
    are queued."""
    import torch

    from models.engine.weights import save_weights
    from models.findings.guided import GuidedConfig, GuidedNet
    from storage.predictions import register_model

    torch.manual_seed(0)
    config = GuidedConfig(finding=FINDING, input_size=32, width=2, atrous_channels=2)
    path = tmp_path / "tiny.safetensors"
    save_weights(GuidedNet(config), path, {"architecture": "guided"})
    register_model(made.project.database, "tiny", f"guided:{FINDING}", {"val_threshold": 1e-6},
                   {"task": {"network": "guided", **config.to_dict()}}, {}, str(path), active=True)


def test_an_active_model_gets_its_panel_and_its_queue(qtbot, review_project, tmp_path):
    from storage.adjudication import record_adjudication
    from ui.review.queues import MODEL_VS_CONSENSUS
    from ui.screenshots.review import render_review_screenshot

    activate_a_tiny_model(review_project, tmp_path)
    ids = review_project.image_ids
    # Another reviewer already settled image 3: it is marked with the decision and goes after the open one.
    record_adjudication(review_project.project.database, review_project.readers["Admin"].id, ids[3], FINDING,
                        False, reason="A reflex, not a haemorrhage.")
    window = open_review(qtbot, review_project)
    window.tabs.setCurrentWidget(window.side_by_side)      # the model's panel; computed when shown
    qtbot.waitUntil(lambda: window.model_queue is not None, timeout=10_000)
    choose_queue(window, MODEL_VS_CONSENSUS)
    queued = listed(window)
    assert [(i, f) for i, f, _ in queued] == [(ids[4], FINDING), (ids[3], FINDING)]
    assert "✓" not in queued[0][2] and queued[1][2].endswith("\n✓ Haemorrhage: absent (Admin)")
    assert "; Haemorrhage: model p = " in window.queues.list.item(1).toolTip()   # the model's call stays in reach
    assert window.queues.count.text() == "1 to adjudicate, 1 adjudicated"
    qtbot.waitUntil(lambda: window.side_by_side.model.picture.image is not None, timeout=10_000)
    assert "p = " in window.side_by_side.model.details.text()
    out = render_review_screenshot(review_project.project, review_project.readers["Rhea"].id,
                                   tmp_path / "7-review.png", size=(1200, 800))
    assert out.stat().st_size > 10_000
    for view in ("-agreement", "-agreement-regions"):   # both levels of the Agreement tab beside it
        assert out.with_name(f"7-review{view}.png").stat().st_size > 10_000


def imported_as(db, image_id: int, path) -> None:
    """The image's stored SHA-256 made the file's: as if the photo rewritten by the test had been imported so."""
    from sqlalchemy import update

    from annotate.services.photos import sha256_of_file
    from storage.schema import Image

    with db.transaction() as session:
        session.execute(update(Image).where(Image.id == image_id).values(sha256=sha256_of_file(path)))


def test_a_photo_replaced_since_import_is_left_out_of_the_model_queue_and_named(qtbot, review_project, tmp_path):
    from storage.images import list_images
    from ui.review.queues import MODEL_VS_CONSENSUS

    ids = review_project.image_ids
    paths = {r.id: r.path for r in list_images(review_project.project.database)}
    paths[ids[3]].write_bytes(paths[ids[0]].read_bytes())        # another photograph under its name
    activate_a_tiny_model(review_project, tmp_path)
    window = open_review(qtbot, review_project)
    qtbot.waitUntil(lambda: window.model_queue is not None, timeout=10_000)
    choose_queue(window, MODEL_VS_CONSENSUS)
    assert (ids[4], FINDING) in [(i, f) for i, f, _ in listed(window)]   # the others still get their calls
    assert ids[3] not in window.model_queue
    assert window.status.text().startswith("The model vs consensus queue leaves out 1 photo: ")
    assert f"{paths[ids[3]]} has changed since it was imported" in window.status.text()


def test_a_red_free_photo_gets_no_model_call_and_the_panel_says_why(qtbot, review_project, tmp_path):
    import cv2
    import numpy as np

    from models.segmentation.stored_names import SCREENING_RED_FREE_NOTE
    from storage.images import list_images
    from ui.review.enlarged import MODEL
    from ui.review.legend import HEAT
    from ui.review.queues import ALL_IMAGES, MODEL_VS_CONSENSUS

    ids = review_project.image_ids
    path = next(r.path for r in list_images(review_project.project.database) if r.id == ids[3])
    assert cv2.imwrite(str(path), cv2.imread(str(path)) * np.array([0, 1, 0], np.uint8))   # a green export
    imported_as(review_project.project.database, ids[3], path)
    activate_a_tiny_model(review_project, tmp_path)
    window = open_review(qtbot, review_project)
    window.tabs.setCurrentWidget(window.side_by_side)
    qtbot.waitUntil(lambda: window.model_queue is not None, timeout=10_000)
    choose_queue(window, MODEL_VS_CONSENSUS)
    assert [(i, f) for i, f, _ in listed(window)] == [(ids[4], FINDING)]   # the red-free one gets no call
    choose_queue(window, ALL_IMAGES)
    window.queues.list.setCurrentRow([i for i, _, _ in listed(window)].index(ids[3]))
    model_panel = window.side_by_side.model
    qtbot.waitUntil(lambda: SCREENING_RED_FREE_NOTE in model_panel.details.text(), timeout=10_000)
    assert "p = " not in model_panel.details.text() and model_panel.picture.image is None
    window.enlarged.show_source(MODEL)
    assert SCREENING_RED_FREE_NOTE in window.enlarged.details.text() and not window.enlarged.canvas.has_overlay()
    assert HEAT not in window.enlarged.legend.kinds()   # no activation map is drawn, so none is explained


def test_without_an_active_model_the_starter_model_is_used_and_said_so(qtbot, review_project, no_starter_models):
    import torch

    from models.engine.weights import save_weights
    from models.findings.guided import GuidedConfig, GuidedNet
    from storage.predictions import register_model
    from ui.review.model_view import STARTER_MODEL_NAME, guided_models
    from ui.review.queues import ALL_IMAGES, MODEL_VS_CONSENSUS

    torch.manual_seed(0)
    config = GuidedConfig(finding=FINDING, input_size=32, width=2, atrous_channels=2)
    # As the starter files are written: the network's config and validation metrics in the metadata.
    # A threshold near 0 calls every photo present: the two absent images must be queued.
    save_weights(GuidedNet(config), no_starter_models / f"guided_{FINDING}.safetensors",
                 {"architecture": "guided", "network": f"guided:{FINDING}", "config": config.to_dict(),
                  "metrics": {"val_threshold": 1e-6}})
    window = open_review(qtbot, review_project)
    window.tabs.setCurrentWidget(window.side_by_side)      # the model's panel; computed when shown
    assert set(window.models) == {FINDING}        # drusen etc. ship no starter weights
    qtbot.waitUntil(lambda: window.model_queue is not None, timeout=10_000)
    choose_queue(window, MODEL_VS_CONSENSUS)
    ids = review_project.image_ids
    assert [(i, f) for i, f, _ in listed(window)] == [(ids[3], FINDING), (ids[4], FINDING)]
    window.queues.list.setCurrentRow(0)
    model_panel = window.side_by_side.model
    qtbot.waitUntil(lambda: model_panel.picture.image is not None, timeout=10_000)
    assert model_panel.title.text() == f"Model · {STARTER_MODEL_NAME}"
    assert "p = " in model_panel.details.text() and "threshold 0.00" in model_panel.details.text()
    # A finding without starter weights keeps the plain message.
    choose_queue(window, ALL_IMAGES)
    window.queues.finding.setCurrentIndex(window.queues.finding.findData("drusen"))
    window.queues.list.setCurrentRow(0)
    assert "No active model for drusen" in model_panel.details.text()
    # Once the clinic activates its own model, that one is shown instead.
    db = review_project.project.database
    register_model(db, "clinic", f"guided:{FINDING}", {}, {"task": {"network": "guided", **config.to_dict()}},
                   {}, str(no_starter_models / f"guided_{FINDING}.safetensors"), active=True)
    assert guided_models(db, window.finding_names)[FINDING].name == "clinic"


def test_gui_review_opens_the_screen_for_a_reviewer_only(qtbot, review_project, monkeypatch):
    from main import main
    from ui import workstation

    class NoEventLoop:
        def exec(self) -> int:
            return 0

    class TypedPin(workstation.SignInDialog):
        """The sign-in dialog as the reviewer meets it: `--reader Rhea` preselected, her PIN typed."""

        def exec(self) -> int:
            self.pin.setText(RHEA_PIN)
            self.sign_in_button.click()
            return self.result()

    monkeypatch.setattr("ui.app.make_app", lambda: NoEventLoop())
    monkeypatch.setattr("ui.app.quit_on_termination_signals", lambda app: None)   # pytest keeps its Ctrl+C
    monkeypatch.setattr(workstation, "SignInDialog", TypedPin)
    folder = str(review_project.folder)
    for name, opens in (("Rhea", True), ("Ana", False)):
        assert main(["gui", "--review", "--project", folder, "--reader", name]) == 0
        window = workstation.open_windows()[-1]
        workstation.release_window(window)
        qtbot.addWidget(window)
        review = window.review_window
        assert (review is not None) is opens
        if review is not None:
            qtbot.addWidget(review)
            qtbot.waitUntil(lambda review=review: review.data is not None, timeout=5000)
            review.close()
        window.close()
        window.controller.project.close()


def first_reader_panel_of_an_unreadable_photo(qtbot, made):
    """Ana's side-by-side panel for the first disagreement (image 1), once its photo could not be shown."""
    from ui.review.queues import DISAGREEMENTS

    window = open_review(qtbot, made)
    window.tabs.setCurrentWidget(window.side_by_side)
    choose_queue(window, DISAGREEMENTS)
    window.queues.list.setCurrentRow(0)
    qtbot.waitUntil(lambda: made.image_ids[1] in window.photo_errors, timeout=5000)
    return window.side_by_side.readers[0]


def test_a_missing_photo_is_said_in_the_panels_and_the_answers_still_show(qtbot, review_project):
    record_path = review_project.project.database.root / "photos" / "eye_1.jpg"
    record_path.unlink()
    panel = first_reader_panel_of_an_unreadable_photo(qtbot, review_project)
    assert panel.picture.image is None and "eye_1.jpg" in panel.picture.text
    assert "1 macula" in panel.details.text()


def test_a_photo_replaced_since_import_is_not_shown_side_by_side_as_that_image(qtbot, review_project):
    photos = review_project.project.database.root / "photos"
    (photos / "eye_1.jpg").write_bytes((photos / "eye_2.jpg").read_bytes())   # another photograph under its name
    panel = first_reader_panel_of_an_unreadable_photo(qtbot, review_project)
    assert panel.picture.image is None and "eye_1.jpg has changed since it was imported" in panel.picture.text
    assert "1 macula" in panel.details.text()                  # the answers still show


def test_region_level_agreement_shows_regional_agreements_numbers(qtbot, review_project):
    from annotate.agreement import regional_agreement
    from annotate.consensus import consensus_for_project
    from storage.review import iter_all_reads
    from ui.review.tables import NAME_WIDTH

    window = open_review(qtbot, review_project)
    db = review_project.project.database
    codes = [f.code for f in review_project.project.settings().findings]
    expected = regional_agreement(consensus_for_project(iter_all_reads(db), codes, k=2))
    view = window.agreement.regions
    shown = lambda value: "—" if math.isnan(value) else f"{value:.2f}"  # noqa: E731
    fleiss = view.fleiss
    assert fleiss.rowCount() == len(codes) + 1
    h = codes.index(FINDING)
    assert fleiss.item(h, 0).text() == "Haemorrhage"
    assert fleiss.item(h, 1).text() == shown(expected.fleiss_by_finding[h])
    assert [fleiss.item(h, 2 + r).text() for r in range(8)] == [shown(v) for v in expected.fleiss[h]]
    assert fleiss.item(len(codes), 1).text() == shown(expected.fleiss_overall)
    # regions {1, 4} / {1, 4} / {1, 4}, {1} / {1, 4} / none, {5} / none / none: region 1 agrees better than 4
    assert expected.fleiss[h, 0] > expected.fleiss[h, 3]
    readers = view.readers
    ids = [int(r) for r in expected.reader_ids]
    assert readers.rowCount() == len(ids) == 3
    for row, reader in enumerate(ids):
        pooled = expected.reader_accuracy(reader)
        assert readers.item(row, 1).text() == shown(pooled.sensitivity)
        assert readers.item(row, 2).text() == shown(pooled.specificity)
        for code in range(1, 9):
            one = expected.reader_accuracy(reader, None, code)
            assert readers.item(row, 2 + code).text() == f"{shown(one.sensitivity)} / {shown(one.specificity)}"
            assert f"TP {one.true_positive}, FN {one.false_negative}" in readers.item(row, 2 + code).toolTip()
    confusion = view.confusion
    pooled_matrix = expected.confusion.sum(axis=0)
    assert [[int(confusion.item(i, j).text()) for j in range(9)] for i in range(9)] == pooled_matrix.tolist()
    # One finding chosen: readers and confusion for it alone.
    window.queues.finding.setCurrentIndex(window.queues.finding.findData(FINDING))
    qtbot.waitUntil(lambda: window.agreement.shown.finding == FINDING, timeout=5000)
    assert [[int(confusion.item(i, j).text()) for j in range(9)] for i in range(9)] == expected.confusion[h].tolist()
    first = expected.reader_accuracy(ids[0], FINDING)
    assert readers.item(0, 1).text() == shown(first.sensitivity)
    # Names are whole in their tooltips and their column never passes NAME_WIDTH.
    assert readers.item(0, 0).toolTip() == readers.item(0, 0).text() and "Ana" in readers.item(0, 0).text()
    assert readers.columnWidth(0) <= NAME_WIDTH
    assert "5 superotemporal" in fleiss.horizontalHeaderItem(2 + 4).toolTip()


def test_a_long_reader_name_is_shortened_with_its_whole_name_in_the_tooltip(qtbot):
    from ui.review.tables import NAME_WIDTH, fill, make_table, name

    table = make_table(["Reader", "κ"], name_columns=(0,))
    qtbot.addWidget(table)
    long_name = "Dr Alexandra Konstantinopoulou-Vandenberghe (retina specialist)"
    fill(table, [[name(long_name), name("0.5")]])
    table.show()
    assert table.columnWidth(0) == NAME_WIDTH < table.fontMetrics().horizontalAdvance(long_name)
    assert table.item(0, 0).toolTip() == long_name
