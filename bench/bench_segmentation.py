"""Accuracy of the pre-segmentation networks on held-out public data.

    python bench/bench_segmentation.py --data DIR [--weights-dir weights] [--only vessels,disc_cup,landmarks,lesions]
        [--extra lesions=runs/...safetensors] [--tune-lesion-thresholds]

- vessels: Dice inside the FOV on DRIVE test 01–20 (trained on DRIVE training only), the second
  observer (0.788) beside it;
- disc/cup: Dice on the Drishti-GS1 validation photos (every 5th by name), through the pipeline's
  two-pass crop started from a guess 0.3 disc diameters off and 20 % too large; and, the same way,
  the disc Dice on all 54 IDRiD-segmentation photos (``idrid_*``: another clinic's camera, never
  trained on; IDRiD draws no cup, so only how many cups came out empty is counted), also with the
  first crop sized as the pipeline sizes it (``idrid_fov_*``: 1/8 of the FOV diameter);
- landmarks: mean disc and fovea errors (original 4288 × 2848 pixels) on the IDRiD-landmarks
  validation photos, for the learned locator, the classical fallback and the pipeline's choice;
  with ``--red-free`` also on red-free versions of the same photos: ``landmarks:red-free``, the
  green channel on all three channels, and ``landmarks:red-free-contrast``, that grey stretched so
  the FOV's 1st to 99.5th percentiles span 0-255, as red-free cameras and viewers often show it;
- lesions: pixel AUPR and Dice per type on IDRiD-segmentation 45–54 at the working scale (1/3).
``--extra NAME=PATH`` measures further weight files of a task (e.g. the ablations).
Writes bench/results/bench_segmentation.json.

``--compare lesions|vessels`` tests a paper's architecture against its plain counterpart as the
paper ran it: Attention-DeepLab against plain DeepLabV3+ (same encoder, input and recipe as
weights/lesions.md), Attention U-Net++ (ResNet-34) against a U-Net with the same ResNet-34
encoder (the recipe of weights/vessels.md). Both arms start from one file (the attention arm's
network built at ``--seed``; the plain arm loads every tensor whose name and shape match, i.e. the
encoder and, for DeepLab, ASPP and decoder), train the same ``--epochs`` under the same time cap
(``--minutes``, wall clock; the CPU minutes each used are reported), and are then measured here.
``--arm NAME`` trains one arm, so the two can run side by side (one core each, the same load):

    OMP_NUM_THREADS=1 python bench/bench_segmentation.py --compare lesions --arm deeplab --epochs 8 --minutes 25 &
    OMP_NUM_THREADS=1 python bench/bench_segmentation.py --compare lesions --arm attention_deeplab --epochs 8 --minutes 25

Each arm writes its figures into bench/results/bench_segmentation_compare.json.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from annotate.fov import detect_fov, fov_mask  # noqa: E402
from models.engine.device import pick_device  # noqa: E402
from models.engine.fast_cpu import as_planned  # noqa: E402
from models.engine.precision import resolve_inference  # noqa: E402
from models.engine.weights import load_weights, read_metadata  # noqa: E402
from models.metrics.segmentation import PrecisionRecallCurve, dice  # noqa: E402
from models.segmentation.cache import public_sets_cache_dir, read_rgb  # noqa: E402
from models.segmentation.data import drishti_split, landmark_split, lesion_arrays, lesion_split  # noqa: E402
from models.segmentation.disc_cup import DISC_PER_FOV, segment_disc_cup  # noqa: E402
from models.segmentation.landmarks import LandmarkEstimate, locate_classical, locate_learned  # noqa: E402
from models.segmentation.lesions import LESION_CHANNELS, blend_detail, segment_lesions  # noqa: E402
from models.segmentation.pipeline import LoadedModel, PipelineModels, run_pipeline  # noqa: E402
from models.segmentation.red_free import (  # noqa: E402
    VESSEL_PRIOR_WEIGHT,
    pseudo_colour,
    red_free_version,
    vessel_convergence,
)
from models.segmentation.registry import NETWORKS, ensure_caches  # noqa: E402
from models.segmentation.vessels import segment_vessels  # noqa: E402
from storage.locations import public_data_dir  # noqa: E402
from storage.options import whole_number  # noqa: E402

PUBLISHED = {"vessels_dice": 0.82, "second_observer": 0.788, "disc_dice": 0.96, "cup_dice": 0.87,
             "disc_px": 21, "fovea_px": 64, "aupr_EX": 0.89, "aupr_HE": 0.68, "aupr_SE": 0.70, "aupr_MA": 0.50}


def load(task: str, path: Path, device):
    """The PyTorch network (to measure, or to store settings into), its config and metadata."""
    spec = NETWORKS[task]
    metadata = read_metadata(path)
    config = spec.config_class.from_dict(metadata["config"])
    model = spec.build(config)
    load_weights(model, path)
    return model.eval().to(device), config, metadata


def load_as_pipeline(task: str, path: Path, device):
    """``load``, the network run by the backend and precision the pipeline would use (``resolve_inference``)."""
    model, config, metadata = load(task, path, device)
    return as_planned(model, path, resolve_inference(device)), config, metadata


def bench_vessels(path: Path, device) -> dict:
    model, config, _ = load_as_pipeline("vessels", path, device)
    data = np.load(public_sets_cache_dir() / "drive.npz")
    dices, ious, seconds, pooled = [], [], [], [0, 0]
    for image, truth, fov in zip(data["test_images"], data["test_vessels"], data["test_fov"]):
        start = time.perf_counter()
        prob = segment_vessels(model, image, config, device)
        seconds.append(time.perf_counter() - start)
        pred, fov = prob >= config.threshold, fov.astype(bool)
        dices.append(dice(pred, truth, fov))
        ious.append(dices[-1] / (2 - dices[-1]))   # IoU = D / (2 − D) for one image
        pooled[0] += 2 * (pred & truth.astype(bool) & fov).sum()
        pooled[1] += (pred & fov).sum() + (truth.astype(bool) & fov).sum()
    second = [dice(b, a, f.astype(bool)) for a, b, f in zip(data["test_vessels"], data["test_vessels_2nd"], data["test_fov"])]
    return {"dice_mean": float(np.mean(dices)), "dice_pooled": float(pooled[0] / pooled[1]),
            "iou_mean": float(np.mean(ious)), "second_observer_dice": float(np.mean(second)), "seconds_per_image": float(np.median(seconds)),
            "images": len(dices)}


def bench_disc_cup(path: Path, device, data: Path) -> dict:
    model, config, _ = load_as_pipeline("disc_cup", path, device)
    data = data / "Drishti-GS1"
    _, names = drishti_split()
    disc_d, cup_d, cdr_err, found = [], [], [], 0
    experts = {row["name"]: np.mean([float(row[f"cdr_expert{i}"]) for i in range(1, 5)])
               for row in csv.DictReader(open(data / "cdr.csv"))}
    for name in names:
        image = read_rgb(data / "images" / f"{name}.jpg")
        disc_truth = cv2.imread(str(data / "disc" / f"{name}.png"), cv2.IMREAD_GRAYSCALE) > 127
        cup_truth = cv2.imread(str(data / "cup" / f"{name}.png"), cv2.IMREAD_GRAYSCALE) > 127
        ys, xs = np.nonzero(disc_truth)
        diameter = max(np.ptp(xs), np.ptp(ys)) + 1
        guess = (xs.mean() + 0.3 * diameter, ys.mean())   # 0.3 disc diameters off
        result = segment_disc_cup(model, image, guess, 1.2 * diameter, config, device)
        found += result.found
        disc = result.paste(result.disc_prob, disc_truth.shape) >= config.threshold
        cup = result.paste(result.cup_prob, disc_truth.shape) >= config.threshold
        disc_d.append(dice(disc, disc_truth))
        cup_d.append(dice(cup, cup_truth))
        if result.cup_to_disc is not None:
            cdr_err.append(abs(result.cup_to_disc - experts[name]))
    return {"disc_dice": float(np.mean(disc_d)), "cup_dice": float(np.mean(cup_d)),
            "vertical_cdr_abs_error": float(np.mean(cdr_err)) if cdr_err else None,
            "found": found, "images": len(names), **bench_disc_cup_idrid(model, config, device)}


RED_FREE_KINDS = ("red-free", "red-free-contrast")   # bench_landmarks' red_free
# A disc placed over half an IDRiD disc diameter (about 430 original pixels) off the truth is off the disc.
DISC_MISS_PX = 215
IDRID_POOR_DISC_DICE = 0.8   # below this a drawn disc outline is visibly wrong (e.g. IDRiD_25's ragged disc)


def bench_disc_cup_idrid(model, config, device) -> dict:
    """Cross-domain: the disc Dice on the 54 IDRiD-segmentation photos (1/3 scale, the lesion cache;
    disc truth = the optic_disc mask over half the pixel), started 0.3 disc diameters off, sized as
    on Drishti-GS1 (20 % too large, ``idrid_*``) and as the pipeline sizes it, 1/8 of the FOV
    diameter (``idrid_fov_*``: where the shipped starter of 2026-11-26 left IDRiD_25's cup empty);
    ``idrid_red_free_*`` the same on each photo's red-free version as the pipeline feeds it (its
    green in ``pseudo_colour``). ``*_disc_radius_ratio_median``: the found disc's equivalent radius
    (from its area) over the truth's, the median over the photos (below 1: drawn too small)."""
    images, masks, names = lesion_arrays()
    out = {}
    for prefix in ("idrid", "idrid_fov", "idrid_red_free"):
        dices, ratios, empty_cups, found = [], [], 0, 0
        for image, mask in zip(images, masks):
            image, disc_truth = np.ascontiguousarray(image), np.asarray(mask[4]) >= 128
            ys, xs = np.nonzero(disc_truth)
            diameter = max(np.ptp(xs), np.ptp(ys)) + 1
            size = 1.2 * diameter if prefix == "idrid" else 2 * detect_fov(image[..., ::-1]).r * DISC_PER_FOV
            seen = pseudo_colour(red_free_version(image)) if prefix == "idrid_red_free" else image
            result = segment_disc_cup(model, seen, (xs.mean() + 0.3 * diameter, ys.mean()), size, config, device)
            found += result.found
            empty_cups += not result.cup_to_disc   # None (no disc) or 0.0 (no cup inside the disc)
            disc = result.paste(result.disc_prob, disc_truth.shape) >= config.threshold
            dices.append(dice(disc, disc_truth))
            ratios.append(float(np.sqrt(disc.sum() / disc_truth.sum())))
        worst = int(np.argmin(dices))
        out |= {f"{prefix}_disc_dice": float(np.mean(dices)), f"{prefix}_disc_dice_median": float(np.median(dices)),
                f"{prefix}_disc_radius_ratio_median": float(np.median(ratios)),
                f"{prefix}_poor_discs": int(sum(d < IDRID_POOR_DISC_DICE for d in dices)),
                f"{prefix}_worst": f"{names[worst]} {dices[worst]:.3f}", f"{prefix}_empty_cups": empty_cups,
                f"{prefix}_found": found}
    return {**out, "idrid_images": len(names)}


def bench_landmarks(path: Path | None, disc_cup_path: Path | None, vessels_path: Path | None, device, public: Path,
                    red_free: str = "") -> dict:
    """The locator and the classical method alone (on red-free photos also the classical method with
    the vessel cue, ``classical_vessels``), the disc/cup network's disc (started at the pipeline's),
    and the pipeline itself (``run_pipeline`` with the locator, disc/cup and vessel
    networks given). ``red_free``: "red-free", on each photo's green channel replicated to three
    channels; "red-free-contrast", that grey contrast-stretched (``stretched``)."""
    data = np.load(public_sets_cache_dir() / "idrid_landmarks.npz")
    _, val = landmark_split()
    folder = public / "IDRiD-landmarks" / "images"
    networks = {name: load_as_pipeline(name, weights, device) for name, weights in
                (("landmarks", path), ("disc_cup", disc_cup_path), ("vessels", vessels_path)) if weights}
    pipeline = PipelineModels(device, {name: LoadedModel(model, config, str(metadata.get("version")))
                                       for name, (model, config, metadata) in networks.items()})
    errors = {k: [] for k in ("locator", "classical", "pipeline")}   # + "disc_cup": its own disc centres
    fallbacks = 0
    for i in val:
        image = read_rgb(folder / str(data["names"][i]))
        fov = detect_fov(image[..., ::-1])
        if red_free:
            image = red_free_version(image)
        if red_free == "red-free-contrast":
            image = stretched(image, fov)
        truth = (data["points"][i] - data["photo_box"][i][:2]) / (data["scale"][i] * 3)   # 1/3-scale photo pixels
        errors["classical"].append(_errors(locate_classical(image, fov), truth))
        if "landmarks" in networks:
            model, config, _ = networks["landmarks"]
            errors["locator"].append(_errors(locate_learned(model, image, config, device), truth))
        result = run_pipeline(np.ascontiguousarray(image[..., ::-1]), pipeline)
        fallbacks += result.landmark_method != "locator"
        errors["pipeline"].append(_errors(result, truth))
        if result.red_free and "vessels" in result.layers:   # the fallback as the pipeline runs it on grey
            prior = VESSEL_PRIOR_WEIGHT * vessel_convergence(result.probability("vessels"), result.fov)
            errors.setdefault("classical_vessels", []).append(_errors(locate_classical(image, result.fov,
                                                                                       disc_prior=prior), truth))
        if "disc_cup" in networks:
            model, config, _ = networks["disc_cup"]
            colours = pseudo_colour(image) if result.red_free else image   # as the pipeline feeds it
            found = segment_disc_cup(model, colours, result.disc, 2 * fov.r * DISC_PER_FOV, config, device)
            if found.found:
                errors.setdefault("disc_cup", []).append(_errors(LandmarkEstimate(found.disc_centre, result.fovea,
                                                                                  1, 1, ""), truth))
    out = {"images": len(val), "locator_fallbacks": fallbacks}
    for key, rows in errors.items():
        if rows:
            rows = np.array(rows) * 3   # 1/3-scale photo pixels -> original 4288 × 2848 pixels
            out[f"{key}_disc_px"] = float(rows[:, 0].mean())
            if key != "disc_cup":   # the disc/cup network places the disc only
                out[f"{key}_fovea_px"] = float(rows[:, 1].mean())
            out[f"{key}_disc_misses"] = int((rows[:, 0] > DISC_MISS_PX).sum())
    return out


def red_free_kind(label: str) -> str:
    """The red-free version a landmark run's label asks for ("" for the colour photos)."""
    kind = label.rpartition(":")[2]
    return kind if kind in RED_FREE_KINDS else ""


def stretched(image: np.ndarray, fov) -> np.ndarray:
    """``image`` with its FOV's 1st to 99.5th percentiles stretched over 0-255."""
    low, high = np.percentile(image[fov_mask(image.shape[:2], fov)], [1, 99.5])
    return np.clip((image.astype(np.float32) - low) * 255 / max(high - low, 1), 0, 255).astype(np.uint8)


def _errors(estimate, truth) -> tuple[float, float]:
    return (float(np.hypot(*np.subtract(estimate.disc, truth[0]))),
            float(np.hypot(*np.subtract(estimate.fovea, truth[1]))))


def bench_lesions(path: Path, device, tune: bool = False, partner: Path | None = None) -> dict:
    """Pixel AUPR, Dice and IoU per type on IDRiD-segmentation 45–54. A detail network whose config
    blends it into the lesion network (``blend`` < 1) is measured on the blended map the pipeline
    draws, with ``partner`` as the lesion network (its thresholds are that map's), and alone."""
    network, config, metadata = load("lesions", path, device)
    model = as_planned(network, path, resolve_inference(device))
    blended = partner if config.blend < 1 and partner is not None and partner.is_file() else None
    lesion_net = load_as_pipeline("lesions", blended, device) if blended else None
    images, masks, names = lesion_arrays()
    _, val = lesion_split(names)
    channels = list(config.channels)   # all four, or a detail network's subset (the detail network: MA, EX)
    curves = [PrecisionRecallCurve() for _ in channels]
    alone = [PrecisionRecallCurve() for _ in channels]
    seconds = []
    for i in val:
        start = time.perf_counter()
        prob = segment_lesions(model, np.asarray(images[i]), device, config)
        seconds.append(time.perf_counter() - start)
        truth = [np.asarray(masks[i, LESION_CHANNELS.index(channel)]) >= 128 for channel in channels]
        if lesion_net is not None:
            for curve, own, target in zip(alone, prob, truth):
                curve.add(own, target)
            whole = blend_detail(segment_lesions(lesion_net[0], np.asarray(images[i]), device, lesion_net[1]),
                                 prob, config)
            prob = whole[[LESION_CHANNELS.index(channel) for channel in channels]]
        for curve, own, target in zip(curves, prob, truth):
            curve.add(own, target)
    out = {"images": len(val), "seconds_per_image": float(np.median(seconds)),
           "working_size": list(images.shape[1:3])}
    if lesion_net is not None:
        out["blended_into"] = f"{lesion_net[2].get('version', blended.stem)} (blend {config.blend})"
        out.update({f"aupr_{channel}_alone": curve.average_precision() for channel, curve in zip(channels, alone)})
    tuned = []
    for channel, threshold, curve in zip(channels, config.thresholds, curves):
        out[f"aupr_{channel}"] = curve.average_precision()
        out[f"dice_{channel}"] = curve.dice_at(threshold)
        out[f"iou_{channel}"] = curve.iou_at(threshold)
        best, best_threshold = curve.best_dice()
        out[f"best_dice_{channel}"], out[f"best_threshold_{channel}"] = best, best_threshold
        # A type the network has not learnt (AUPR < 0.05) keeps 0.5, so it suggests nothing rather than noise.
        tuned.append(round(best_threshold, 3) if out[f"aupr_{channel}"] >= 0.05 else 0.5)
    out["aupr_mean"] = float(np.nanmean([out[f"aupr_{c}"] for c in channels]))
    if tune:
        from models.engine.weights import save_weights
        metadata["config"]["thresholds"] = tuned
        metadata["thresholds_note"] = ("per-type thresholds of best pooled Dice on IDRiD-segmentation 45-54"
                                       + (" (of the map blended into the lesion network)" if blended else "")
                                       + "; 0.5 for a type with AUPR < 0.05")
        save_weights(network.cpu(), path, metadata, int8="storage" in metadata)
        out["thresholds_written"] = tuned
    return out


def store_detail_blend(path: Path, given: str) -> float:
    """Write the detail network's share of the pipeline's map for its channels into its stored config."""
    from models.engine.weights import save_weights

    try:
        blend = float(given)
    except ValueError:
        blend = -1.0
    if not 0 < blend <= 1:
        raise SystemExit(f"--set-detail-blend wants a share above 0 and at most 1 (1: replace), not {given!r}.")
    model, _, metadata = load("lesions", path, torch.device("cpu"))
    metadata["config"]["blend"] = blend
    # The maps change with the share, so the version does too (predictions and kept maps name it).
    base = str(metadata.get("version", path.stem)).split("-blend")[0]
    metadata["version"] = base if blend == 1 else f"{base}-blend{blend:g}"
    save_weights(model, path, metadata, int8="storage" in metadata)
    return blend


MIRROR_SUFFIX = "-mirror"


MIRROR_CHOICES = {"on": ("lesions", "lesion_detail"), "lesions-only": ("lesions",), "off": ()}


def store_mirror_average(folder: Path, given: str) -> dict[str, str]:
    """Turn the mirror average (``LesionNetConfig.mirror_average``) on in the lesion and detail
    networks' files of ``folder`` (``on``), in the lesion network's alone (``lesions-only``) or in
    neither (``off``); only the headers change. The maps change, so the versions do too
    (predictions and kept maps name them)."""
    from models.engine.weights import rewrite_metadata

    if given not in MIRROR_CHOICES:
        raise SystemExit(f"--set-mirror-average wants {', '.join(MIRROR_CHOICES)}, not {given!r}.")
    versions = {}
    for name in ("lesions", "lesion_detail"):
        path = folder / f"{name}.safetensors"
        if not path.is_file():
            continue
        metadata = read_metadata(path)
        on = name in MIRROR_CHOICES[given]
        metadata["config"]["mirror_average"] = on
        base = str(metadata.get("version", path.stem)).removesuffix(MIRROR_SUFFIX)
        metadata["version"] = base + (MIRROR_SUFFIX if on else "")
        rewrite_metadata(path, metadata)
        versions[name] = metadata["version"]
    return versions


def store_lesion_peaks(path: Path, given: str) -> dict[str, float]:
    """Write per-channel suggestion peaks into the lesion network's stored config (the pipeline reads
    them as ``LesionNetConfig.peaks``); channels not given keep theirs (or the pipeline's defaults)."""
    from models.engine.weights import save_weights
    from models.segmentation.pipeline import network_peaks

    model, config, metadata = load("lesions", path, torch.device("cpu"))
    try:
        values = {channel.strip(): float(value) for channel, value in (item.split("=") for item in given.split(","))}
    except ValueError:
        raise SystemExit(f"--set-lesion-peaks wants CH=P pairs such as HE=0.97,SE=0.9, not {given!r}.") from None
    if set(values) - set(config.channels) or not all(0 <= v < 1 for v in values.values()):
        raise SystemExit(f"--set-lesion-peaks: channels among {', '.join(config.channels)}, peaks from 0 to below 1.")
    peaks = {**network_peaks(config), **values}
    metadata["config"]["peaks"] = [round(peaks.get(channel, 0.0), 3) for channel in config.channels]
    metadata["peaks_note"] = ("per-type peak a spot must reach to be suggested, tuned on the 57 'other' grade-0 "
                              "IDRiD-landmarks photos (bench_pipeline.py --healthy --healthy-set other)")
    save_weights(model, path, metadata, int8="storage" in metadata)
    return dict(zip(config.channels, metadata["config"]["peaks"]))


@dataclass(frozen=True)
class Pair:
    """A paper's architecture (first arm) and its plain counterpart, with the options both share."""
    task: str
    arms: dict[str, list[str]]   # arm name -> its own train-seg options
    shared: list[str]            # train-seg options of both arms (encoder, input, recipe)
    figure: str                  # the figure that decides, in the bench's results
    paper: dict                  # the paper's figures (its data, its test split)


PAIRS = {
    # Jithesh et al. Table I (DDR, 512², ImageNet ResNet, A100): AP and IoU per type
    "lesions": Pair("lesions", {"attention_deeplab": ["--architecture", "attention_deeplab"],
                                "deeplab": ["--architecture", "deeplab"]},
                    ["--preprocess", "local_contrast", "--decoder-channels", "128", "--lr", "1e-3"], "aupr_mean",
                    {"attention_deeplab": {"aupr_MA": 0.0763, "aupr_EX": 0.3960, "aupr_SE": 0.4271,
                                           "aupr_HE": 0.4308, "aupr_mean": 0.3326, "iou_mean": 0.1928},
                     "deeplab": {"aupr_MA": 0.0205, "aupr_EX": 0.5634, "aupr_SE": 0.4359, "aupr_HE": 0.1842,
                                 "aupr_mean": 0.3010, "iou_mean": 0.1791}}),
    # Andrikevych et al. Table 1 (HRF, 704 × 1056, 300 epochs): Dice / IoU; their U-Net is another study's
    "vessels": Pair("vessels", {"attention_unetpp": ["--architecture", "attention_unetpp"],
                                "unet": ["--architecture", "unet"]},
                    ["--encoder", "resnet34"], "dice_mean",
                    {"attention_unetpp": {"dice_mean": 0.8694, "iou_mean": 0.7690},
                     "unet": {"dice_mean": 0.5644, "iou_mean": 0.3931}}),
}
COMPARE_JSON = REPO / "bench" / "results" / "bench_segmentation_compare.json"


def arm_options(pair: Pair, arm: str, encoder_weights: str | None) -> list[str]:
    """The train-seg options of one arm: its architecture, the shared recipe and encoder weights."""
    options = ["--task", pair.task, *pair.arms[arm], *pair.shared]
    if encoder_weights and encoder_weights != "none":
        options += ["--encoder-weights", encoder_weights]
    return options


def shared_start(pair: Pair, encoder_weights: str | None, seed: int, path: Path) -> dict:
    """Write (once) the start both arms load: the first arm's network as train-seg builds it at
    ``seed`` (with its encoder weights), in fp32. Deterministic, so two arms racing to write it
    write the same file."""
    from main import build_parser
    from models.commands.segmentation import build_task
    from models.engine.weights import save_weights

    first = next(iter(pair.arms))
    if not path.is_file():
        args = build_parser().parse_args(["train-seg", *arm_options(pair, first, encoder_weights)])
        task, _ = build_task(args)
        torch.manual_seed(seed)
        with torch.enable_grad():
            model = task.build_model()
        save_weights(model, path, {"architecture": first, "note": f"shared start of the {pair.task} pair, seed {seed}"},
                     dtype=torch.float32)
    return {"file": str(path), "built_as": first, "seed": seed}


def train_arm(pair: Pair, arm: str, run_root: Path, start: Path, epochs: int, minutes: float,
              encoder_weights: str | None, data: Path, workers: int = 0) -> dict:
    """Train one arm from the shared start with train-seg, export its best epoch and measure it."""
    from main import main as octant

    run_dir, weights = run_root / arm, run_root / f"{arm}.safetensors"
    argv = ["train-seg", *arm_options(pair, arm, encoder_weights), "--epochs", str(epochs),
            "--time-limit", str(minutes), "--start-from", str(start), "--run-dir", str(run_dir),
            "--export", str(weights), "--data", str(data), *(["--workers", str(workers)] if workers else [])]
    load_before, cpu_before, wall_before = os.getloadavg()[0], _cpu_seconds(), time.perf_counter()
    if octant(argv) != 0:
        raise SystemExit(f"training the {arm} arm failed")
    cpu, wall = (_cpu_seconds() - cpu_before) / 60, (time.perf_counter() - wall_before) / 60
    history = json.loads((run_dir / "history.json").read_text())
    init = json.loads((run_dir / "init.json").read_text()) if (run_dir / "init.json").is_file() else {}
    monitor = "val_aupr_mean" if pair.task == "lesions" else "val_dice"
    device = pick_device(None)
    with torch.no_grad():
        figures = bench_lesions(weights, device) if pair.task == "lesions" else bench_vessels(weights, device)
    by_epoch = [round(row.get(monitor, float("nan")), 4) for row in history]
    return {**figures, "epochs_trained": len(history), "best_epoch": int(np.nanargmax(by_epoch)) + 1,
            f"{monitor}_by_epoch": by_epoch,
            "wall_minutes": round(wall, 1), "cpu_minutes": round(cpu, 1),
            "load_1min_start_end": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            "loaded_from_start": {k: init.get(k) for k in ("loaded_tensors", "loaded_share")},
            "kept_initial": len(init.get("kept_initial", [])), "threads": torch.get_num_threads(),
            "file_mb": round(weights.stat().st_size / 2**20, 1), "command": "python main.py " + " ".join(argv)}


def machine() -> str:
    """Where the arms trained: the GPU by name, else the CPU's cores and threads."""
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)}, fp16 autocast, torch {torch.__version__}"
    return (f"{os.cpu_count()}-core CPU shared with other jobs, OMP_NUM_THREADS="
            f"{os.environ.get('OMP_NUM_THREADS', 'unset')}, precision auto")


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_compare(args, data: Path) -> None:
    pair = PAIRS[args.compare]
    arms = [args.arm] if args.arm else list(pair.arms)
    unknown = [arm for arm in arms if arm not in pair.arms]
    if unknown:
        raise SystemExit(f"--arm {unknown[0]} is not an arm of {args.compare}; choose {' or '.join(pair.arms)}.")
    ensure_caches(pair.task, str(data))
    tag = f"{args.compare}-{Path(args.encoder_weights).stem if args.encoder_weights else 'none'}"
    from storage.locations import default_runs_dir

    run_root = Path(args.run_root) if args.run_root else default_runs_dir() / f"bench_segmentation-{tag}"
    run_root.mkdir(parents=True, exist_ok=True)
    start = shared_start(pair, args.encoder_weights, args.seed, run_root / "start.safetensors")
    for arm in arms:
        figures = train_arm(pair, arm, run_root, Path(start["file"]), args.epochs, args.minutes,
                            args.encoder_weights, data, args.workers)
        # Re-read just before writing: the other arm, run side by side, may have written meanwhile.
        results = json.loads(COMPARE_JSON.read_text()) if COMPARE_JSON.is_file() else {}
        entry = results.setdefault(tag, {})
        entry.update({"start": start, "epochs": args.epochs, "minutes_cap": args.minutes, "paper": pair.paper,
                      "machine": machine(), arm: figures})
        COMPARE_JSON.parent.mkdir(parents=True, exist_ok=True)
        COMPARE_JSON.write_text(json.dumps(results, indent=2))
        print(f"\n## {tag}: {arm}")
        for key, value in figures.items():
            if not isinstance(value, (list, dict)):
                print(f"| {key} | {value:.4f} |" if isinstance(value, float) else f"| {key} | {value} |")
    print(f"\nwritten {COMPARE_JSON}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights-dir", default=str(REPO / "weights"))
    parser.add_argument("--only", default="vessels,disc_cup,landmarks,lesions,lesion_detail",
                        help=f"comma-separated networks among {', '.join(NETWORKS)}")
    parser.add_argument("--extra", action="append", default=[], help="TASK=PATH of another weights file to measure")
    parser.add_argument("--tune-lesion-thresholds", action="store_true")
    parser.add_argument("--set-lesion-peaks", metavar="CH=P,...",
                        help="store these suggestion peaks (e.g. HE=0.97,SE=0.9; 0: the threshold alone; "
                             "tuned with bench_pipeline.py --healthy) in <weights-dir>/lesions.safetensors, then stop")
    parser.add_argument("--set-detail-blend", metavar="W",
                        help="store the detail network's share W of the pipeline's map for its channels (1: it "
                             "replaces the lesion network's) in <weights-dir>/lesion_detail.safetensors, then stop; "
                             "re-tune its thresholds after (--only lesion_detail --tune-lesion-thresholds)")
    parser.add_argument("--set-mirror-average", choices=("on", "lesions-only", "off"),
                        help="average each lesion map with the mirrored photo's (test-time augmentation) in "
                             "<weights-dir>/lesions.safetensors and lesion_detail.safetensors (lesions-only: the "
                             "first alone), or in neither, then stop; re-tune the suggestion rules after")
    parser.add_argument("--device", default=None)
    parser.add_argument("--red-free", action="store_true",
                        help="landmarks: also on red-free (grey) versions of the validation photos")
    parser.add_argument("--update-cards", action="store_true",
                        help="write each starter's held-out figures into its model card (weights/<name>.md)")
    parser.add_argument("--data", help="folder of the public data sets (default $OCTANT_PUBLIC_DATA)")
    compare = parser.add_argument_group("paper against plain counterpart (--compare)")
    compare.add_argument("--compare", choices=tuple(PAIRS),
                         help="train both arms of a pair from one start with one recipe, then measure them")
    compare.add_argument("--arm", help="only this arm (attention_deeplab, deeplab; attention_unetpp, unet)")
    compare.add_argument("--epochs", type=int, default=8, help="epochs per arm, the same for both (default 8)")
    compare.add_argument("--minutes", type=float, default=25.0, help="time cap per arm, minutes (default 25)")
    compare.add_argument("--workers", type=whole_number, default=0, help="data loader processes per arm (a GPU wants 2 or more)")
    compare.add_argument("--encoder-weights", default=None,
                         help="lesions: the shared encoder's start, imagenet-lite0|lite1|lite2|FILE|none "
                              "(imagenet-liteN picks tu-tf_efficientnet_liteN; default the starter's encoder from scratch)")
    compare.add_argument("--seed", type=int, default=0, help="seed of the shared start")
    compare.add_argument("--run-root", help="run folders (default: bench_segmentation-<pair>-<weights> in the "
                                            "user's runs folder)")
    args = parser.parse_args()
    if args.set_detail_blend:
        path = Path(args.weights_dir) / "lesion_detail.safetensors"
        print(f"{path}: blend {store_detail_blend(path, args.set_detail_blend)}")
        return
    if args.set_mirror_average:
        print(json.dumps(store_mirror_average(Path(args.weights_dir), args.set_mirror_average), indent=1))
        return
    if args.set_lesion_peaks:
        path = Path(args.weights_dir) / "lesions.safetensors"
        print(f"{path}: peaks {store_lesion_peaks(path, args.set_lesion_peaks)}")
        return
    data = public_data_dir(args.data)
    if args.compare:
        torch.set_grad_enabled(True)
        run_compare(args, data)
        return
    tasks = set(args.only.split(",")) | {extra.split("=", 1)[0] for extra in args.extra}
    for task in tasks | ({"lesions"} if "disc_cup" in tasks else set()):   # the caches are built on first use
        ensure_caches(task, str(data))   # (disc_cup's IDRiD discs are in the lesion cache)
    device = pick_device(args.device)
    torch.set_grad_enabled(False)
    folder = Path(args.weights_dir)
    weights = {name: folder / f"{name}.safetensors"
               for name in NETWORKS}
    runs = [(name, weights[name], name) for name in args.only.split(",")]
    runs += [(task, Path(path), f"{task}:{Path(path).stem}") for task, path in (e.split("=", 1) for e in args.extra)]
    if args.red_free:
        runs += [(task, path, f"{label}:{kind}") for task, path, label in list(runs) if task == "landmarks"
                 for kind in RED_FREE_KINDS]
    results = {}
    for task, path, label in runs:
        if task != "landmarks" and not path.is_file():
            print(f"{label}: no weights at {path}, skipped")
            continue
        start = time.perf_counter()
        if task == "vessels":
            results[label] = bench_vessels(path, device)
        elif task == "disc_cup":
            results[label] = bench_disc_cup(path, device, data)
        elif task == "landmarks":
            present = {name: weights[name] if weights[name].is_file() else None for name in ("disc_cup", "vessels")}
            results[label] = bench_landmarks(path if path.is_file() else None, present["disc_cup"], present["vessels"],
                                             device, data, red_free=red_free_kind(label))
        else:
            results[label] = bench_lesions(path, device,
                                           args.tune_lesion_thresholds and label in ("lesions", "lesion_detail"),
                                           partner=weights["lesions"])
        if path.is_file():
            results[label]["version"] = read_metadata(path).get("version")
        results[label]["networks"] = resolve_inference(device).line()
        results[label]["bench_seconds"] = round(time.perf_counter() - start, 1)
        print(f"\n## {label}")
        for key, value in results[label].items():
            print(f"| {key} | {value:.4f} |" if isinstance(value, float) else f"| {key} | {value} |")
    out = REPO / "bench" / "results" / "bench_segmentation.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(out.read_text()) if out.is_file() else {}
    previous.update(results)
    out.write_text(json.dumps({**previous, "published": PUBLISHED}, indent=2))
    print(f"\nwritten {out}")
    if args.update_cards:
        for label, figures in results.items():
            card = folder / f"{label}.md"
            if card.is_file():
                update_card(card, figures, [(k, v) for k, v in results.items() if k.startswith(label + ":")])


CARD_HEADING = "## Held-out bench (bench/bench_segmentation.py)"


def update_card(card: Path, figures: dict, variants: list[tuple[str, dict]]) -> None:
    """Replace the card's bench section with these figures (and any measured variants)."""
    text = card.read_text().split(CARD_HEADING)[0].rstrip() + "\n\n" + CARD_HEADING + "\n\n"
    text += f"Measured {time.strftime('%Y-%m-%d')} on this 2-core CPU (no GPU), published figures in brackets.\n\n"
    for label, values in [(card.stem, figures), *variants]:
        text += f"### {label}\n\n| figure | value |\n|---|---|\n"
        for key, value in values.items():
            if key in ("bench_seconds",):
                continue
            shown = f"{value:.4f}" if isinstance(value, float) else str(value)
            published = PUBLISHED.get(key.replace("dice_mean", "vessels_dice").replace("classical_", "")
                                      .replace("pipeline_", "").replace("locator_", ""))
            text += f"| {key} | {shown}{f' ({published})' if published is not None else ''} |\n"
        text += "\n"
    card.write_text(text)


if __name__ == "__main__":
    from main import one_line_errors  # no public data named: one line, not a traceback

    with one_line_errors(Path(__file__).name):
        main()
