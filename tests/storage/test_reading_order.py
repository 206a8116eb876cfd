"""The reading order that teaches the model most (issue 19.8): the pure scores, then readers'
queues on a crafted project (order, reproducibility, quality control, blind readers)."""
from __future__ import annotations

import dataclasses
import math

import pytest

from storage.assignment import assign_readers
from storage.errors import CancelledError, InvalidRequestError
from storage.images import ImageRecord
from storage.predictions import FINDINGS_PREDICTION, save_prediction
from storage.project import create_project, open_project, update_settings
from storage.quality import mark_gold, mix_gold_into_queues, schedule_repeats
from storage.readers import Role, add_reader
from storage.reading import ReaderSession
from storage.reading_order import (
    DISAGREEMENT_WEIGHT,
    binary_entropy,
    finding_disagreement,
    finding_uncertainty,
    image_score,
    order_queue,
    parse_reading_order,
    presence_scale,
    regional_uncertainty,
)
from tests.conftest import make_admin
from tests.storage.conftest import add_fake_images

FINDING = "haemorrhage"


def entry(probability, threshold=0.5, regions=(), peaks=None):
    found = dict(probability=probability, threshold=threshold, regions=list(regions),
                 region_activation=[0.1] * 9)
    if peaks is not None:
        found["region_peak"] = list(peaks)
    return found


# --- the scores, without a database -----------------------------------------------------------
def test_doubt_is_greatest_at_the_threshold_and_the_same_either_side_of_it():
    assert presence_scale(0.3, 0.3) == 0.5 and presence_scale(0.0, 0.3) == 0 and presence_scale(1.0, 0.3) == 1
    assert binary_entropy(0.5) == 1.0 and binary_entropy(0.0) == binary_entropy(1.0) == 0.0
    assert binary_entropy(0.2) == pytest.approx(-(0.2 * math.log2(0.2) + 0.8 * math.log2(0.8)))
    at = finding_uncertainty(entry(0.3, 0.3))
    below, above = finding_uncertainty(entry(0.15, 0.3)), finding_uncertainty(entry(0.65, 0.3))
    assert at == 1.0 and below == pytest.approx(above) and below < at      # halfway to 0 and to 1: the same
    assert finding_uncertainty(entry(0.99)) < finding_uncertainty(entry(0.8))


def test_regional_doubt_comes_from_each_regions_peak_against_the_threshold():
    sure = entry(0.9, peaks=[0.95, 0.0, 0, 0, 0, 0, 0, 0])
    unsure = entry(0.9, peaks=[0.5, 0.5, 0.5, 0.5, 0.0, 0, 0, 0])
    assert regional_uncertainty(sure) == pytest.approx(binary_entropy(presence_scale(0.95, 0.5)) / 8)
    assert regional_uncertainty(unsure) == 0.5
    assert finding_uncertainty(unsure) == pytest.approx((binary_entropy(0.9) + 0.5) / 2)
    assert regional_uncertainty(entry(0.9)) is None                   # mass alone: whether only
    assert regional_uncertainty(entry(0.9, peaks=[0.5] * 7)) is None  # not eight regions
    assert finding_uncertainty(entry(0.9)) == binary_entropy(0.9)


def test_disagreement_with_earlier_reads_counts_presence_then_regions():
    present = entry(0.9, regions=[1, 2])
    absent = entry(0.1)
    assert finding_disagreement(present, []) == 0
    assert finding_disagreement(present, [frozenset()]) == 1                    # model yes, reader no
    assert finding_disagreement(absent, [frozenset({4})]) == 1                  # and the reverse
    assert finding_disagreement(absent, [frozenset(), frozenset()]) == 0
    assert finding_disagreement(present, [frozenset({1, 2}), frozenset({2, 3})]) == pytest.approx((0 + 2 / 3) / 2)
    assert finding_disagreement(entry(0.9), [frozenset({5})]) == 0              # no regions named: presence only


def test_an_image_scores_its_findings_doubt_plus_disagreement_and_bad_payloads_score_nothing():
    payload = {"findings": {FINDING: entry(0.5), "drusen": entry(0.9, regions=[3]), "unknown": entry(0.5)}}
    doubt = 1.0 + binary_entropy(0.9)
    assert image_score(payload, [FINDING, "drusen"]) == pytest.approx(doubt)
    earlier = [{"drusen": frozenset({3})}, {FINDING: frozenset({1})}]
    # haemorrhage at 0.5 counts as present: the first reader disagrees; drusen: the second reader does
    expected = doubt + DISAGREEMENT_WEIGHT * (0.5 + 0.5)
    assert image_score(payload, [FINDING, "drusen"], earlier) == pytest.approx(expected)
    for bad in (None, {}, {"findings": []}, {"findings": {FINDING: {"probability": "high"}}},
                {"findings": {FINDING: {"probability": float("nan"), "threshold": 0.5}}}):
        assert image_score(bad, [FINDING]) is None
    assert image_score({"findings": {"unknown": entry(0.5)}}, [FINDING]) is None


def test_the_order_puts_finished_first_keeps_fixed_places_and_breaks_ties_by_the_default_order():
    ids = [10, 11, 12, 13, 14, 15]
    scores = {11: 0.2, 12: 0.9, 14: 0.2, 15: None, 10: 0.5}
    assert order_queue(ids, scores, fixed={13}) == [12, 10, 11, 13, 14, 15]
    assert order_queue(ids, scores, fixed={12, 13}) == [10, 11, 12, 13, 14, 15]
    assert order_queue(ids, scores, finished={12}, fixed={13}) == [12, 10, 11, 13, 14, 15]
    assert order_queue(ids, scores, finished={11, 14}, fixed={13}) == [11, 14, 12, 10, 13, 15]   # 13: third unfinished
    assert order_queue(ids, {}) == ids
    assert order_queue(ids, scores, {11}, {13}) == order_queue(list(ids), dict(scores), {11}, {13})


def test_reading_orders_are_named_as_the_command_line_names_them():
    assert parse_reading_order("model-uncertainty") == parse_reading_order("Model Uncertainty") == "model_uncertainty"
    assert parse_reading_order("default") == "default"
    with pytest.raises(ValueError, match="default or model-uncertainty"):
        parse_reading_order("random")


# --- readers' queues on a crafted project -----------------------------------------------------
# Haemorrhage probabilities (threshold 0.5) of train images 1..8; None: no prediction. Doubt:
# 2 → 1.0, 5 → H(0.35) .934, 3 → H(0.7) .881, 8 → (1 + 0.5) / 2 .75 (regions in doubt on half
# of them), 1 and 6 → H(0.02) .141 each (a tie: default order), then 4 and 7 unscored.
PROBABILITIES = {1: 0.02, 2: 0.5, 3: 0.7, 4: None, 5: 0.35, 6: 0.98, 7: None, 8: 0.5}
PEAKS = {8: [0.5, 0.5, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0]}
EXPECTED = [2, 5, 3, 8, 1, 6, 4, 7]


@pytest.fixture
def ward(tmp_path, database_url):
    """Three ophthalmologists reading all 8 train images, three retina specialists all 4 test
    images (suggestions hidden there, the default); haemorrhage predictions as PROBABILITIES."""
    project = create_project(tmp_path / "ward", database_url=database_url,
                             split_roles={"train": ["ophthalmologist"], "test": ["retina_specialist"]})
    db = project.database
    admin = make_admin(db)
    ophthalmologists = [add_reader(db, f"Dr O{i}", Role.OPHTHALMOLOGIST, None, acting_reader_id=admin.id)
                        for i in range(3)]
    specialists = [add_reader(db, f"Dr R{i}", Role.RETINA_SPECIALIST, None, acting_reader_id=admin.id)
                   for i in range(3)]
    images = add_fake_images(project, train=8, test=4)
    assert images == list(range(1, 13))
    assign_readers(db)
    for image, probability in PROBABILITIES.items():
        if probability is not None:
            found = entry(probability, peaks=PEAKS.get(image))
            save_prediction(db, image, FINDINGS_PREDICTION, {"findings": {FINDING: found}}, "guided:test")
    for image, probability in zip(range(9, 13), (0.01, 0.5, 0.99, 0.4), strict=True):
        save_prediction(db, image, FINDINGS_PREDICTION, {"findings": {FINDING: entry(probability)}}, "guided:test")
    yield project, admin, ophthalmologists, specialists
    project.close()


def ids(session: ReaderSession) -> list[int]:
    return [record.id for record in session.queue()]


def test_the_queue_puts_the_models_doubt_first_and_the_default_order_comes_back(ward):
    project, admin, ophthalmologists, _ = ward
    db = project.database
    session = ReaderSession(db, ophthalmologists[0].id)
    assignment_order = ids(session)
    assert assignment_order == list(range(1, 9))
    update_settings(db, reading_order="model_uncertainty", reader_id=admin.id)
    assert ids(session) == EXPECTED
    assert session.next_unfinished().id == 2
    assert session.next_unfinished(after_image_id=2).id == 5
    assert session.next_unfinished(after_image_id=7).id == 2        # wraps round to the start
    session.mark_normal(2)
    session.mark_done(2)                                             # finished: first in the list,
    assert ids(session) == EXPECTED                                  # so next after it is the best left
    assert session.next_unfinished(after_image_id=2).id == 5
    session.mark_done(2, False)
    assert ids(session) == EXPECTED and session.next_unfinished().id == 2   # unfinished again: back in order
    update_settings(db, reading_order="default", reader_id=admin.id)
    assert ids(session) == assignment_order
    assert session.next_unfinished(after_image_id=2).id == 3
    with pytest.raises(InvalidRequestError, match="default or model-uncertainty"):
        update_settings(db, reading_order="shuffled")


def test_the_order_is_the_same_in_every_call_and_every_session(ward, database_url):
    project, admin, ophthalmologists, _ = ward
    update_settings(project.database, reading_order="model_uncertainty", reader_id=admin.id)
    first = ReaderSession(project.database, ophthalmologists[0].id)
    second = ReaderSession(project.database, ophthalmologists[0].id)
    assert ids(first) == ids(first) == ids(second) == EXPECTED
    with open_project(project.root, database_url=database_url) as again:
        assert ids(ReaderSession(again.database, ophthalmologists[0].id)) == EXPECTED
    # every reader of the same images gets the same order from the same predictions
    assert ids(ReaderSession(project.database, ophthalmologists[1].id)) == EXPECTED


def test_a_first_ordering_reports_its_progress_and_one_stopped_half_way_is_finished_by_the_next_call(
        ward, monkeypatch):
    import storage.queue_order

    project, admin, ophthalmologists, _ = ward
    update_settings(project.database, reading_order="model_uncertainty", reader_id=admin.id)
    monkeypatch.setattr(storage.queue_order, "SCORE_CHUNK", 3)   # 6 scored images: two chunks
    session, seen = ReaderSession(project.database, ophthalmologists[0].id), []

    def stop_after_the_first_chunk(scored: int, total: int) -> None:
        seen.append((scored, total))
        if scored:
            raise CancelledError("Ordering the queue was cancelled.")

    with pytest.raises(CancelledError):
        session.queue_status(checkpoint=stop_after_the_first_chunk)
    assert seen == [(0, 6), (3, 6)]
    seen.clear()
    assert [record.id for record, _ in session.queue_status(checkpoint=lambda *step: seen.append(step))] == EXPECTED
    assert seen == [(0, 3), (3, 3)]          # only the images the stopped call had not scored
    assert session.next_unfinished().id == EXPECTED[0]


def test_earlier_readers_disagreeing_with_a_confident_model_put_the_image_first(ward):
    project, admin, ophthalmologists, _ = ward
    db = project.database
    update_settings(db, reading_order="model_uncertainty", reader_id=admin.id)
    first = ReaderSession(db, ophthalmologists[0].id)
    for other in ophthalmologists[1:]:
        reader = ReaderSession(db, other.id)
        reader.set_regions(1, FINDING, {1, 2})        # the model called image 1 clear at 0.02
        if other == ophthalmologists[1]:
            assert ids(first) == EXPECTED             # not finished yet: not an earlier read
        reader.mark_done(1)
        assert ids(reader)[0] == 1                    # their own finished read: first in their list
    # 0.141 + 1 × (disagreement 1) is above every doubt alone; the session that ordered the queue
    # before (scores kept) agrees with a new one
    assert ids(first) == ids(ReaderSession(db, ophthalmologists[0].id)) == [1, 2, 5, 3, 8, 6, 4, 7]
    ReaderSession(db, ophthalmologists[1].id).set_regions(1, FINDING, set())   # changes their mind
    assert ids(first) == [2, 5, 3, 8, 1, 6, 4, 7]      # one of two disagrees: 0.141 + 0.5 after 8's 0.75
    save_prediction(db, 4, FINDINGS_PREDICTION, {"findings": {FINDING: entry(0.5)}}, "guided:new")
    assert ids(first) == ids(ReaderSession(db, ophthalmologists[0].id)) == [2, 4, 5, 3, 8, 1, 6, 7]


def test_finished_reads_come_first_and_quality_control_keeps_its_places_among_the_rest(ward):
    project, admin, ophthalmologists, _ = ward
    db = project.database
    session = ReaderSession(db, ophthalmologists[0].id)
    for image in (3, 6):
        session.mark_normal(image)
        session.mark_done(image)
    save_prediction(db, 7, FINDINGS_PREDICTION, {"findings": {FINDING: entry(0.5)}}, "guided:test")
    mark_gold(db, admin.id, 7, {FINDING: [1]})
    assert mix_gold_into_queues(db, admin.id) == 0     # every ophthalmologist reads image 7 already
    assert schedule_repeats(db, admin.id, share=0.5, seed=1) == 1
    status = dict((record.id, done) for record, done in session.queue_status())
    repeat, finished = (3, 6) if not status[3] else (6, 3)
    default = ids(session)
    update_settings(db, reading_order="model_uncertainty", reader_id=admin.id)
    ordered = ids(session)
    assert ordered[0] == finished
    waiting = [image for image in default if image != finished]
    quality_control = (7, repeat)                      # gold, and reopened for a repeat
    assert [waiting.index(image) for image in quality_control] == [ordered[1:].index(image) for image in quality_control]
    assert [image for image in ordered[1:] if image not in quality_control] == [
        image for image in EXPECTED if image not in (3, 6, 7)]


def test_a_blind_reader_sees_the_same_queue_entries_in_either_order(ward):
    project, admin, _, specialists = ward
    db = project.database
    session = ReaderSession(db, specialists[0].id)
    default = session.queue_status()
    hidden = {image: session.suggestion(image, FINDINGS_PREDICTION) for image in range(9, 13)}
    update_settings(db, reading_order="model_uncertainty", reader_id=admin.id)
    ordered = session.queue_status()
    assert [record.id for record, _ in ordered] == [10, 12, 9, 11] != [record.id for record, _ in default]
    assert sorted(ordered, key=lambda item: item[0].id) == sorted(default, key=lambda item: item[0].id)
    # the entries are image records and done flags, nothing more, in either order
    assert {len(item) for item in ordered} == {2}
    assert all(type(record) is ImageRecord and type(done) is bool for record, done in ordered)
    assert [f.name for f in dataclasses.fields(ImageRecord)] == [
        "id", "path", "sha256", "width", "height", "laterality", "split", "fov", "crop", "patient"]
    # suggestions stay hidden on test images whatever the order
    assert hidden == {image: None for image in range(9, 13)}
    assert {image: session.suggestion(image, FINDINGS_PREDICTION) for image in range(9, 13)} == hidden
    assert session.next_unfinished().id == 10


def next_in_the_queue(queue: list[tuple[ImageRecord, bool]], after: int | None) -> int | None:
    """"Next unfinished" read off the whole queue: the first unfinished image after ``after``,
    wrapping round (what ``next_unfinished`` must agree with, however it finds it)."""
    start = next((i + 1 for i, (record, _) in enumerate(queue) if record.id == after), 0)
    return next((record.id for record, done in queue[start:] + queue[:start] if not done), None)


def test_next_unfinished_and_the_kept_order_agree_with_the_whole_queue_from_scratch_as_it_changes(ward):
    project, admin, ophthalmologists, _ = ward
    db = project.database
    update_settings(db, reading_order="model_uncertainty", reader_id=admin.id)
    session, other = ReaderSession(db, ophthalmologists[0].id), ReaderSession(db, ophthalmologists[1].id)
    mark_gold(db, admin.id, 5, {FINDING: [1]})        # a fixed place among the unfinished

    def agrees() -> None:
        queue = session.queue_status()
        # the order kept and brought up to date is the order computed from scratch
        assert [record.id for record, _ in queue] == ids(ReaderSession(db, ophthalmologists[0].id))
        for after in [None, 99, *range(1, 9)]:
            found = session.next_unfinished(after_image_id=after)
            assert (found.id if found else None) == next_in_the_queue(queue, after), after

    agrees()
    for image in (2, 8, 1):                            # the reader finishes, the order moves on
        session.mark_normal(image)
        session.mark_done(image)
        agrees()
    other.set_regions(6, FINDING, {1, 2})              # another reader contradicts the model
    other.mark_done(6)
    agrees()
    save_prediction(db, 7, FINDINGS_PREDICTION, {"findings": {FINDING: entry(0.5)}}, "guided:new")
    agrees()
    session.mark_done(8, False)                        # reopened
    agrees()
    other.set_regions(6, FINDING, set())               # changes their mind on a finished read
    agrees()
    other.mark_done(6, False)                          # and reopens it
    agrees()
    for image in range(1, 9):
        session.mark_done(image)
    assert session.next_unfinished() is None and session.next_unfinished(after_image_id=3) is None
