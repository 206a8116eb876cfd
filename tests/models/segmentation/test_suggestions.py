"""The suggestion rule (suggestions.py): each spot's facts (its share of pixels on the vessel map,
brought from the vessel network's coarser grid onto the lesion grid; its distances from the disc
and the FOV's rim), which spots count, and how many a region and a photo need."""
import numpy as np

from annotate.fov import FieldOfView
from models.segmentation.pipeline import Layer, PipelineResult, scale_matrix
from models.segmentation.stored_names import LESION_CHANNELS, LESION_NAMES
from models.segmentation.suggestions import (
    SuggestionRule,
    measure_photo,
    measure_spots,
    on_grid,
    regions_suggested,
    spots_kept,
)


def test_a_map_on_a_coarser_grid_lands_where_it_belongs_on_the_finer_one():
    coarse = np.zeros((50, 60), np.float32)
    coarse[10:20, 30:40] = 1.0                        # original pixels 20–40 (rows), 60–80 (columns)
    fine = on_grid(coarse, scale_matrix(0.5), scale_matrix(1.0, 4, 2), (100, 120))   # fine grid starts at (4, 2)
    assert fine[25, 65] == 1.0 and fine[10, 50] == 0.0
    rows, cols = np.nonzero(fine >= 0.5)   # grid = original − (4, 2): rows 18–37, columns 56–75
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (18, 37, 56, 75)


def test_a_spot_along_a_vessel_is_not_counted_when_the_rule_limits_the_vessel_share():
    prob = np.zeros((40, 40), np.float32)
    prob[10, 5:25] = 0.9                              # a reflex along a vessel
    prob[30:33, 30:33] = 0.9                          # a spot beside no vessel
    vessels = np.zeros(prob.shape, bool)
    vessels[9:12, :] = True
    spots = measure_spots(prob, 0.5, np.ones(prob.shape, np.uint8), vessels)
    assert spots.vessel_share.tolist() == [1.0, 0.0]
    assert spots_kept(spots, SuggestionRule(max_vessel_share=0.5)).tolist() == [False, True]
    assert spots_kept(spots, SuggestionRule()).tolist() == [True, True]   # no limit: both count
    assert spots.vessel_distance[0] == 0 and 19 < spots.vessel_distance[1] < 22   # rows 30–32: 19–21 px away
    assert spots_kept(spots, SuggestionRule(vessel_clearance=10)).tolist() == [False, True]
    assert measure_spots(prob, 0.5, np.ones(prob.shape, np.uint8)).vessel_distance.tolist() == [np.inf, np.inf]


def test_a_region_is_suggested_when_its_counted_spots_cover_the_least_area():
    prob = np.zeros((20, 20), np.float32)
    prob[2:4, 2:4] = 0.9                               # 4 px in region 1
    prob[12:14, 12:13] = 0.9                           # 2 px in region 2
    regions = np.ones(prob.shape, np.uint8)
    regions[10:, 10:] = 2
    spots = measure_spots(prob, 0.5, regions)
    kept = spots_kept(spots, SuggestionRule())
    regions, areas = regions_suggested(spots, kept, 1000.0, SuggestionRule(least_area=0.003))
    assert regions == [1] and areas[:2].tolist() == [0.004, 0.002]


def test_a_photos_vessel_layer_reaches_the_lesion_spots_on_their_grid():
    shape = (400, 400)
    result = PipelineResult(shape, FieldOfView(200, 200, 190), (120.0, 200.0), (260.0, 200.0), "test",
                            disc_diameter=80.0)
    vessels = np.zeros((200, 200), np.float32)       # the vessel network's grid: half the lesion grid's scale
    vessels[148:152, :] = 1.0                        # a horizontal vessel at original rows 296–304
    result.layers["vessels"], result.thresholds["vessels"] = Layer(vessels, scale_matrix(0.5)), 0.5
    for channel in LESION_CHANNELS:
        prob = np.zeros(shape, np.float32)
        prob[298:302, 250:290] = 0.9 if channel == "HE" else 0.0   # along the vessel
        prob[100:104, 250:254] = 0.9 if channel == "HE" else 0.0   # away from it
        result.layers[LESION_NAMES[channel]], result.thresholds[LESION_NAMES[channel]] = \
            Layer(prob, scale_matrix(1.0)), 0.5
    photo = measure_photo(result)
    assert sorted(photo.spots["HE"].vessel_share.tolist()) == [0.0, 1.0]
    assert len(photo.spots["MA"].peak) == 0 and round(photo.disc_area) == round(np.pi * 40 ** 2)


def test_a_region_needs_its_least_spots_and_a_photo_its_least_spots_in_all():
    prob = np.zeros((40, 40), np.float32)
    prob[2, 2] = prob[2, 6] = 0.9                      # two spots in region 1
    prob[30, 30] = 0.9                                 # one spot in region 2
    regions = np.ones(prob.shape, np.uint8)
    regions[20:, 20:] = 2
    spots = measure_spots(prob, 0.5, regions)
    kept = spots_kept(spots, SuggestionRule())
    assert regions_suggested(spots, kept, 1000.0, SuggestionRule(least_area=0.0))[0] == [1, 2]
    assert regions_suggested(spots, kept, 1000.0, SuggestionRule(least_area=0.0, least_spots=2))[0] == [1]
    assert regions_suggested(spots, kept, 1000.0, SuggestionRule(least_area=0.0, photo_least_spots=3))[0] == [1, 2]
    assert regions_suggested(spots, kept, 1000.0, SuggestionRule(least_area=0.0, photo_least_spots=4))[0] == []


def test_spots_near_the_disc_or_the_rim_are_not_counted_when_the_rule_keeps_clear_of_them():
    shape = (400, 400)
    result = PipelineResult(shape, FieldOfView(200, 200, 190), (120.0, 200.0), (260.0, 200.0), "test",
                            disc_diameter=80.0)
    for channel in LESION_CHANNELS:
        prob = np.zeros(shape, np.float32)
        if channel == "EX":
            prob[198:202, 150:154] = 0.9               # at the disc's rim: 0.4 disc diameters from its centre
            prob[198:202, 380:384] = 0.9               # at the FOV's rim: 0.04 of its radius inside
            prob[120:124, 250:254] = 0.9               # in the retina
        result.layers[LESION_NAMES[channel]], result.thresholds[LESION_NAMES[channel]] = \
            Layer(prob, scale_matrix(1.0)), 0.5
    spots = measure_photo(result).spots["EX"]
    order = np.argsort(spots.centre[:, 0])             # disc rim, retina, FOV rim from left to right
    assert np.round(spots.disc_distance[order], 2).tolist() == [0.4, 1.92, 3.28]
    assert np.round(spots.rim_distance[order], 2).tolist() == [0.75, 0.51, 0.04]
    assert spots_kept(spots, SuggestionRule(disc_clearance=1.0, rim_clearance=0.08))[order].tolist() == [
        False, True, False]
