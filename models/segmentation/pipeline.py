"""The per-image pre-segmentation pipeline:
field of view → vessels → landmarks (locator, else classical) → disc/cup on a disc crop (refines
the disc) → eight regions → lesions → regions suggested per lesion type.

A red-free photo (``red_free.is_red_free``: grey or green-tinted) is read from its green alone, on
all three channels, and differently, as the networks learnt on colour: the locator's disc is drawn
to where the vessels converge (vessels come from the green channel, the same in grey), the disc/cup
network sees the photo in typical fundus colours, and no lesion regions are suggested (one message
says so).

``load_pipeline_models`` never fails for missing or damaged weights: it says which, and the
pipeline skips that network (or, for the landmark locator, falls back to the classical method).
``run_pipeline`` works at each network's own working resolution (see ``registry.NETWORKS``) and
keeps every map with the affine map from original pixels to it, so masks are drawn at any size.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from annotate.fov import FieldOfView, crop_to_fov, detect_fov, fov_mask, no_fundus_reason
from annotate.geometry import region_label_map
from models.engine.cancel import check_cancelled, stop_layers_when
from models.engine.device import pick_device
from models.engine.fast_cpu import as_planned
from models.engine.precision import Precision, resolve_inference, resolve_precision
from models.engine.weights import WEIGHTS_DIR, check_made_for, load_weights, read_metadata
from models.segmentation.disc_cup import DISC_PER_FOV, segment_disc_cup_batch
from models.segmentation.landmarks import choose_landmarks, locate_classical, locate_learned_batch
from models.segmentation.lesions import (
    LESION_CHANNELS,
    LESION_NAMES,
    LesionNetConfig,
    blend_detail,
    prepare_input,
    segment_prepared_batch,
)
from models.segmentation.red_free import (
    VESSEL_PRIOR_WEIGHT,
    is_red_free,
    pseudo_colour,
    red_free_version,
    vessel_convergence,
)
from models.segmentation.registry import NETWORKS
from models.segmentation.stored_names import RED_FREE_NOTE
from models.segmentation.suggestions import SuggestionRule, measure_photo, suggest
from models.segmentation.vessels import segment_vessels_batch
from storage.errors import GeometryError, WeightsError

MASK_NAMES = ("disc", "cup", "vessels", *(LESION_NAMES[c] for c in LESION_CHANNELS))


@dataclass
class LoadedModel:
    model: nn.Module
    config: Any      # the network's config dataclass: its kind depends on the network (registry.NETWORKS)
    version: str


@dataclass
class PipelineModels:
    device: torch.device
    loaded: dict[str, LoadedModel] = field(default_factory=dict)
    cancel: threading.Event | None = None   # seen between stages and before every layer
    plan: Precision | None = None           # backend and precision (``resolve_inference``), set by loading
    export_failed: list[str] = field(default_factory=list)   # networks left in PyTorch by a failed ONNX export

    def get(self, name: str) -> LoadedModel | None:
        return self.loaded.get(name)

    def backend_line(self) -> str:
        """Which backend and precision the networks compute in, and why, in one line."""
        plan = self.plan or resolve_inference(self.device)
        if not self.export_failed:
            return f"Pre-segmentation networks: {plan.line()}."
        in_torch = resolve_precision(self.device)
        if len(self.export_failed) == len(self.loaded):
            return f"Pre-segmentation networks: {replace(in_torch, reason=in_torch.reason + '; ONNX export failed').line()}."
        return (f"Pre-segmentation networks: {plan.line()}; {', '.join(self.export_failed)} in PyTorch "
                f"{in_torch.name} (ONNX export failed).")

    def versions(self) -> dict[str, str]:
        out = {name: self.loaded[name].version for name in NETWORKS if name in self.loaded}
        out.setdefault("landmarks", "classical")
        return out


def load_pipeline_models(weights_dir: str | Path | None = None,
                         device: torch.device | str | None = None,
                         cancel: threading.Event | None = None) -> tuple[PipelineModels, list[str]]:
    """The networks from ``<weights_dir>/<name>.safetensors`` (default: the starter weights),
    each built from the config stored in its file; missing or damaged files become messages.
    ``cancel`` is checked between networks and, later, between stages and before every layer."""
    device = device if isinstance(device, torch.device) else pick_device(device)
    folder = Path(weights_dir) if weights_dir else WEIGHTS_DIR
    plan = resolve_inference(device)   # the one choice of backend and precision (models/engine/precision.py)
    models, messages = PipelineModels(device, cancel=cancel, plan=plan), []
    for name, spec in NETWORKS.items():
        check_cancelled(cancel)
        path = spec.weights_file(folder)
        if spec.optional and path is None:
            continue
        try:
            if path is None:
                raise WeightsError(f"no {name} weights at {folder / f'{name}.safetensors'}")
            metadata = read_metadata(path)
            check_made_for(path, metadata, "task", spec.task)
            config = spec.config_class.from_dict(metadata.get("config", {}))
            model = spec.build(config)
            load_weights(model, path)
        except (WeightsError, TypeError, ValueError, RuntimeError) as error:
            messages.append(f"{name}: {str(error).rstrip('.')}; {spec.fallback} "
                            f"(train them with `{spec.train_command}`).")
            continue
        model = model.eval().to(device)
        stop_layers_when(cancel, model)   # PyTorch layers check the cancel; an ONNX Runtime run is terminated
        planned = as_planned(model, path, plan, cancel)
        if plan.backend == "onnxruntime" and planned is model:
            models.export_failed.append(name)
        models.loaded[name] = LoadedModel(planned, config, metadata.get("version", path.stem))
    return models, messages


# The peaks for a lesion file that stores none: tuned on the 57 'other' healthy eyes for the
# MobileNetV4 lesion network v4 and the detail U-Net (docs/benchmarks.md, suggestions on healthy eyes).
DEFAULT_LESION_PEAK = {"HE": 0.95, "EX": 0.98, "SE": 0.95}


def network_peaks(config: LesionNetConfig) -> dict[str, float]:
    """The peak each channel of this lesion network needs: its stored ones, else the defaults."""
    if config.peaks is None:
        return {channel: DEFAULT_LESION_PEAK[channel] for channel in config.channels if channel in DEFAULT_LESION_PEAK}
    return {channel: float(peak) for channel, peak in zip(config.channels, config.peaks) if peak > 0}


def network_rule_fields(config: LesionNetConfig) -> dict[str, dict[str, Any]]:
    """The rest of each channel's suggestion rule stored with this network (``SuggestionRule``'s
    fields but the peak, which is ``network_peaks``)."""
    return {channel: dict(fields) for channel, fields in (config.suggestion_rules or {}).items()
            if channel in config.channels}


def _supplied(models: PipelineModels, per_network) -> dict:
    """``per_network(config)`` of the lesion network, and of the detail network for the channels it
    supplies (its settings are those of the map it blends into or replaces)."""
    out: dict = {}
    for name in ("lesions", "lesion_detail"):
        loaded = models.get(name)
        if loaded is not None:
            for channel in loaded.config.channels:
                out.pop(channel, None)
            out.update(per_network(loaded.config))
    return out


def lesion_peaks(models: PipelineModels) -> dict[str, float]:
    """The peaks the pipeline applies by default (``network_peaks`` of the networks that supply each type)."""
    return _supplied(models, network_peaks)


def lesion_rule_fields(models: PipelineModels) -> dict[str, dict[str, Any]]:
    """The rest of the rules the pipeline applies by default (``network_rule_fields``, likewise)."""
    return _supplied(models, network_rule_fields)


@dataclass
class PipelineOptions:
    input_scale: float = 1.0                  # pixels of the given image per original pixel (0.5: decoded at 1/2)
    original_shape: tuple[int, int] | None = None   # (h, w) of the original photo; default from the image
    min_lesion_area: float = 5e-4             # suggested when a region holds ≥ this × disc area of a lesion type
    # Per type, against false suggestions on healthy eyes (light reflexes of young eyes read as exudates;
    # docs/benchmarks.md, bench_pipeline --healthy): a larger least area, and a spot counts only if its
    # most probable pixel reaches ``lesion_peak`` (hysteresis: the spot keeps its pixels over the threshold).
    # ``lesion_peak`` None: each lesion network's own peaks (``LesionNetConfig.peaks``, stored in its file).
    lesion_min_area: dict[str, float] = field(default_factory=lambda: {"EX": 1e-3})
    lesion_peak: dict[str, float] | None = None
    # The rest of each type's rule (``suggestions.SuggestionRule`` fields but the peak; a least area
    # here overrides ``lesion_min_area``); None: each lesion network's own (``LesionNetConfig.suggestion_rules``).
    lesion_rules: dict[str, dict[str, Any]] | None = None
    lesion_thresholds: dict[str, float] | None = None   # default: the thresholds stored with the lesion model
    vessel_threshold: float | None = None


@dataclass
class Layer:
    """A probability map and the 2 × 3 affine from original pixels (continuous) to its pixels."""
    prob: np.ndarray
    to_map: np.ndarray

    def render(self, shape: tuple[int, int]) -> np.ndarray:
        matrix = self.to_map.astype(np.float64).copy()
        matrix[:, 2] += matrix[:, :2].sum(axis=1) * 0.5 - 0.5   # continuous -> OpenCV pixel centres
        return cv2.warpAffine(self.prob.astype(np.float32), matrix, (shape[1], shape[0]),
                              flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT)


@dataclass
class PipelineResult:
    shape: tuple[int, int]                     # original (h, w)
    fov: FieldOfView                           # original pixels
    disc: tuple[float, float] | None
    fovea: tuple[float, float] | None
    landmark_method: str
    disc_diameter: float | None = None
    cup_to_disc: float | None = None
    layers: dict[str, Layer] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    lesion_regions: dict[str, list[int]] = field(default_factory=dict)
    lesion_area_by_region: dict[str, dict[int, float]] = field(default_factory=dict)
    model_versions: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    no_fundus: bool = False                    # the picture is not a retina: no landmarks or suggestions
    red_free: bool = False                     # grey or green: read as the module says, no lesion suggestions

    def probability(self, name: str, shape: tuple[int, int] | None = None) -> np.ndarray | None:
        layer = self.layers.get(name)
        return None if layer is None else layer.render(shape or self.shape)

    def mask(self, name: str, shape: tuple[int, int] | None = None) -> np.ndarray | None:
        """uint8 0/255 at ``shape`` (default: the original size); None if that network did not run."""
        prob = self.probability(name, shape)
        return None if prob is None else ((prob >= self.thresholds.get(name, 0.5)) * 255).astype(np.uint8)

    def region_map(self, shape: tuple[int, int] | None = None) -> np.ndarray | None:
        if self.disc is None or self.fovea is None:
            return None
        shape = shape or self.shape
        sy, sx = shape[0] / self.shape[0], shape[1] / self.shape[1]
        fov = FieldOfView(self.fov.cx * sx, self.fov.cy * sy, self.fov.r * (sx * sy) ** 0.5)
        disc, fovea = (self.disc[0] * sx, self.disc[1] * sy), (self.fovea[0] * sx, self.fovea[1] * sy)
        try:
            return region_label_map(disc, fovea, shape, fov_mask(shape, fov))
        except GeometryError:   # landmarks that cannot define regions: said in messages, no map
            return None

    def to_json(self) -> dict:
        point = lambda p: None if p is None else [round(float(p[0]), 1), round(float(p[1]), 1)]
        return {
            "width": self.shape[1], "height": self.shape[0],
            "fov": [round(float(v), 1) for v in self.fov.as_tuple()],
            "disc": point(self.disc), "fovea": point(self.fovea), "landmark_method": self.landmark_method,
            "disc_diameter": None if self.disc_diameter is None else round(float(self.disc_diameter), 1),
            "cup_to_disc": None if self.cup_to_disc is None else round(float(self.cup_to_disc), 3),
            "lesion_regions": self.lesion_regions,
            "lesion_area_by_region": {k: {str(r): round(a, 5) for r, a in v.items()}
                                      for k, v in self.lesion_area_by_region.items()},
            "thresholds": {k: float(v) for k, v in self.thresholds.items()}, "model_versions": self.model_versions,
            "timings_s": {k: round(v, 4) for k, v in self.timings.items()}, "messages": self.messages,
            "no_fundus": self.no_fundus, "red_free": self.red_free,
        }


def scale_matrix(scale: float, x0: float = 0.0, y0: float = 0.0) -> np.ndarray:
    """Affine original -> map for ``map = (original − (x0, y0)) · scale``."""
    return np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]], np.float64)


def _working_image(image_rgb: np.ndarray, fov: FieldOfView, target_diameter: float):
    """The FOV's bounding square cut out and rescaled so the FOV is ``target_diameter`` across."""
    scale = target_diameter / (2 * fov.r)
    crop, mapping = crop_to_fov(image_rgb, fov)
    size = (max(32, round(crop.shape[1] * scale)), max(32, round(crop.shape[0] * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(crop, size, interpolation=interpolation), mapping.x0, mapping.y0, size[0] / crop.shape[1]


def _locate_all(models: PipelineModels, photos: list[_Photo]) -> list:
    """Disc and fovea of each photo: the locator (one batch), with the classical method for what
    it is not confident of (``landmarks.choose_landmarks``)."""
    locator = models.get("landmarks")
    if locator is None:
        return [locate_classical(photo.rgb, photo.fov, disc_prior=photo.disc_prior) for photo in photos]
    learned = locate_learned_batch(locator.model, [p.rgb for p in photos], locator.config, models.device,
                                   [p.disc_prior for p in photos])
    estimates = []
    for photo, estimate in zip(photos, learned):
        chosen = choose_landmarks(estimate, photo.rgb, photo.fov, locator.config.min_confidence, photo.disc_prior)
        if chosen.method != "locator":
            placed = "the fovea" if chosen.method.startswith("locator") else "disc and fovea"
            photo.messages.append(f"The landmark locator was not confident on this photo; the classical method "
                                  f"placed {placed}.")
        estimates.append(chosen)
    return estimates


def choose_disc(estimate, found, expected_diameter: float) -> tuple[float, float]:
    """The confident locator's disc centre (on IDRiD it errs less than the disc/cup network, which
    learnt on Drishti-GS1); after the classical fallback, the disc/cup network's centre when it
    found a disc within 1.5 expected diameters of the guess."""
    if estimate.method.startswith("locator") or not found.found:
        return estimate.disc
    offset = np.hypot(found.disc_centre[0] - estimate.disc[0], found.disc_centre[1] - estimate.disc[1])
    return found.disc_centre if offset <= 1.5 * expected_diameter else estimate.disc


@dataclass
class _Photo:
    """One photo on its way through ``run_pipeline_batch``."""
    rgb: np.ndarray
    s: float                        # given-image pixels per original pixel
    fov: FieldOfView                # given-image pixels
    result: PipelineResult
    messages: list[str] = field(default_factory=list)
    disc_prior: np.ndarray | None = None   # pulls the disc (locator logits, classical score): a red-free photo's vessels

    @property
    def colour_rgb(self) -> np.ndarray:
        """The photo as the colour networks should see it: a red-free one in typical fundus colours."""
        return pseudo_colour(self.rgb) if self.result.red_free else self.rgb


def run_pipeline(image_bgr: np.ndarray, models: PipelineModels, options: PipelineOptions | None = None) -> PipelineResult:
    """Pre-segment one photo (BGR uint8, possibly decoded at reduced size: ``options.input_scale``)."""
    return run_pipeline_batch([image_bgr], models, [options or PipelineOptions()])[0]


def run_pipeline_batch(images_bgr: list[np.ndarray], models: PipelineModels,
                       options: list[PipelineOptions] | None = None) -> list[PipelineResult]:
    """Pre-segment several photos, each network called once per stage for all of them (batches
    fill a GPU; on a CPU one photo at a time is as fast). Each result equals ``run_pipeline``'s
    on that photo alone; its timings are the stages' times shared equally among the photos."""
    if not images_bgr:
        return []
    options = options or [PipelineOptions() for _ in images_bgr]
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        check_cancelled(models.cancel)
        now = time.perf_counter()
        timings[stage], clock = (now - clock) / len(images_bgr), now

    photos = []
    for image_bgr, option in zip(images_bgr, options):
        s = option.input_scale
        shape = option.original_shape or (round(image_bgr.shape[0] / s), round(image_bgr.shape[1] / s))
        red_free = is_red_free(image_bgr)
        if red_free:   # grey or green-tinted: read from its green alone, the same either way
            image_bgr = red_free_version(image_bgr)
        fov = detect_fov(image_bgr)
        result = PipelineResult(shape, FieldOfView(fov.cx / s, fov.cy / s, fov.r / s), None, None, "",
                                model_versions=models.versions())
        photos.append(_Photo(np.ascontiguousarray(image_bgr[..., ::-1]), s, fov, result))
        reason = no_fundus_reason(image_bgr, fov)
        if reason is not None:   # a blank page or a snapshot: no disc, no CDR, no suggestions
            result.no_fundus = True
            photos[-1].messages.append(f"No fundus found: {reason}; nothing is suggested for this picture.")
        elif red_free:
            result.red_free = True
            photos[-1].messages.append(RED_FREE_NOTE)
    lap("field_of_view")
    everything, photos = photos, [photo for photo in photos if not photo.result.no_fundus]
    options = [option for option, photo in zip(options, everything) if not photo.result.no_fundus]
    if not photos:
        return _finished(everything, timings)

    vessels = models.get("vessels")   # before the landmarks: a red-free photo's disc is found by its vessels
    if vessels is not None:
        works = [_working_image(p.rgb, p.fov, vessels.config.fov_diameter_px) for p in photos]
        probs = segment_vessels_batch(vessels.model, [w[0] for w in works], vessels.config, models.device,
                                      tiles_per_batch=4 * len(photos))
        for photo, option, (_, x0, y0, k), prob in zip(photos, options, works, probs):
            photo.result.layers["vessels"] = Layer(prob, scale_matrix(k * photo.s, x0 / photo.s, y0 / photo.s))
            photo.result.thresholds["vessels"] = option.vessel_threshold or vessels.config.threshold
            if photo.result.red_free:
                here = Layer(prob, scale_matrix(k, x0, y0)).render(photo.rgb.shape[:2])   # the given image's pixels
                photo.disc_prior = VESSEL_PRIOR_WEIGHT * vessel_convergence(here, photo.fov)
        lap("vessels")

    estimates = _locate_all(models, photos)
    discs = [estimate.disc for estimate in estimates]
    for photo, estimate in zip(photos, estimates):
        photo.result.landmark_method = estimate.method
    lap("landmarks")

    disc_cup = models.get("disc_cup")
    if disc_cup is not None:
        guesses = [2 * photo.fov.r * DISC_PER_FOV for photo in photos]
        found_all = segment_disc_cup_batch(disc_cup.model, [p.colour_rgb for p in photos], discs, guesses,
                                           disc_cup.config, models.device)
        for i, (photo, found) in enumerate(zip(photos, found_all)):
            result, s = photo.result, photo.s
            discs[i] = choose_disc(estimates[i], found, guesses[i])
            if found.found and found.disc_diameter is not None:
                result.disc_diameter, result.cup_to_disc = found.disc_diameter / s, found.cup_to_disc
            to_crop = found.crop_matrix.astype(np.float64).copy()
            to_crop[:, :2] *= s
            result.layers["disc"] = Layer(found.disc_prob, to_crop)
            result.layers["cup"] = Layer(found.cup_prob, to_crop)
            result.thresholds["disc"] = result.thresholds["cup"] = disc_cup.config.threshold
        lap("disc_cup")
    for photo, disc, estimate in zip(photos, discs, estimates):
        photo.result.disc = (float(disc[0]) / photo.s, float(disc[1]) / photo.s)
        photo.result.fovea = (float(estimate.fovea[0]) / photo.s, float(estimate.fovea[1]) / photo.s)

    coloured = [i for i, photo in enumerate(photos) if not photo.result.red_free]   # RED_FREE_NOTE
    photos, options = [photos[i] for i in coloured], [options[i] for i in coloured]
    if models.get("lesions") is not None and photos:
        _segment_lesions(photos, models, options)
        lap("lesions")
        peaks, fields = lesion_peaks(models), lesion_rule_fields(models)
        for photo, option in zip(photos, options):
            _suggest_regions(photo.result, option, photo.messages, peaks, fields)
        lap("regions")
    return _finished(everything, timings)


def _finished(photos: list[_Photo], timings: dict[str, float]) -> list[PipelineResult]:
    for photo in photos:
        photo.result.timings, photo.result.messages = dict(timings), photo.messages
    return [photo.result for photo in photos]


def _segment_lesions(photos: list[_Photo], models: PipelineModels, options: list[PipelineOptions]) -> None:
    """Lesion layers of each photo (on the lesion network's working grid), the detail network's
    channels blended into the lesion network's where it is present."""
    lesions, detail = models.get("lesions"), models.get("lesion_detail")
    assert lesions is not None   # called only when the lesion network is loaded
    inputs: dict = {}   # (scale, preprocessing) -> per photo (network input, working image): shared by both networks

    def lesion_inputs(config: LesionNetConfig) -> list[tuple[np.ndarray, tuple]]:
        key = (config.fov_diameter_px, config.preprocess)
        if key not in inputs:
            working = [_working_image(p.rgb, p.fov, config.fov_diameter_px) for p in photos]
            inputs[key] = [(prepare_input(w[0], config), w) for w in working]
        return inputs[key]

    prepared = lesion_inputs(lesions.config)
    probs_all = segment_prepared_batch(lesions.model, [x for x, _ in prepared], models.device,
                                       lesions.config.mirror_average)
    detail_all = (segment_prepared_batch(detail.model, [x for x, _ in lesion_inputs(detail.config)], models.device,
                                         detail.config.mirror_average)
                  if detail is not None else [None] * len(photos))
    for photo, option, (_, (_work, x0, y0, k)), probs, detail_probs in zip(photos, options, prepared, probs_all,
                                                                         detail_all):
        thresholds = dict(zip(LESION_CHANNELS, lesions.config.thresholds))
        if detail is not None and detail_probs is not None:   # finer probabilities from the full-resolution network
            probs = blend_detail(probs, detail_probs, detail.config)
            thresholds.update(zip(detail.config.channels, detail.config.thresholds))
        to_work = scale_matrix(k * photo.s, x0 / photo.s, y0 / photo.s)
        for channel, prob in zip(LESION_CHANNELS, probs):
            name = LESION_NAMES[channel]
            photo.result.layers[name] = Layer(prob, to_work)
            photo.result.thresholds[name] = (option.lesion_thresholds or {}).get(channel, thresholds[channel])


def suggestion_rules(options: PipelineOptions, peaks: dict[str, float] | None = None,
                     fields: dict[str, dict[str, Any]] | None = None) -> dict[str, SuggestionRule]:
    """Per lesion type, the rule its spots must pass: the peak of ``options.lesion_peak`` if given,
    else ``peaks`` (the networks'), else ``DEFAULT_LESION_PEAK``; the least area of ``options``; the
    rest from ``options.lesion_rules`` if given, else ``fields`` (the networks')."""
    if options.lesion_peak is not None:
        peaks = options.lesion_peak
    elif peaks is None:
        peaks = DEFAULT_LESION_PEAK
    if options.lesion_rules is not None:
        fields = options.lesion_rules
    return {channel: replace(SuggestionRule(peaks.get(channel, 0.0),
                                            options.lesion_min_area.get(channel, options.min_lesion_area)),
                             **(fields or {}).get(channel, {}))
            for channel in LESION_CHANNELS}


def _suggest_regions(result: PipelineResult, options: PipelineOptions, messages: list[str],
                     peaks: dict[str, float] | None = None, fields: dict[str, dict[str, Any]] | None = None) -> None:
    """The regions suggested per lesion type (``suggestions.py``), under ``suggestion_rules``."""
    try:
        photo = measure_photo(result)
    except GeometryError as error:
        messages.append(f"No regions: {error}")
        return
    suggest(result, photo, suggestion_rules(options, peaks, fields))
