"""Which lesion spots become suggested regions: per-type least area and the peak a spot must reach
(the rules against false suggestions on healthy eyes, docs/benchmarks.md); the peaks belong to the
lesion network that made the probabilities (stored in its file), older files get the defaults."""
import numpy as np

from annotate.fov import FieldOfView
from models.engine.weights import read_metadata, save_weights
from models.segmentation.lesions import LesionNetConfig, build_lesion_net
from models.segmentation.pipeline import (
    DEFAULT_LESION_PEAK,
    Layer,
    PipelineOptions,
    PipelineResult,
    _suggest_regions,
    lesion_peaks,
    lesion_rule_fields,
    load_pipeline_models,
    network_peaks,
    scale_matrix,
    suggestion_rules,
)
from models.segmentation.stored_names import LESION_CHANNELS, LESION_NAMES
from models.segmentation.suggestions import SuggestionRule, measure_spots, spots_kept


def blob(prob: np.ndarray, cx: int, cy: int, radius: int, peak: float, rim: float = 0.6) -> None:
    """A round spot: ``peak`` at its centre pixel, ``rim`` elsewhere inside."""
    yy, xx = np.mgrid[:prob.shape[0], :prob.shape[1]]
    prob[(xx - cx) ** 2 + (yy - cy) ** 2 <= radius ** 2] = rim
    prob[cy, cx] = peak


def test_a_spot_counts_whole_when_its_peak_is_high_enough_and_not_at_all_otherwise():
    prob = np.zeros((60, 80), np.float32)
    blob(prob, 20, 30, 5, peak=0.99)   # a lesion: its faint rim comes with it
    blob(prob, 60, 30, 5, peak=0.7)    # a reflex: over the threshold, never confident
    regions = np.ones(prob.shape, np.uint8)
    regions[:, 40:] = 2
    spots = measure_spots(prob, 0.5, regions)
    kept = spots_kept(spots, SuggestionRule(peak=0.95))
    assert list(kept) == [True, False] and list(spots.peak) == [np.float32(0.99), np.float32(0.7)]
    assert spots.region_pixels[:, :2].tolist() == [[(prob[:, :40] >= 0.5).sum(), 0], [0, (prob[:, 40:] >= 0.5).sum()]]
    assert spots_kept(spots, SuggestionRule()).all()          # no peak asked: the threshold alone
    assert len(measure_spots(np.zeros((4, 4), np.float32), 0.5, regions[:4, :4]).peak) == 0


def suggestions(spots: dict[str, tuple[int, float]], options: PipelineOptions | None = None,
                peaks: dict[str, float] | None = None) -> dict[str, list[int]]:
    """Each type gets one spot of (radius, peak) in the same place of the macula, on a 400 × 400 photo
    whose disc is 80 px across (disc area ≈ 5027 px: 5e-4 of it ≈ 2.5 px, 1e-3 ≈ 5 px)."""
    shape = (400, 400)
    result = PipelineResult(shape, FieldOfView(200, 200, 190), (120.0, 200.0), (260.0, 200.0), "test",
                            disc_diameter=80.0)
    for channel in LESION_CHANNELS:
        prob = np.zeros(shape, np.float32)
        if channel in spots:
            radius, peak = spots[channel]
            blob(prob, 260, 200, radius, peak)
        result.layers[LESION_NAMES[channel]] = Layer(prob, scale_matrix(1.0))
        result.thresholds[LESION_NAMES[channel]] = 0.5
    _suggest_regions(result, options or PipelineOptions(), [], peaks)
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


def test_the_networks_peaks_decide_unless_the_options_name_others():
    faint = {"HE": (6, 0.9), "SE": (6, 0.9)}
    assert suggestions(faint) == {"MA": [], "HE": [], "EX": [], "SE": []}     # no peaks given: the defaults (0.95)
    network = {"HE": 0.85, "SE": 0.95}
    assert suggestions(faint, peaks=network) == {"MA": [], "HE": [1], "EX": [], "SE": []}
    assert suggestions(faint, PipelineOptions(lesion_peak={"SE": 0.8}), network)["HE"] == [1]   # options win whole
    assert suggestions(faint, PipelineOptions(lesion_peak={"HE": 0.97}), network)["HE"] == []


def test_a_lesion_file_stores_its_peaks_and_an_older_file_gets_the_defaults(tmp_path, tiny_weights):
    assert network_peaks(LesionNetConfig()) == DEFAULT_LESION_PEAK
    assert network_peaks(LesionNetConfig(peaks=(0.0, 0.97, 0.6, 0.9))) == {"HE": 0.97, "EX": 0.6, "SE": 0.9}
    assert network_peaks(LesionNetConfig(channels=("MA", "EX"), thresholds=(0.5, 0.5))) == {"EX": 0.98}
    for name in ("landmarks", "disc_cup", "vessels"):
        (tmp_path / f"{name}.safetensors").write_bytes((tiny_weights / f"{name}.safetensors").read_bytes())
    metadata = read_metadata(tiny_weights / "lesions.safetensors")
    assert "peaks" not in metadata["config"] or metadata["config"]["peaks"] is None   # as files written before
    stored = LesionNetConfig(decoder_channels=16, fov_diameter_px=160, peaks=(0.0, 0.97, 0.6, 0.9))
    save_weights(build_lesion_net(stored), tmp_path / "lesions.safetensors",
                 {"name": "lesions", "config": stored.to_dict(), "version": "lesions-peaks"}, int8=True)
    models, messages = load_pipeline_models(tmp_path, "cpu")
    assert messages == [] and models.get("lesions").config.peaks == (0.0, 0.97, 0.6, 0.9)
    assert lesion_peaks(models) == {"HE": 0.97, "EX": 0.6, "SE": 0.9}
    # A detail network supplies MA and EX: its peaks (here the defaults: a file without) replace the lesion network's.
    detail = LesionNetConfig(architecture="unet", channels=("MA", "EX"), decoder_channels=16, thresholds=(0.3, 0.4),
                             fov_diameter_px=160)
    save_weights(build_lesion_net(detail), tmp_path / "lesion_detail.safetensors",
                 {"name": "lesion_detail", "config": detail.to_dict(), "version": "detail-test"})
    assert lesion_peaks(load_pipeline_models(tmp_path, "cpu")[0]) == {"HE": 0.97, "EX": 0.98, "SE": 0.9}


def test_the_rest_of_each_rule_is_stored_with_the_network_that_supplies_the_type(tmp_path, tiny_weights):
    for name in ("landmarks", "disc_cup", "vessels"):
        (tmp_path / f"{name}.safetensors").write_bytes((tiny_weights / f"{name}.safetensors").read_bytes())
    lesions = LesionNetConfig(decoder_channels=16, fov_diameter_px=160,
                              suggestion_rules={"HE": {"least_spots": 2}, "MA": {"least_spots": 9}})
    detail = LesionNetConfig(architecture="unet", channels=("MA", "EX"), decoder_channels=16, thresholds=(0.3, 0.4),
                             fov_diameter_px=160, suggestion_rules={"MA": {"photo_least_spots": 4, "least_area": 2e-3}})
    for name, config in (("lesions", lesions), ("lesion_detail", detail)):
        save_weights(build_lesion_net(config), tmp_path / f"{name}.safetensors",
                     {"name": name, "config": config.to_dict(), "version": name}, int8=True)
    models, messages = load_pipeline_models(tmp_path, "cpu")
    fields = lesion_rule_fields(models)
    assert messages == [] and fields == {"HE": {"least_spots": 2}, "MA": {"photo_least_spots": 4, "least_area": 2e-3}}
    rules = suggestion_rules(PipelineOptions(), lesion_peaks(models), fields)
    assert rules["MA"] == SuggestionRule(least_area=2e-3, photo_least_spots=4)   # the detail network's MA
    assert rules["HE"] == SuggestionRule(peak=0.95, least_spots=2) and rules["EX"].least_area == 1e-3
    assert suggestion_rules(PipelineOptions(lesion_rules={}), lesion_peaks(models), fields)["HE"].least_spots == 1


def test_a_region_with_one_spot_is_not_suggested_when_the_type_needs_two():
    one = {"HE": (6, 0.99)}
    assert suggestions(one)["HE"] == [1]
    assert suggestions(one, PipelineOptions(lesion_rules={"HE": {"least_spots": 2}}))["HE"] == []


def test_the_mirror_average_is_stored_in_each_lesion_file_and_an_older_file_runs_without(tmp_path, tiny_weights):
    for name in ("landmarks", "disc_cup", "vessels"):
        (tmp_path / f"{name}.safetensors").write_bytes((tiny_weights / f"{name}.safetensors").read_bytes())
    assert LesionNetConfig.from_dict({"decoder_channels": 16}).mirror_average is False   # files written before
    lesions = LesionNetConfig(decoder_channels=16, fov_diameter_px=160, mirror_average=True)
    detail = LesionNetConfig(architecture="unet", channels=("MA", "EX"), decoder_channels=16, thresholds=(0.3, 0.4),
                             fov_diameter_px=160, blend=0.5)
    for name, config in (("lesions", lesions), ("lesion_detail", detail)):
        save_weights(build_lesion_net(config), tmp_path / f"{name}.safetensors",
                     {"name": name, "config": config.to_dict(), "version": name}, int8=True)
    models, messages = load_pipeline_models(tmp_path, "cpu")
    assert messages == [] and models.get("lesions").config.mirror_average is True
    assert models.get("lesion_detail").config.mirror_average is False
