"""Speed and end-to-end accuracy of the whole pre-segmentation pipeline on original IDRiD photos.

    python bench/bench_pipeline.py --data DIR [--weights-dir weights] [--photos 45-54] [--repeats 1]

For each IDRiD-segmentation photo (4288 × 2848 JPEG; 45–54 were held out by every network):
decode (JPEG reduced inside the decoder) + ``run_pipeline``, timed per stage (median over photos),
and, separately, writing the PNG masks at the original size. Accuracy: disc and fovea errors
against the IDRiD localisation ground truth (the same photo in IDRiD-landmarks), and the
suggested regions per lesion type against the regions the ground-truth masks hit (the same
``min_lesion_area`` rule on the true masks, true landmarks and true disc), as sensitivity and
specificity over (photo, region) pairs. Throughput: the same photos, cycled ``--throughput-photos``
long, through ``pipeline_results`` (decoding on threads, ``--batch-sizes`` photos per network call;
default 1 on a CPU, 1 and 8 on a GPU) and through ``presegment_to_folder`` (the same plus the PNG
masks written on threads), in photos per second. Precisions: the CPU's model, the flags that
matter and the restrictions in force (``ONEDNN_MAX_CPU_ISA``, ``ATEN_CPU_CAPABILITY``), the
precision ``auto`` picks, and per-photo time (decode + pipeline) of each ``--variants`` entry,
photos and variants interleaved over ``--rounds`` so a loaded machine slows all alike; each
variant's masks are compared (Dice) with fp32 PyTorch's. Writes bench/results/bench_pipeline.json
(``--out`` to name another file).

``--healthy``: the suggestions on eyes without retinopathy, i.e. the IDRiD-landmarks photos of
retinopathy grade 0 (1429 × 949; no lesion network trained on any IDRiD-landmarks photo). Per lesion
type, the share of photos with any suggested region and the mean number of suggested regions. Of the
134, ``--healthy-set confident`` (default) takes the 77 whose photo-to-name match was checked twice
(their grade is right), ``other`` the 57 others (where the false-positive rules were tuned);
``--healthy-limit N`` the first N of them. ``--former-suggestions`` turns the rules against those
false positives off (``PipelineOptions.lesion_min_area``, ``lesion_peak`` and ``lesion_rules``, which by
default are the lesion networks' own: ``LesionNetConfig.peaks`` and ``suggestion_rules``), for the
before/after. bench_suggestions.py measures and tunes the rules on kept maps.

    python bench/bench_pipeline.py --healthy --variants '' --skip-throughput   # healthy eyes and 45-54

    # the AVX2-only clinic CPU on a bigger one:
    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 python bench/bench_pipeline.py
        --skip-accuracy --skip-throughput --out bench/results/bench_pipeline_avx2.json
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from annotate.fov import detect_fov, fov_mask  # noqa: E402
from annotate.geometry import region_label_map  # noqa: E402
from models.engine.device import configure_threads, pick_device  # noqa: E402
from models.engine.precision import (  # noqa: E402
    BACKEND_ENV,
    cpu_facts,
    onnxruntime_missing,
    resolve_inference,
    set_precision,
)
from models.segmentation.cache import idrid_overlap, public_sets_cache_dir  # noqa: E402
from models.segmentation.lesions import LESION_CHANNELS, LESION_NAMES  # noqa: E402
from models.segmentation.pipeline import (  # noqa: E402
    MASK_NAMES,
    PipelineOptions,
    lesion_peaks,
    lesion_rule_fields,
    load_pipeline_models,
    run_pipeline,
)
from models.segmentation.presegment import (  # noqa: E402
    decode_photo,
    pipeline_results,
    presegment_to_folder,
    process_photo,
    write_outputs,
)
from models.segmentation.registry import NETWORKS, ensure_caches  # noqa: E402
from storage.locations import public_data_dir  # noqa: E402


def true_landmarks(data: Path) -> dict[str, np.ndarray]:
    rows = csv.DictReader(open(data / "IDRiD-landmarks" / "landmarks.csv"))
    return {r["image"]: np.array([[float(r["disc_x"]), float(r["disc_y"])],
                                  [float(r["fovea_x"]), float(r["fovea_y"])]]) * 3 for r in rows}


def true_regions(name: str, landmarks: np.ndarray, min_area: float) -> dict[str, set[int]]:
    """Regions hit by each lesion type in the ground truth (1/3 scale cache), same rule as the pipeline."""
    folder = public_sets_cache_dir() / "idrid_lesions"
    names = (folder / "names.txt").read_text().split()
    i = names.index(name)
    masks = np.load(folder / "masks.npy", mmap_mode="r")[i]
    image = np.load(folder / "images.npy", mmap_mode="r")[i]
    fov = detect_fov(np.asarray(image)[..., ::-1])
    shape = masks.shape[1:]
    labels = region_label_map(landmarks[0] / 3, landmarks[1] / 3, shape, fov_mask(shape, fov))
    disc_area = float((masks[4] >= 128).sum())
    out = {}
    for c, channel in enumerate(LESION_CHANNELS):
        counts = np.bincount(labels[np.asarray(masks[c]) >= 128], minlength=9)[1:9] / max(disc_area, 1.0)
        out[LESION_NAMES[channel]] = {r + 1 for r, a in enumerate(counts) if a >= min_area}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights-dir", default=str(REPO / "weights"))
    parser.add_argument("--photos", default="45-54")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--device", default=None)
    parser.add_argument("--batch-sizes", default=None, help="e.g. 1,8 (default: 1 on a CPU, 1,8 on a GPU)")
    parser.add_argument("--throughput-photos", type=int, default=0,
                        help="photos per throughput run, the list cycled (default: the photos once; 0 skips on request)")
    parser.add_argument("--skip-accuracy", action="store_true", help="no accuracy pass")
    parser.add_argument("--data", help="folder of the public data sets (default $OCTANT_PUBLIC_DATA)")
    parser.add_argument("--skip-throughput", action="store_true", help="no throughput pass")
    parser.add_argument("--variants", default="fp32/torch,fp32/onnxruntime,bf16/torch",
                        help="precision/backend pairs timed side by side ('' skips); PAIR@DIR runs the weights "
                             "of folder DIR (e.g. auto/auto@/tmp/other-weights), else --weights-dir's")
    parser.add_argument("--compare-photos", type=int, default=3, help="photos of --photos in the side-by-side timing")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of the side-by-side timing")
    parser.add_argument("--slow-limit", type=float, default=60.0,
                        help="seconds per photo after which a variant (emulated bf16) is timed on no more photos")
    parser.add_argument("--healthy", action="store_true",
                        help="also measure the suggestions on grade-0 (no retinopathy) IDRiD-landmarks photos")
    parser.add_argument("--healthy-set", choices=("confident", "other"), default="confident",
                        help="grade-0 photos whose name match was checked twice (default), or the others")
    parser.add_argument("--healthy-limit", type=int, default=0, help="at most this many grade-0 photos (0: all)")
    parser.add_argument("--former-suggestions", action="store_true",
                        help="suggest regions without the per-type least areas and peaks (the rules before issue 17)")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "bench_pipeline.json"))
    args = parser.parse_args()
    data = public_data_dir(args.data)
    ensure_caches("lesions", str(data))   # the ground-truth regions come from the lesion cache
    first, last = (int(v) for v in args.photos.split("-"))
    plan = configure_threads()
    load_at_start = list(os.getloadavg())
    facts, auto = cpu_facts(), resolve_inference(pick_device(args.device), "auto")
    print(f"CPU {facts.model}; flags {' '.join(facts.flags or ['(not reported)'])}; torch kernels "
          f"{facts.capability}; restrictions {dict(facts.restrictions) or 'none'}; {plan.network} network threads "
          f"of {plan.cores} cores; load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}; "
          f"auto picks {auto.line()}", flush=True)
    folder = data / "IDRiD-segmentation" / "images"
    compared = [folder / f"IDRiD_{n:02d}.jpg" for n in range(first, last + 1)][:args.compare_photos]
    side_by_side = compare_variants(compared, [v for v in args.variants.split(",") if v], args)
    set_precision("auto")
    models, messages = load_pipeline_models(args.weights_dir, args.device)
    print(models.backend_line(), flush=True)
    for line in messages:
        print("note:", line)
    landmarks, overlap = true_landmarks(data), idrid_overlap()
    folder = data / "IDRiD-segmentation" / "images"
    stages: dict[str, list[float]] = {}
    writing, disc_err, fovea_err = [], [], []
    pairs = {name: {"tp": 0, "fp": 0, "fn": 0, "tn": 0} for name in LESION_NAMES.values()}
    min_area = PipelineOptions().min_lesion_area
    for number in range(first, last + 1) if not args.skip_accuracy else ():
        name = f"IDRiD_{number:02d}"
        path = folder / f"{name}.jpg"
        for _ in range(args.repeats):
            start = time.perf_counter()
            result = suggest_on_photo(path, models, args.former_suggestions)
            stages.setdefault("decode_and_pipeline", []).append(time.perf_counter() - start)
            for stage, seconds in result.timings.items():
                stages.setdefault(stage, []).append(seconds)
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            write_outputs(result, Path(tmp), False, path)
            writing.append(time.perf_counter() - start)
        truth_name = overlap.get(name)
        if truth_name is None:
            continue
        truth = landmarks[truth_name]
        disc_err.append(float(np.hypot(*np.subtract(result.disc, truth[0]))))
        fovea_err.append(float(np.hypot(*np.subtract(result.fovea, truth[1]))))
        for lesion, regions in true_regions(name, truth, min_area).items():
            predicted = set(result.lesion_regions.get(lesion, []))
            for region in range(1, 9):
                key = ("t" if (region in predicted) == (region in regions) else "f") + ("p" if region in predicted else "n")
                pairs[lesion][key] += 1
        print(f"{name}: {result.timings.get('total', 0):.2f} s, disc {disc_err[-1]:.0f} px, fovea {fovea_err[-1]:.0f} px,"
              f" {result.landmark_method}", flush=True)
    summary = {
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
                   f"device {models.device}",
        "cpu": facts.to_dict(), "threads": plan.__dict__, "auto_precision": auto.name,
        "auto_reason": auto.reason, "auto_backend": auto.backend, "networks": models.backend_line(),
        "load_average_start": load_at_start, "load_average_end": list(os.getloadavg()),
        "per_photo_seconds": side_by_side,
        "photos": f"IDRiD-segmentation {first}-{last} (4288 x 2848)", "working_resolutions": {name: spec.working_resolution for name, spec in NETWORKS.items()},
        "median_seconds": {k: float(np.median(v)) for k, v in stages.items()},
        "writing_masks_seconds": float(np.median(writing)) if writing else None,
        "disc_error_px": float(np.mean(disc_err)) if disc_err else None,
        "fovea_error_px": float(np.mean(fovea_err)) if fovea_err else None,
        "landmark_photos": len(disc_err), "model_versions": models.versions(), "messages": messages,
        "region_suggestions": {k: {**v, "sensitivity": v["tp"] / max(1, v["tp"] + v["fn"]),
                                   "specificity": v["tn"] / max(1, v["tn"] + v["fp"])} for k, v in pairs.items()},
    }
    if args.healthy:
        healthy = grade_zero_photos(data, args.healthy_set == "confident")[:args.healthy_limit or None]
        summary["healthy_eyes"] = healthy_suggestions(healthy, models, args.healthy_set, args.former_suggestions)
    summary["suggestion_rules"] = "former (area 5e-4 x disc, threshold only)" if args.former_suggestions else {
        "least_area": PipelineOptions().lesion_min_area, "peak": lesion_peaks(models),
        "rest": lesion_rule_fields(models)}
    paths = [folder / f"IDRiD_{n:02d}.jpg" for n in range(first, last + 1)]
    sizes = [int(v) for v in (args.batch_sizes or ("1,8" if models.device.type == "cuda" else "1")).split(",")]
    if not args.skip_throughput:
        summary["throughput"] = throughput(paths, models, sizes, args.throughput_photos or len(paths))
    print(json.dumps(summary, indent=1))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))


def grade_zero_photos(data: Path, confident: bool) -> list[Path]:
    """IDRiD-landmarks photos of retinopathy grade 0, by name; ``confident``: those whose name match
    was checked twice (landmarks.csv), else the others."""
    folder = data / "IDRiD-landmarks"
    with open(folder / "landmarks.csv", newline="") as handle:
        checked = {row["image"] for row in csv.DictReader(handle) if row["confident"] == "1"}
    with open(folder / "grades.csv", newline="") as handle:
        names = sorted(row["image"] for row in csv.DictReader(handle) if row["retinopathy_grade"] == "0")
    return [folder / "images" / name for name in names if (name in checked) == confident]


def suggest_on_photo(path: Path, models, former: bool = False):
    """``process_photo``, optionally with the former suggestion rule (no per-type least area or peak)."""
    if not former:
        return process_photo(path, models)
    image, options = decode_photo(path)
    options.lesion_min_area, options.lesion_peak, options.lesion_rules = {}, {}, {}
    started = time.perf_counter()
    result = run_pipeline(image, models, options)
    result.timings["total"] = time.perf_counter() - started
    return result


def healthy_suggestions(paths: list[Path], models, which: str, former: bool = False) -> dict:
    """On eyes without retinopathy every suggested lesion region is a false positive: per type, the
    share of photos with any, and the mean number of regions suggested per photo (of 8)."""
    regions = {name: [] for name in LESION_NAMES.values()}
    seconds = []
    for path in paths:
        start = time.perf_counter()
        result = suggest_on_photo(path, models, former)
        seconds.append(time.perf_counter() - start)
        for name in regions:
            regions[name].append(len(result.lesion_regions.get(name, [])))
        print(f"{path.name} (grade 0): " + ", ".join(f"{name} {regions[name][-1]}" for name in regions), flush=True)
    out = {"photos": len(paths), "set": f"IDRiD-landmarks grade 0, {which} (1429 x 949)",
           "median_seconds": float(np.median(seconds)) if seconds else None, "per_type": {}}
    for name, counts in regions.items():
        counts_array = np.array(counts or [0])
        out["per_type"][name] = {"share_with_any_region": float((counts_array > 0).mean()) if counts else None,
                                 "mean_regions": float(counts_array.mean()) if counts else None,
                                 "photos_with_any": int((counts_array > 0).sum())}
    shares = np.array([max(c) > 0 for c in zip(*regions.values())]) if paths else np.zeros(1)
    out["share_with_any_lesion_region"] = float(shares.mean())
    print(f"healthy eyes ({len(paths)} grade-0 photos, {which}): share with any suggested region "
          + ", ".join(f"{name} {v['share_with_any_region']:.2f} (mean {v['mean_regions']:.2f} regions)"
                      for name, v in out["per_type"].items() if v["share_with_any_region"] is not None)
          + f"; any type {out['share_with_any_lesion_region']:.2f}", flush=True)
    return out


def compare_variants(paths: list[Path], variants: list[str], args) -> dict:
    """Per-photo seconds (decode + pipeline; median) of each precision/backend, photos and variants
    interleaved; each variant's masks against fp32 PyTorch's (mean Dice over masks and photos)."""
    loaded, given_backend = {}, os.environ.get(BACKEND_ENV)   # the caller's setting, back after loading
    for variant in variants:
        pair, _, weights_dir = variant.partition("@")
        precision, _, backend = pair.partition("/")
        os.environ[BACKEND_ENV] = backend or "auto"
        set_precision(precision)
        if backend == "onnxruntime" and onnxruntime_missing():
            print(f"{variant}: {onnxruntime_missing()}; skipped", flush=True)
            continue
        loaded[variant] = load_pipeline_models(weights_dir or args.weights_dir, args.device)[0]
        print(f"{variant}: {loaded[variant].backend_line()}", flush=True)
    os.environ.pop(BACKEND_ENV, None)
    if given_backend is not None:   # e.g. OCTANT_BACKEND=torch: the accuracy pass in PyTorch's choice
        os.environ[BACKEND_ENV] = given_backend
    times = {variant: [] for variant in loaded}
    cpu_times: dict[str, list[float]] = {variant: [] for variant in loaded}   # all threads: the load does not inflate it
    stages: dict[str, dict[str, list[float]]] = {variant: {} for variant in loaded}
    masks: dict[tuple[str, int], dict] = {}
    for _ in range(args.rounds):
        for index, path in enumerate(paths):
            for variant, models in loaded.items():
                if times[variant] and max(times[variant]) > args.slow_limit:
                    continue   # emulated bf16: one photo says enough
                set_precision(variant.partition("@")[0].partition("/")[0])
                start, cpu_start = time.perf_counter(), process_cpu_seconds()
                result = process_photo(path, models)
                times[variant].append(time.perf_counter() - start)
                cpu_times[variant].append(process_cpu_seconds() - cpu_start)
                for stage, seconds in result.timings.items():
                    stages[variant].setdefault(stage, []).append(seconds)
                masks.setdefault((variant, index), {name: result.mask(name) for name in MASK_NAMES})
                print(f"{variant}: {path.name} {times[variant][-1]:.2f} s", flush=True)
    reference = "fp32/torch"
    out = {}
    for variant, seconds in times.items():
        dices = [dice(masks[(variant, i)][name], masks[(reference, i)][name])
                 for i in range(len(paths)) if (variant, i) in masks and (reference, i) in masks
                 for name in MASK_NAMES if masks[(reference, i)][name] is not None]
        out[variant] = {"networks": loaded[variant].backend_line(),
                        "median_s": float(np.median(seconds)), "min_s": float(np.min(seconds)), "runs": len(seconds),
                        "median_cpu_s": float(np.median(cpu_times[variant])),
                        "dice_vs_fp32_torch": float(np.mean(dices)) if dices else None,
                        "min_dice_vs_fp32_torch": float(np.min(dices)) if dices else None,
                        "stages_median_s": {k: float(np.median(v)) for k, v in stages[variant].items()}}
        print(f"{variant}: median {out[variant]['median_s']:.2f} s per photo over {len(seconds)} runs "
              f"({out[variant]['median_cpu_s']:.2f} CPU s), "
              f"Dice against fp32 PyTorch {out[variant]['dice_vs_fp32_torch']}", flush=True)
    set_precision("auto")
    return out


def process_cpu_seconds() -> float:
    """CPU time of this process's threads so far (user + system)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def dice(a: np.ndarray | None, b: np.ndarray | None) -> float:
    if a is None or b is None:
        return 0.0
    a, b = a > 0, b > 0
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2 * (a & b).sum() / total)


def throughput(paths: list[Path], models, batch_sizes: list[int], count: int) -> dict:
    """Photos per second through the pipeline alone and through the whole ``presegment`` (masks
    written), per batch size; one warm-up batch first (CUDA kernels, allocator)."""
    cycled = [paths[i % len(paths)] for i in range(count)]
    out = {}
    for size in batch_sizes:
        for _ in pipeline_results(cycled[:size], models, size):
            pass
        start = time.perf_counter()
        for _ in pipeline_results(cycled, models, size):
            pass
        pipeline_s = time.perf_counter() - start
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            summary = presegment_to_folder(cycled, Path(tmp), models, batch_size=size)
            total_s = time.perf_counter() - start
        out[f"batch_{size}"] = {"photos": count, "pipeline_photos_per_s": count / pipeline_s,
                                "pipeline_ms_per_photo": 1000 * pipeline_s / count,
                                "presegment_photos_per_s": count / total_s,
                                "presegment_ms_per_photo": 1000 * total_s / count,
                                "written": summary.done}
        print(f"batch {size}: pipeline {1000 * pipeline_s / count:.0f} ms/photo ({count / pipeline_s:.2f} photos/s), "
              f"with masks written {1000 * total_s / count:.0f} ms/photo", flush=True)
    return out


if __name__ == "__main__":
    from main import one_line_errors  # no public data named: one line, not a traceback

    with one_line_errors(Path(__file__).name):
        main()
