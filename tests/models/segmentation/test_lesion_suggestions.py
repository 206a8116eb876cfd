"""Which lesion spots become suggested regions: per-type least area and the peak a spot must reach
(the rules against false suggestions on healthy eyes, docs/benchmarks.md)."""
import numpy as np

from annotate.fov import FieldOfView
from models.segmentation.pipeline import (
    PipelineOptions,
    PipelineResult,
    _suggest_regions,
    confident_spots,
    scale_matrix,
)
from models.segmentation.stored_names import LESION_CHANNELS, LESION_NAMES


def blob(prob: np.ndarray, cx: int, cy: int, radius: int, peak: float, rim: float = 0.6) -> None:
    """A round spot: ``peak`` at its centre pixel, ``rim`` elsewhere inside."""
    yy, xx = np.mgrid[:prob.shape[0], :prob.shape[1]]
    prob[(xx - cx) ** 2 + (yy - cy) ** 2 <= radius ** 2] = rim
    prob[cy, cx] = peak


def test_a_spot_counts_whole_when_its_peak_is_high_enough_and_not_at_all_otherwise():
    prob = np.zeros((60, 80), np.float32)
    blob(prob, 20, 30, 5, peak=0.99)   # a lesion: its faint rim comes with it
    blob(prob, 60, 30, 5, peak=0.7)    # a reflex: over the threshold, never confident
    kept = confident_spots(prob, 0.5, 0.95)
    assert kept[30, 15] and kept[30, 20] and not kept[30, 60] and not kept[30, 55]
    assert kept.sum() == (prob[:, :40] >= 0.5).sum()
    assert np.array_equal(confident_spots(prob, 0.5), prob >= 0.5)          # no peak asked: the threshold alone
    assert not confident_spots(np.zeros((4, 4), np.float32), 0.5, 0.9).any()


def suggestions(spots: dict[str, tuple[int, float]], options: PipelineOptions | None = None) -> dict[str, list[int]]:
    """Each type gets one spot of (radius, peak) in the same place of the macula, on a 400 × 400 photo
    whose disc is 80 px across (disc area ≈ 5027 px: 5e-4 of it ≈ 2.5 px, 1e-3 ≈ 5 px)."""
    shape = (400, 400)
    result = PipelineResult(shape, FieldOfView(200, 200, 190), (120.0, 200.0), (260.0, 200.0), "test",
                            disc_diameter=80.0)
    probs = np.zeros((len(LESION_CHANNELS), *shape), np.float32)
    for c, channel in enumerate(LESION_CHANNELS):
        result.thresholds[LESION_NAMES[channel]] = 0.5
        if channel in spots:
            radius, peak = spots[channel]
            blob(probs[c], 260, 200, radius, peak)
    _suggest_regions(result, probs, scale_matrix(1.0), shape, options or PipelineOptions(), [])
    return {channel: result.lesion_regions[LESION_NAMES[channel]] for channel in LESION_CHANNELS}


def test_a_faint_haemorrhage_or_exudate_is_not_suggested_and_a_confident_one_is():
    faint = suggestions({"HE": (6, 0.9), "EX": (6, 0.9), "SE": (6, 0.9), "MA": (6, 0.9)})
    assert faint == {"MA": [1], "HE": [], "EX": [], "SE": []}   # microaneurysms: the threshold alone
    confident = suggestions({"HE": (6, 0.99), "EX": (6, 0.99), "SE": (6, 0.99)})
    assert confident == {"MA": [], "HE": [1], "EX": [1], "SE": [1]}


def test_a_hard_exudate_needs_twice_the_area_a_microaneurysm_needs():
    tiny = suggestions({"MA": (1, 0.99), "EX": (1, 0.99)})   # 5 px: between 5e-4 and 1e-3 of the disc area
    assert tiny == {"MA": [1], "HE": [], "EX": [], "SE": []}
    assert suggestions({"EX": (2, 0.99)})["EX"] == [1]       # 13 px
    everything = PipelineOptions(lesion_min_area={}, lesion_peak={})   # the rules off: the former behaviour
    assert suggestions({"MA": (1, 0.99), "EX": (1, 0.99), "HE": (6, 0.9)}, everything) == {
        "MA": [1], "HE": [1], "EX": [1], "SE": []}
