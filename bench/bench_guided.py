"""Guided versus unguided (λ = 1 vs 0) on regional labels built from public IDRiD annotations.

Son et al. Table 1 compares AUROC and AIR (TP, FN) with and without the guidance loss. Here both
networks are trained by the project's own ``train`` command on reference labels
(``models/findings/reference_labels.py``) at reduced settings that fit a 2-core CPU, and measured on a
validation split of photos whose IDRiD name match is confirmed (grouped so a photo known under
two names never sits on both sides). Optionally the guided runs are exported as starter weights.

``--as-published`` runs the paper's claim as the paper ran it: both sides are ``train
--as-published`` (the paper's network and loss without Octant's four additions, binary cue M,
Xavier initialisation from scratch), so λ = 1 and λ = 0 start from the same initial weights (one
seed, one network); their runs and figures are kept apart (``runs_as_published``) beside Octant's
variant (``runs``), which compares the same way.

``--cue lesions`` trains on lesion cues instead of regional ones (the map cells holding the
IDRiD masks' lesions, ``models.findings.data.lesion_cue``): a much narrower cue than the regions,
which on these advanced-retinopathy photos cover most of the map. Every run's AIR is measured
against both kinds of cue, so the two tables compare directly.

    OMP_NUM_THREADS=1 python bench/bench_guided.py [--findings haemorrhage,hard_exudate]
        [--starters microaneurysm,cotton_wool_patch] [--export-starters] [--cue lesions]
        [--sides with|without] [--epochs 30] [--minutes 20]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from main import main as octant  # noqa: E402
from models.metrics.classification import guidance_table  # noqa: E402
from storage.locations import default_runs_dir, public_data_dir  # noqa: E402

# Reduced settings for a 2-core CPU: 320 px instead of 512, 8 base channels, ≤ 20 minutes a run.
# A quarter of each stratum (label × complete/box cue) validates, so AIR rests on ≥ 10 complete cues.
# Both sides run all 30 epochs (no early stop): the guided validation loss, mostly the guidance
# term, levels off within ~8 epochs while the classification still improves.
REDUCED = ["--input-size", "320", "--width", "8", "--epochs", "30", "--batch-size", "16", "--lr", "0.02",
           "--precision", "auto", "--time-limit", "1200", "--patience", "0",
           "--validation-fraction", "0.25", "--seed", "0", "--device", "cpu"]
UNGUIDED_ROOT = default_runs_dir() / "bench_guided"


def run_dir_of(finding: str, guidance: float, run_root: Path, as_published: bool = False) -> Path:
    """λ = 0 ignores the cue, so one unguided run (under the regional root) serves both kinds of cue;
    the paper's network as published has its own λ = 0 run (another network: none of our additions)."""
    unguided_root = UNGUIDED_ROOT.with_name(UNGUIDED_ROOT.name + "_as_published") if as_published else UNGUIDED_ROOT
    return (run_root if guidance else unguided_root) / f"{finding}_lambda{guidance:g}"


def reduced_settings(epochs: int, minutes: float) -> list[str]:
    """REDUCED with ``--epochs`` and ``--time-limit`` as asked (a run on a crowded CPU is cut by epochs
    fixed alike on both sides, not by a clock that gives the sides different epochs)."""
    settings = list(REDUCED)
    settings[settings.index("--epochs") + 1] = str(epochs)
    settings[settings.index("--time-limit") + 1] = str(int(minutes * 60))
    return settings


def run(finding: str, guidance: float, export: Path | None, run_root: Path, cue: str, data: Path,
        as_published: bool = False, settings: list[str] = REDUCED) -> dict:
    run_dir = run_dir_of(finding, guidance, run_root, as_published)
    argv = ["train", "--network", "guided", "--finding", finding, "--reference", "idrid", "--data", str(data),
            "--cue", cue,
            "--guidance-weight", str(guidance), "--run-dir", str(run_dir), *settings]
    if as_published:   # from scratch (Xavier), the same seed on both sides: the same initial weights
        argv += ["--as-published", "--start-from", "scratch"]
    if export is not None:
        argv += ["--export", str(export)]
    start = time.perf_counter()
    code = octant(argv)
    if code != 0:
        raise SystemExit(f"training {finding} λ={guidance} failed")
    best = torch.load(run_dir / "best.pt", weights_only=False)
    history = json.loads((run_dir / "history.json").read_text())
    metrics = {k.removeprefix("val_"): v for k, v in best["metrics"].items()}
    return {**metrics, "best_epoch": best["epoch"], "epochs": len(history),
            "minutes": (time.perf_counter() - start) / 60, "command": "python main.py " + " ".join(argv)}


def evaluate(finding: str, guidance: float, run_root: Path, data: Path, as_published: bool = False) -> dict:
    """The best epoch again on its validation photos, with the figures training does not log:
    the share of the map the cues cover (AIR of a flat map), AIR on box cues (a lower bound), and
    AIR against lesion cues (suffix ``_lesion``) as well as regional ones."""
    from torch.utils.data import DataLoader

    from models.findings.data import FindingDataset
    from models.findings.guided import GuidedConfig, GuidedNet, finding_metrics, predict
    from models.findings.reference_labels import idrid_reference_samples
    from models.findings.training import guided_split

    run_dir = run_dir_of(finding, guidance, run_root, as_published)
    config = GuidedConfig.from_saved(json.loads((run_dir / "config.json").read_text())["task"])
    model = GuidedNet(config)
    model.load_state_dict(torch.load(run_dir / "best.pt", weights_only=False)["model"])
    fraction = float(REDUCED[REDUCED.index("--validation-fraction") + 1])
    seed = int(REDUCED[REDUCED.index("--seed") + 1])
    _, validation = guided_split(idrid_reference_samples(finding, data), fraction, seed)
    regional = FindingDataset(validation, config.input_size, config.map_size)
    outputs = predict(model, DataLoader(regional, batch_size=32), torch.device("cpu"))  # one pass, two kinds of cue
    lesion = FindingDataset(validation, config.input_size, config.map_size, cue_source="lesions")
    figures = finding_metrics(outputs, config.soft_cue)   # binary cues for the paper's network, as it trained
    lesion_metrics = finding_metrics({**outputs, "cues": lesion.cues}, config.soft_cue)
    figures.update({f"{k}_lesion": v for k, v in lesion_metrics.items() if k.startswith(("air", "cue", "n_"))})
    return figures


def save(output: Path, results: dict, runs_key: str, fresh: dict) -> dict:
    """Write ``results`` over the file as it is now: the sides measured in this call (``fresh``:
    finding → side → figures) join ``runs_key``'s figures on disk side by side, and every other runs
    key stays, so runs of this bench side by side (one per kind of cue, or one per side with
    ``--sides``) keep each other's figures. Returns what was written."""
    on_disk = json.loads(output.read_text()) if output.is_file() else {}
    merged = {**on_disk, **{k: v for k, v in results.items() if not k.startswith("runs")}}
    runs = {finding: dict(pair) for finding, pair in on_disk.get(runs_key, {}).items()}
    for finding, sides in fresh.items():
        runs.setdefault(finding, {}).update(sides)
    merged[runs_key] = runs
    output.write_text(json.dumps(merged, indent=2, default=str))
    return merged


def complete_pairs(runs: dict) -> dict:
    """The findings measured on both sides: the table compares them; a side still training in
    another call (``--sides``) or a starter trained guided only has no row yet."""
    return {finding: pair for finding, pair in runs.items() if {"with", "without"} <= set(pair)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--findings", default="haemorrhage,hard_exudate")
    parser.add_argument("--as-published", action="store_true",
                        help="both sides as the paper ran them (binary cue, no additions, Xavier from scratch)")
    parser.add_argument("--starters", default="", help="findings trained guided only, for starter weights")
    parser.add_argument("--export-starters", action="store_true")
    parser.add_argument("--evaluate-only", action="store_true",
                        help="measure the runs already made (in the user's data folder, runs/bench_guided) "
                             "again, without training")
    parser.add_argument("--export-dir", type=Path, default=ROOT / "weights",
                        help="where --export-starters writes (compare there before replacing shipped weights)")
    parser.add_argument("--cue", choices=("regions", "lesions"), default="regions",
                        help="what guides training: the lesions' regions (as readers label) or the lesions' cells")
    parser.add_argument("--sides", default="with,without",
                        help="which of λ = 1 (with) and λ = 0 (without) to train now: two calls, one side each, "
                             "may run side by side (one core each)")
    parser.add_argument("--epochs", type=int, default=30, help="epochs per run (default 30)")
    parser.add_argument("--minutes", type=float, default=20.0, help="training time cap per run (default 20)")
    parser.add_argument("--data", help="folder of the public data sets (default $OCTANT_PUBLIC_DATA)")
    args = parser.parse_args()
    settings = reduced_settings(args.epochs, args.minutes)
    chosen_sides = {side for side in args.sides.split(",") if side}
    if not chosen_sides or not chosen_sides <= {"with", "without"}:
        parser.error("--sides takes with, without or with,without")
    data = public_data_dir(args.data)
    variant = "_as_published" if args.as_published else ""
    run_root = default_runs_dir() / (("bench_guided" if args.cue == "regions" else "bench_guided_lesion_cues") + variant)
    runs_key = ("runs" if args.cue == "regions" else "runs_lesion_cues") + variant
    if args.as_published and args.export_starters:
        parser.error("--export-starters exports Octant's variant; leave out --as-published")
    weights = args.export_dir
    weights.mkdir(parents=True, exist_ok=True)
    output = ROOT / "bench" / "results" / "bench_guided.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(output.read_text()) if output.is_file() else {}  # earlier findings stay
    results.setdefault(runs_key, {})
    results.update({"settings": settings, "machine": "2-core CPU, OMP_NUM_THREADS=1",
                    "air": "on validation photos with complete cues (IDRiD-segmentation masks) only; "
                           "*_lesion: against the lesions' map cells instead of their regions"})
    findings = [f for f in args.findings.split(",") if f]
    for finding in findings + [f for f in args.starters.split(",") if f]:
        export = weights / f"guided_{finding}.safetensors" if args.export_starters else None
        sides = {"with": 1.0, "without": 0.0} if finding in findings else {"with": 1.0}
        earlier = results[runs_key].get(finding, {})   # a side not trained now keeps its earlier figures
        pair = {}
        for side, guidance in sides.items():
            if side not in chosen_sides:
                continue
            if args.evaluate_only:
                pair[side] = dict(earlier.get(side, {}))
            else:
                pair[side] = run(finding, guidance, export if guidance else None, run_root, args.cue, data,
                                 args.as_published, settings)
            pair[side].update(evaluate(finding, guidance, run_root, data, args.as_published))
        results = save(output, results, runs_key, {finding: pair})
    pairs = complete_pairs(results[runs_key])
    lesion_air = {f: {side: {k.removesuffix("_lesion"): v for k, v in r.items() if k.endswith("_lesion")
                             or not k.startswith(("air", "cue", "n_"))} for side, r in pair.items()}
                  for f, pair in pairs.items()}
    table = (f"{'the paper as published, ' if args.as_published else ''}trained on {args.cue} cues; AIR against regional cues:\n{guidance_table(pairs)}\n\n"
             f"AIR against lesion cues:\n{guidance_table(lesion_air, with_paper=False)}")
    results[f"table_{args.cue}{variant}"] = table
    save(output, results, runs_key, {})
    print(table)
    for finding, pair in results[runs_key].items():
        for side, r in pair.items():
            print(f"{finding} {side}: best epoch {r.get('best_epoch')}/{r.get('epochs')}, "
                  f"{r.get('minutes', float('nan')):.1f} min, n_tp {r.get('n_tp')}, n_fn {r.get('n_fn')}, "
                  f"threshold {r.get('threshold'):.3f}, cues cover {r.get('cue_tp', float('nan')):.2f} of the map "
                  f"on TP; box cues (lower bound): AIR TP {r.get('air_tp_box', float('nan')):.3f} "
                  f"(n {r.get('n_tp_box')}), FN {r.get('air_fn_box', float('nan')):.3f} (n {r.get('n_fn_box')}); "
                  f"lesion cues cover {r.get('cue_tp_lesion', float('nan')):.2f} of the map on TP")


if __name__ == "__main__":
    from main import one_line_errors  # no public data named: one line, not a traceback

    with one_line_errors(Path(__file__).name):
        main()
