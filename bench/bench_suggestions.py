"""Lesion suggestions on healthy and diseased eyes, per suggestion rule, tuned and reported on
separate photos (issue 17, point 2).

    python bench/bench_suggestions.py --data DIR [--weights-dir weights] [--sweep] [--limit N]

The networks are the expensive part, the rule is cheap: every photo goes through the pipeline once
and its result (every layer, probabilities as float16) is kept under the user's cache folder,
keyed by the weights' versions (``suggestion-maps/<hash>``); the rules are then applied to the
kept results by the product's own code (``models/segmentation/suggestions.py``). Photos (no lesion
network trained on an IDRiD-landmarks photo; those that are also IDRiD-segmentation 01–44, under
another name, are left out):

- ``tune``: IDRiD-landmarks photos whose name match was not checked twice (``confident`` 0), and
  IDRiD-segmentation 01–44 (the lesion networks trained on them: their sensitivity is optimistic);
- ``report``: the IDRiD-landmarks photos checked twice, and IDRiD-segmentation 46–54 (45–54 chose
  the networks' best epochs and pixel thresholds, not the rule; 45 is not in IDRiD-landmarks).

Per lesion type and set it measures:

- ``healthy``: the share of retinopathy-grade-0 IDRiD-landmarks photos with any suggested region
  (every suggestion there is false), and the mean regions per photo;
- ``photos``: the share of photos that have the lesion by their IDRiD grade with any region of it:
  MA on grade ≥ 1 (mild NPDR is microaneurysms), EX on macular-oedema risk ≥ 1 (IDRiD grades the
  risk by hard exudates), HE on grade ≥ 3 (severe NPDR: haemorrhages in all four quadrants);
- ``boxes``: the share of the clinician's lesion boxes (CODRAS, not exhaustive) holding a counted
  spot of the type inside a region suggested for it: haemorrhage boxes (drawn with
  microaneurysms) for MA, HE and either (``red``), hard-exudate boxes for EX;
- ``regions``: sensitivity and specificity over (photo, region) pairs on IDRiD-segmentation,
  truth the regions the exhaustive masks hit (5·10⁻⁴ disc areas, the true landmarks where
  IDRiD-landmarks has the photo, else the pipeline's; 46–54 as bench_pipeline.py measures them).

``--sweep`` prints, per type, the rules of a grid that no other beats on both the tuning photos'
healthy share and their sensitivity.
Writes bench/results/bench_suggestions.json.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import gzip
import hashlib
import itertools
import json
import pickle
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_pipeline import true_landmarks, true_regions  # noqa: E402

from models.engine.device import configure_threads  # noqa: E402
from models.engine.precision import cpu_facts, resolve_inference  # noqa: E402
from models.segmentation.cache import idrid_overlap, public_sets_cache_dir  # noqa: E402
from models.segmentation.lesions import LESION_CHANNELS, LESION_NAMES  # noqa: E402
from models.segmentation.pipeline import (  # noqa: E402
    Layer,
    PipelineModels,
    PipelineOptions,
    PipelineResult,
    lesion_peaks,
    lesion_rule_fields,
    load_pipeline_models,
    suggestion_rules,
)
from models.segmentation.presegment import process_photo  # noqa: E402
from models.segmentation.registry import ensure_caches  # noqa: E402
from models.segmentation.suggestions import (  # noqa: E402
    Spots,
    SuggestionRule,
    measure_photo,
    regions_suggested,
    spots_kept,
)
from storage.errors import GeometryError  # noqa: E402
from storage.locations import public_data_dir  # noqa: E402

SEGMENTATION_TRAINED = range(1, 45)   # IDRiD-segmentation photos the lesion networks trained on


@dataclass(frozen=True)
class Photo:
    path: Path
    set: str                  # "tune" | "report" | "segmentation"
    grade: int | None         # IDRiD retinopathy grade (None: segmentation photo)
    edema: int | None         # IDRiD macular-oedema risk: 0 means no hard exudate


def landmark_photos(data: Path) -> list[Photo]:
    folder = data / "IDRiD-landmarks"
    with open(folder / "landmarks.csv", newline="") as handle:
        checked = {row["image"]: row["confident"] == "1" for row in csv.DictReader(handle)}
    trained = {name for seg, name in idrid_overlap().items() if int(seg.split("_")[1]) in SEGMENTATION_TRAINED}
    with open(folder / "grades.csv", newline="") as handle:
        rows = sorted(csv.DictReader(handle), key=lambda row: row["image"])
    return [Photo(folder / "images" / row["image"], "report" if checked[row["image"]] else "tune",
                  int(row["retinopathy_grade"]), int(row["macular_edema_risk"]))
            for row in rows if row["image"] not in trained]


def segmentation_photos(data: Path) -> list[Photo]:
    folder = data / "IDRiD-segmentation" / "images"
    return [Photo(folder / f"IDRiD_{n:02d}.jpg", "segmentation", None, None) for n in range(1, 55)]


def maps_folder(models: PipelineModels) -> Path:
    """Kept results of these weights computed this way: their versions hash the folder's name, with
    the backend and precision unless PyTorch's bf16 (every map kept before 2026-12-04 night was)."""
    plan = models.plan
    made = [] if plan is None or (plan.backend, plan.name) == ("torch", "bf16") else [(plan.backend, plan.name)]
    key = hashlib.sha1(repr(sorted(models.versions().items()) + made).encode()).hexdigest()[:10]
    path = public_sets_cache_dir().parent / "suggestion-maps" / key
    path.mkdir(parents=True, exist_ok=True)
    return path


def kept_result(photo: Photo, models: PipelineModels, folder: Path) -> PipelineResult:
    """The photo's pipeline result, from the cache or computed and kept (float16 layers)."""
    path = folder / f"{photo.set}-{photo.path.stem}.pkl.gz"
    if path.is_file():
        with gzip.open(path, "rb") as handle:
            return pickle.load(handle)
    result = process_photo(photo.path, models)
    result.layers = {name: Layer(layer.prob.astype(np.float16), layer.to_map) for name, layer in result.layers.items()}
    partial = path.with_suffix(".part")
    with gzip.open(partial, "wb", compresslevel=3) as handle:
        pickle.dump(result, handle, protocol=pickle.HIGHEST_PROTOCOL)
    partial.replace(path)
    return result


BOX_TYPES = {"haemorrhages": ("MA", "HE"), "hard_exudates": ("EX",)}


@dataclass
class Record:
    """What the rules need of one photo: its spots (without their pixel maps) and its truths."""
    photo: Photo
    spots: dict[str, Spots]
    disc_area: float
    true_regions: dict[str, set[int]] | None = None          # segmentation photos, per channel
    boxes: list[tuple[str, dict[str, list[tuple[int, int]]]]] = field(default_factory=list)
    # per box: its label, and per channel the (spot, region) pairs of that channel's spots inside it


def box_pairs(box: tuple[float, float, float, float], to_grid: np.ndarray, spots: Spots,
              regions: np.ndarray) -> list[tuple[int, int]]:
    k, tx, ty = to_grid[0, 0], to_grid[0, 2], to_grid[1, 2]
    x0, y0, x1, y1 = (int(round(v)) for v in (box[0] * k + tx, box[1] * k + ty, box[2] * k + tx, box[3] * k + ty))
    x0, y0 = max(x0, 0), max(y0, 0)
    labels, inside = spots.labels[y0:y1, x0:x1], regions[y0:y1, x0:x1]
    hit = (labels > 0) & (inside > 0)
    return sorted({(int(s) - 1, int(r)) for s, r in zip(labels[hit], inside[hit])})


def lesion_boxes(data: Path) -> dict[str, list[tuple[str, tuple[float, float, float, float]]]]:
    out: dict[str, list] = {}
    with open(data / "IDRiD-landmarks" / "lesion_boxes.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["label"] in BOX_TYPES:
                out.setdefault(row["image"], []).append(
                    (row["label"], tuple(float(row[k]) for k in ("x0", "y0", "x1", "y1"))))
    return out


def measure(photos: list[Photo], models, data: Path) -> list[Record]:
    folder, boxes = maps_folder(models), lesion_boxes(data)
    landmarks, overlap = true_landmarks(data), idrid_overlap()
    records = []
    for i, photo in enumerate(photos):
        result = kept_result(photo, models, folder)
        try:
            measured = measure_photo(result)
        except GeometryError as error:
            print(f"{photo.path.name}: no regions ({error})", flush=True)
            continue
        record = Record(photo, measured.spots, measured.disc_area)
        to_grid = result.layers[LESION_NAMES["MA"]].to_map
        for label, box in boxes.get(photo.path.name, []) if photo.grade is not None else []:
            record.boxes.append((label, {c: box_pairs(box, to_grid, measured.spots[c], measured.regions)
                                         for c in BOX_TYPES[label]}))
        if photo.grade is None:
            truth = landmarks.get(overlap.get(photo.path.stem, ""))
            if truth is None:
                truth = np.array([result.disc, result.fovea])
            by_name = true_regions(photo.path.stem, truth, PipelineOptions().min_lesion_area)
            record.true_regions = {c: by_name[LESION_NAMES[c]] for c in LESION_CHANNELS}
        for spots in record.spots.values():
            spots.labels = spots.labels[:0, :0]   # the pixel maps are not needed any more
        records.append(record)
        if (i + 1) % 25 == 0:
            print(f"measured {i + 1} of {len(photos)}", flush=True)
    return records


def suggested(record: Record, channel: str, rule: SuggestionRule) -> tuple[list[int], np.ndarray]:
    spots = record.spots[channel]
    kept = spots_kept(spots, rule)
    return regions_suggested(spots, kept, record.disc_area, rule)[0], kept


def score(records: list[Record], channel: str, rule: SuggestionRule) -> dict:
    """One type's figures under ``rule`` on ``records`` (see the module's docstring)."""
    healthy, positive, hits, pairs = [], [], [], {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    for record in records:
        regions, kept = suggested(record, channel, rule)
        photo = record.photo
        if photo.grade == 0:
            healthy.append(len(regions))
        elif photo.grade is not None and has_lesion(photo, channel):
            positive.append(bool(regions))
        for _, by_channel in record.boxes:
            if channel in by_channel:
                hits.append(any(kept[s] and r in regions for s, r in by_channel[channel]))
        if record.true_regions is not None:
            truth = record.true_regions[channel]
            for region in range(1, 9):
                key = ("t" if (region in regions) == (region in truth) else "f") + ("p" if region in regions else "n")
                pairs[key] += 1
    out = {"healthy_photos": len(healthy), "healthy_share": share(np.array(healthy) > 0),
           "healthy_regions": float(np.mean(healthy)) if healthy else None,
           "positive_photos": len(positive), "photo_sensitivity": share(positive),
           "boxes": len(hits), "box_hits": share(hits)}
    if pairs["tp"] + pairs["fn"] + pairs["fp"] + pairs["tn"]:
        out |= {"true_regions": pairs["tp"] + pairs["fn"], "found_regions": pairs["tp"], "false_regions": pairs["fp"],
                "sensitivity": pairs["tp"] / max(1, pairs["tp"] + pairs["fn"]),
                "specificity": pairs["tn"] / max(1, pairs["tn"] + pairs["fp"])}
    return out


def has_lesion(photo: Photo, channel: str) -> bool:
    """Whether the photo's IDRiD grades say it has this lesion (False: they do not say)."""
    assert photo.grade is not None and photo.edema is not None
    return {"MA": photo.grade >= 1, "EX": photo.edema >= 1, "HE": photo.grade >= 3}.get(channel, False)


def share(values) -> float | None:
    return float(np.mean(values)) if len(values) else None


def red_box_hits(records: list[Record], rules: dict[str, SuggestionRule]) -> float | None:
    """Haemorrhage boxes (drawn with microaneurysms) holding a counted MA or HE spot in a region
    suggested for that type."""
    hits = []
    for record in records:
        found = {c: suggested(record, c, rules[c]) for c in ("MA", "HE")}
        for label, by_channel in record.boxes:
            if label == "haemorrhages":
                hits.append(any(found[c][1][s] and r in found[c][0] for c in ("MA", "HE") for s, r in by_channel[c]))
    return share(hits)


def split(records: list[Record]) -> dict[str, list[Record]]:
    seg = lambda lo, hi: [r for r in records if r.photo.set == "segmentation" and lo <= int(r.photo.path.stem[-2:]) <= hi]
    return {"tune": [r for r in records if r.photo.set == "tune"] + seg(1, 44),
            "report": [r for r in records if r.photo.set == "report"] + seg(46, 54)}


def table(records: dict[str, list[Record]], rules: dict[str, SuggestionRule]) -> dict:
    out = {}
    for name, subset in records.items():
        out[name] = {LESION_NAMES[c]: score(subset, c, rules[c]) for c in LESION_CHANNELS}
        healthy = [r for r in subset if r.photo.grade == 0]
        out[name]["any_type_healthy_share"] = share(
            [any(suggested(r, c, rules[c])[0] for c in LESION_CHANNELS) for r in healthy])
        out[name]["red_box_hits"] = red_box_hits(subset, rules)
    return out


SWEEP = {"peak": (0.0, 0.5, 0.9, 0.95, 0.98, 0.99),
         "least_area": (5e-4, 1e-3, 2e-3, 4e-3),
         "max_vessel_share": (1.0, 0.5),
         "vessel_clearance": (0.0, 3.0, 6.0),
         "disc_clearance": (0.0, 1.0),
         "rim_clearance": (0.0, 0.08),
         "least_spots": (1, 2, 3),
         "photo_least_spots": (1, 3, 6, 10)}


def sweep(records: list[Record], channel: str, current: SuggestionRule) -> list[tuple[SuggestionRule, dict]]:
    """Every rule of the grid on the tuning records; those no other beats on both the healthy share
    and the sensitivity (regions on segmentation 01–44 for SE, else boxes and photos together)."""
    rows = []
    for values in itertools.product(*SWEEP.values()):
        rule = replace(current, **dict(zip(SWEEP, values)))
        rows.append((rule, score(records, channel, rule)))
    def sensitivity(figures: dict) -> float:
        if channel == "SE":
            return figures.get("sensitivity") or 0.0
        return ((figures["box_hits"] or 0.0) + (figures["photo_sensitivity"] or 0.0)
                + (figures.get("sensitivity") or 0.0)) / 3
    points = np.array([(sensitivity(f), f["healthy_share"] or 0.0) for _, f in rows])
    front = []
    for (rule, figures), (s, h) in zip(rows, points):
        beaten = (points[:, 0] >= s) & (points[:, 1] <= h) & ((points[:, 0] > s) | (points[:, 1] < h))
        if not beaten.any():
            front.append((rule, {**figures, "combined_sensitivity": float(s)}))
    return sorted(front, key=lambda row: row[1]["healthy_share"] or 0.0)


def print_table(title: str, figures: dict) -> None:
    print(f"\n{title}: healthy share (regions per photo) | photos with the lesion found | boxes hit | "
          "segmentation regions found of true, sensitivity / specificity")
    show = lambda v: "–" if v is None else f"{v:.2f}"
    for name, subset in figures.items():
        cells = []
        for lesion, f in subset.items():
            if isinstance(f, dict):
                regions = (f"{f['found_regions']}/{f['true_regions']} {f['sensitivity']:.2f}/{f['specificity']:.2f}"
                           if "true_regions" in f else "–")
                cells.append(f"{lesion[:12]} {show(f['healthy_share'])} ({show(f['healthy_regions'])}) | "
                             f"{show(f['photo_sensitivity'])} | {show(f['box_hits'])} | {regions}")
        print(f"  {name} (any type healthy {show(subset['any_type_healthy_share'])}, red boxes "
              f"{show(subset['red_box_hits'])}):\n    " + "\n    ".join(cells))


def parse_rules(given: str) -> dict[str, dict[str, float]]:
    """``MA:least_spots=2,photo_least_spots=3;HE:peak=0.98`` -> {"MA": {...}, "HE": {...}}."""
    fields = {f.name for f in dataclasses.fields(SuggestionRule)}
    out: dict[str, dict[str, float]] = {}
    try:
        for part in filter(None, given.split(";")):
            channel, _, settings = part.partition(":")
            out[channel.strip()] = {k.strip(): float(v) for k, v in (item.split("=") for item in settings.split(","))}
    except ValueError:
        raise SystemExit(f"--store-rules wants CH:FIELD=VALUE,...;CH:... such as MA:least_spots=2, not {given!r}.") from None
    unknown = {k for values in out.values() for k in values} - fields
    if set(out) - set(LESION_CHANNELS) or unknown or not out:
        raise SystemExit(f"--store-rules: channels among {', '.join(LESION_CHANNELS)}, fields among {', '.join(sorted(fields))}.")
    return out


def store_rules(folder: Path, given: dict[str, dict[str, float]]) -> dict[str, dict]:
    """Each channel's rule into the file of the network that supplies it in the pipeline (the detail
    network for its channels when its file is there): the peak into ``peaks``, the rest into
    ``suggestion_rules`` (every field, so the pipeline's default least areas no longer apply). Only
    the header changes: the tensors are written back as read, the version stays (the maps do not change)."""
    from models.engine.weights import read_metadata, rewrite_metadata
    from models.segmentation.lesions import LesionNetConfig
    from models.segmentation.pipeline import network_peaks

    detail_path = folder / "lesion_detail.safetensors"
    detail_channels = (LesionNetConfig.from_dict(read_metadata(detail_path)["config"]).channels
                       if detail_path.is_file() else ())
    stored = {}
    for name in ("lesions", "lesion_detail"):
        path = folder / f"{name}.safetensors"
        channels = [c for c in given if (c in detail_channels) == (name == "lesion_detail")]
        if not channels:
            continue
        metadata = read_metadata(path)
        config = LesionNetConfig.from_dict(metadata["config"])
        peaks = network_peaks(config)
        rules = dict(metadata["config"].get("suggestion_rules") or {})
        for channel in channels:
            rule = replace(SuggestionRule(peak=peaks.get(channel, 0.0),
                                          least_area=PipelineOptions().lesion_min_area.get(channel, 5e-4)),
                           **rules.get(channel, {}))
            rule = replace(rule, **{k: (int(v) if k.endswith("spots") else v) for k, v in given[channel].items()})
            peaks[channel] = rule.peak
            rules[channel] = {k: v for k, v in asdict(rule).items() if k != "peak"}
        metadata["config"]["peaks"] = [round(peaks.get(c, 0.0), 3) for c in config.channels]
        metadata["config"]["suggestion_rules"] = rules
        metadata["suggestion_rules_note"] = ("chosen with bench/bench_suggestions.py --sweep on the unchecked "
                                             "IDRiD-landmarks photos and IDRiD-segmentation 01-44")
        rewrite_metadata(path, metadata)
        stored[name] = {c: {"peak": peaks.get(c, 0.0), **rules[c]} for c in channels}
    return stored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="folder of the public data sets (default $OCTANT_PUBLIC_DATA)")
    parser.add_argument("--weights-dir", default=str(REPO / "weights"))
    parser.add_argument("--limit", type=int, default=0, help="at most this many photos of each set (0: all)")
    parser.add_argument("--sweep", action="store_true", help="print each type's best rules on the tuning photos")
    parser.add_argument("--before-weights", metavar="DIR",
                        help="also score the rules stored in this weights folder's lesion files (the same networks)")
    parser.add_argument("--kept-only", action="store_true", help="only the photos whose results are kept already")
    parser.add_argument("--report-only", action="store_true",
                        help="only the reporting photos (checked IDRiD-landmarks, IDRiD-segmentation 46-54)")
    parser.add_argument("--store-rules", metavar="CH:FIELD=V,...;...",
                        help="store these rule settings (e.g. MA:least_spots=2;HE:peak=0.98) in the lesion files "
                             "of --weights-dir, then stop")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "bench_suggestions.json"))
    args = parser.parse_args()
    if args.store_rules:
        print(json.dumps(store_rules(Path(args.weights_dir), parse_rules(args.store_rules)), indent=1))
        return
    data = public_data_dir(args.data)
    ensure_caches("lesions", str(data))
    torch.set_grad_enabled(False)
    configure_threads()
    models, messages = load_pipeline_models(args.weights_dir)
    print(models.backend_line(), f"kept maps: {maps_folder(models)}", flush=True)
    for line in messages:
        print("note:", line)
    photos = landmark_photos(data) + [p for p in segmentation_photos(data) if p.path.stem != "IDRiD_45"]
    if args.limit:
        photos = [p for s in ("tune", "report", "segmentation") for p in [q for q in photos if q.set == s][:args.limit]]
    if args.report_only:
        photos = [p for p in photos if p.set == "report" or p.set == "segmentation" and int(p.path.stem[-2:]) >= 46]
    if args.kept_only:
        photos = [p for p in photos if (maps_folder(models) / f"{p.set}-{p.path.stem}.pkl.gz").is_file()]
    records = split(measure(photos, models, data))
    facts = cpu_facts()
    shipped = suggestion_rules(PipelineOptions(), lesion_peaks(models), lesion_rule_fields(models))
    former = suggestion_rules(PipelineOptions(lesion_min_area={}, lesion_peak={}, lesion_rules={}))
    summary = {"cpu": f"{facts.model}; flags {' '.join(facts.flags or [])}",
               "precision": (models.plan or resolve_inference(models.device)).name,
               "networks": models.backend_line(), "model_versions": models.versions(),
               "photos": {name: {"all": len(subset), "grade_0": sum(r.photo.grade == 0 for r in subset)}
                          for name, subset in records.items()},
               "rules": {"former": {c: asdict(r) for c, r in former.items()},
                         "shipped": {c: asdict(r) for c, r in shipped.items()}},
               "former": table(records, former), "shipped": table(records, shipped)}
    if args.before_weights:
        before_models = load_pipeline_models(args.before_weights, "cpu")[0]
        if before_models.versions() != models.versions():
            raise SystemExit("--before-weights must hold the same networks (versions) as --weights-dir.")
        before = suggestion_rules(PipelineOptions(), lesion_peaks(before_models), lesion_rule_fields(before_models))
        summary["rules"]["before"] = {c: asdict(r) for c, r in before.items()}
        summary["before"] = table(records, before)
    print(f"CPU {summary['cpu']}; precision {summary['precision']}; photos {summary['photos']}")
    for rules in ("former", "before", "shipped"):
        if rules in summary:
            print_table(rules, summary[rules])
    if args.sweep:
        summary["sweep"] = {}
        for channel in LESION_CHANNELS:
            front = sweep(records["tune"], channel, shipped[channel])
            summary["sweep"][channel] = [{"rule": asdict(rule), **figures} for rule, figures in front]
            print(f"\n{channel}: current {score(records['tune'], channel, shipped[channel])}")
            for rule, figures in front:
                print(f"  {asdict(rule)} -> healthy {figures['healthy_share']:.2f}, sensitivity "
                      f"{figures['combined_sensitivity']:.3f} (boxes {figures['box_hits']}, photos "
                      f"{figures['photo_sensitivity']}, regions {figures.get('sensitivity')})", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))
    print(f"written {out}")


if __name__ == "__main__":
    from main import one_line_errors  # no public data named: one line, not a traceback

    with one_line_errors(Path(__file__).name):
        main()
