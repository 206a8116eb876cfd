"""Reader analytics on a crafted audit trail; the drift test against statsmodels' z-test."""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest
from statsmodels.stats.proportion import proportions_ztest

from annotate.analytics import (
    ReadEvent,
    agreement_over_time,
    completion_times,
    drift_warnings,
    dwell_times,
    reading_times,
    two_proportion_z,
)
from annotate.consensus import consensus_for_project
from tests.annotate.test_consensus import marks, normal

START = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)   # a Monday


def at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


def test_seconds_per_image_and_action_with_breaks_left_out():
    events = [
        ReadEvent(1, 10, "set_regions", at(20)),      # first event of the day: nothing before it counts
        ReadEvent(1, 10, "set_regions", at(30)),      # 10 s
        ReadEvent(1, 10, "mark_done", at(35), True),  # 5 s
        ReadEvent(1, 11, "mark_normal", at(50)),      # 15 s on image 11
        ReadEvent(1, 11, "mark_done", at(52), True),  # 2 s
        ReadEvent(1, 12, "mark_normal", at(52 + 3600)),   # after lunch: a break, 0 s
        ReadEvent(1, 12, "mark_done", at(60 + 3600), True),   # 8 s
        ReadEvent(2, 10, "mark_normal", at(40)),      # another reader's clock is their own
        ReadEvent(2, 10, "mark_done", at(100), True),
    ]
    assert [s for _, s in dwell_times(events)] == [0, 10, 5, 15, 2, 0, 8, 0, 60]
    first, second = reading_times(events)
    assert (first.reader_id, first.images) == (1, 3)
    assert first.median_seconds_per_image == 15 and first.mean_seconds_per_image == pytest.approx(40 / 3)
    assert first.seconds_per_action == {"mark_done": (3, 5), "mark_normal": (2, 7.5), "set_regions": (2, 5)}
    assert second.seconds_per_action["mark_done"] == (1, 60)
    assert completion_times(events)[(1, 12)] == at(3660)


def test_two_proportion_z_equals_statsmodels():
    for counts in ((30, 50, 80, 100), (5, 40, 90, 120), (12, 12, 40, 60)):
        z, p = two_proportion_z(*counts)
        expected_z, expected_p = proportions_ztest([counts[0], counts[2]], [counts[1], counts[3]])
        assert z == pytest.approx(expected_z) and p == pytest.approx(expected_p)
    assert math.isnan(two_proportion_z(0, 0, 3, 5)[0])


def crafted_drift():
    """Reader 1 finds every haemorrhage for two weeks, then misses most in week three; readers 2
    and 3 always find them, so the consensus stays present. Weekly: 40 images per week."""
    reads, completed = [], {}
    for image in range(120):
        week = image // 40
        present = image % 2 == 0
        misses = week == 2 and image % 4 == 0
        for reader in (1, 2, 3):
            said = marks(haemorrhage={1}) if present and not (reader == 1 and misses) else normal()
            reads.append((image, reader, said))
            completed[(reader, image)] = START + timedelta(days=7 * week, minutes=image)
    return consensus_for_project(reads, ["haemorrhage"]), completed


def test_agreement_per_week_and_per_block_and_the_drift_warning():
    consensus, completed = crafted_drift()
    weeks = [p for p in agreement_over_time(consensus, completed) if p.reader_id == 1]
    assert [p.period for p in weeks] == ["2026-W49", "2026-W50", "2026-W51"]
    assert [p.images for p in weeks] == [40, 40, 40]
    assert weeks[0].sensitivity == 1.0 and weeks[2].sensitivity == pytest.approx(0.5)
    assert weeks[2].specificity == 1.0 and weeks[0].kappa == pytest.approx(1.0)
    blocks = [p for p in agreement_over_time(consensus, completed, by="images", block=50) if p.reader_id == 1]
    assert [(p.period, p.images) for p in blocks] == [("1-50", 50), ("51-100", 50), ("101-150", 20)]
    (warning,) = drift_warnings(agreement_over_time(consensus, completed))
    assert (warning.reader_id, warning.period, warning.measure) == (1, "2026-W51", "sensitivity")
    assert warning.baseline == 1.0 and warning.now == pytest.approx(0.5) and warning.p_value < 0.01
    assert "fell to 0.50 in 2026-W51" in warning.sentence("Dr One")


def test_a_steady_reader_raises_no_warning_and_undone_reads_are_left_out():
    consensus, completed = crafted_drift()
    steady = {key: when for key, when in completed.items() if key[0] != 1}
    assert drift_warnings(agreement_over_time(consensus, steady)) == []
    assert {p.reader_id for p in agreement_over_time(consensus, steady)} == {2, 3}
    with pytest.raises(ValueError):
        agreement_over_time(consensus, steady, by="month")
    assert agreement_over_time(consensus_for_project([], ["drusen"]), {}) == []
