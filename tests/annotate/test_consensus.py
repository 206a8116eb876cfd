"""Consensus of three readers: votes, k, ungradable reads, cues and diagnoses, by hand."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from annotate.consensus import (
    bits_to_regions,
    consensus_for_image,
    consensus_for_project,
    regions_to_bits,
)

FINDINGS = ["haemorrhage", "hard_exudate", "drusen"]


@dataclass
class Read:
    regions: dict = field(default_factory=dict)
    normal: bool = False
    ungradable: bool = False
    diagnosis: str | None = None
    done: bool = True


def normal(diagnosis=None) -> Read:
    return Read(normal=True, diagnosis=diagnosis)


def marks(diagnosis=None, **regions) -> Read:
    return Read(regions={code: frozenset(r) for code, r in regions.items()}, diagnosis=diagnosis)


def test_two_of_three_is_present_with_the_union_of_their_regions_as_cue():
    result = consensus_for_image(
        [marks(haemorrhage={1, 5}, hard_exudate={1}), marks(haemorrhage={5, 6}), normal()], FINDINGS
    )
    haemorrhage = result.findings["haemorrhage"]
    assert (haemorrhage.state, haemorrhage.votes, haemorrhage.cue_regions) == ("present", 2, frozenset({1, 5, 6}))
    assert result.findings["hard_exudate"].state == "uncertain"      # 1 of 3: left out of training
    assert result.findings["drusen"].state == "absent"               # 0 of 3
    assert result.findings["drusen"].cue_regions == frozenset()


def test_strict_k_of_three_makes_two_votes_uncertain():
    reads = [marks(haemorrhage={1}), marks(haemorrhage={1}), normal()]
    assert consensus_for_image(reads, FINDINGS, k=3).findings["haemorrhage"].state == "uncertain"
    reads[2] = marks(haemorrhage={4})
    strict = consensus_for_image(reads, FINDINGS, k=3).findings["haemorrhage"]
    assert (strict.state, strict.cue_regions) == ("present", frozenset({1, 4}))
    with pytest.raises(ValueError):
        consensus_for_image(reads, FINDINGS, k=4)


def test_ungradable_reader_has_no_vote_and_absence_then_needs_three_gradable_reads():
    result = consensus_for_image(
        [Read(ungradable=True, regions={"drusen": frozenset({1})}), marks(haemorrhage={2}, drusen={3}), marks(drusen={3, 7})],
        FINDINGS,
    )
    assert result.gradable_reads == 2 and not result.ungradable
    assert result.findings["haemorrhage"].state == "uncertain"     # 1 vote of 2 gradable
    assert result.findings["hard_exudate"].state == "uncertain"    # nobody of 2: not enough to say absent
    drusen = result.findings["drusen"]
    assert (drusen.state, drusen.votes, drusen.cue_regions) == ("present", 2, frozenset({3, 7}))


def test_image_called_ungradable_by_a_majority_has_only_uncertain_findings():
    result = consensus_for_image(
        [Read(ungradable=True), Read(ungradable=True), marks(haemorrhage={1})], FINDINGS
    )
    assert result.ungradable
    assert {f.state for f in result.findings.values()} == {"uncertain"}


def test_reads_not_done_do_not_count():
    reads = [marks(haemorrhage={1}), Read(regions={"haemorrhage": frozenset({1})}, done=False), normal()]
    result = consensus_for_image(reads, FINDINGS)
    assert result.reads == 2
    assert result.findings["haemorrhage"].votes == 1


@pytest.mark.parametrize(
    "diagnoses, expected",
    [
        (["dr", "dr", None], "dr"),
        (["dr", "amd", "amd"], "amd"),
        (["dr", "amd", None], None),           # tie: no majority
        (["dr", None, None], None),            # one of three is not a majority
    ],
)
def test_diagnosis_is_the_majority_of_gradable_reads(diagnoses, expected):
    reads = [normal(diagnosis=d) for d in diagnoses]
    assert consensus_for_image(reads, FINDINGS).diagnosis == expected


def test_ungradable_reader_gives_no_diagnosis():
    reads = [normal("dr"), normal("amd"), Read(ungradable=True, diagnosis="amd")]
    assert consensus_for_image(reads, FINDINGS).diagnosis is None


def test_project_consensus_matches_image_by_image_with_readers_in_any_order():
    by_image = {
        10: [(1, marks(haemorrhage={1})), (2, marks(haemorrhage={2}, diagnosis="dr")), (3, normal("dr"))],
        11: [(3, Read(ungradable=True)), (1, normal()), (4, marks(drusen={8}))],
        12: [(2, normal()), (4, normal()), (1, normal())],
    }
    triples = [(image, reader, read) for image, reads in by_image.items() for reader, read in reads]
    project = consensus_for_project(reversed(triples), FINDINGS)
    for image, reads in by_image.items():
        assert project.image(image) == consensus_for_image([r for _, r in reads], FINDINGS, image_id=image)
    assert [c.image_id for c in project.images()] == [12, 11, 10]
    assert project.image(12).findings["haemorrhage"].state == "absent"
    assert np.array_equal(np.sort(project.table.reader_ids[project.row(11)]), [1, 3, 4])


def test_region_bits_round_trip():
    assert regions_to_bits({1, 8}) == 0b10000001
    assert bits_to_regions(0b10000001) == frozenset({1, 8})
    assert bits_to_regions(regions_to_bits(range(1, 9))) == frozenset(range(1, 9))
