"""The suggestion rule's facts about each spot (suggestions.py): its share of pixels on the vessel
map, with the vessel layer brought from its own coarser grid onto the lesion grid."""
import numpy as np

from annotate.fov import FieldOfView
from models.segmentation.pipeline import Layer, PipelineResult, scale_matrix
from models.segmentation.stored_names import LESION_CHANNELS, LESION_NAMES
from models.segmentation.suggestions import (
    SuggestionRule,
    measure_photo,
    measure_spots,
    on_grid,
    region_areas,
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


def test_a_region_is_suggested_when_its_counted_spots_cover_the_least_area():
    prob = np.zeros((20, 20), np.float32)
    prob[2:4, 2:4] = 0.9                               # 4 px in region 1
    prob[12:14, 12:13] = 0.9                           # 2 px in region 2
    regions = np.ones(prob.shape, np.uint8)
    regions[10:, 10:] = 2
    spots = measure_spots(prob, 0.5, regions)
    areas = region_areas(spots, spots_kept(spots, SuggestionRule()), disc_area=1000.0)
    assert areas[:2].tolist() == [0.004, 0.002]
    assert regions_suggested(areas, SuggestionRule(least_area=0.003)) == [1]


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
