"""Attention-mask classifier versus its unmasked baseline on IDRiD retinopathy grades.

Himbitskaya et al. report 78.3 % → 92.2 % accuracy on ODIR (7 classes, ImageNet-pretrained
EfficientNet-B6, binary structure masks). Here three arms are trained by the project's own
``train`` command on the 413 IDRiD-landmarks photos (5 grades), all from the same start
(``--encoder-weights``: by default the packaged ImageNet EfficientNet-Lite0, models/engine/pretrained.py;
``none`` trains from scratch as before), and measured on one validation split:

    baseline           no mask (the paper's §IV baseline)
    attention-binary   the paper's binary structure masks (``train --as-published``)
    attention          Octant's soft masks (probability maps)

The masks come from the pre-segmentation starter weights (``weights/disc_cup.safetensors``,
``weights/vessels.safetensors``). Each arm checkpoints every epoch and resumes from its run folder
(``--run-root``), so a run cut short goes on where it stopped; ``--epochs`` caps the epochs.

    OMP_NUM_THREADS=1 python bench/bench_attention_mask.py [--only baseline] [--epochs 10] [--minutes 55]

The arms are independent: ``--only NAME`` runs may go side by side (one core each); each merges
its figures into the JSON when it ends.

One split of 84 photos cannot tell arms 5 points apart. ``--folds K --fold I`` trains the arms on
fold I of K (``train --fold I/K``: every confident photo validated once over the K folds), and
``--compare --folds K`` pools the K folds' validation photos (212) for each arm's accuracy and
McNemar's test. On a GPU: ``--device cuda``, the K × 3 runs side by side.

Lesions need more than 224 px. On a CPU ``--input-size 512 --frozen-blocks 4`` trains at 512 px
with the encoder's stem and first four blocks kept as ImageNet left them (``train --frozen-blocks``:
a step costs about a quarter of a full one); runs and JSON of another size or frozen part are kept
apart (``bench_attention_mask-<weights>-512px-frozen4``).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from main import main as octant  # noqa: E402
from models.engine.weights import read_metadata  # noqa: E402
from storage.locations import default_runs_dir, public_data_dir  # noqa: E402


# The paper's recipe (30 epochs, batch 8, 224 px, Adam 1e-4, early stopping with patience 5 on the
# validation loss) with a time cap and a smaller encoder; from scratch a rate of 1e-3 (at 1e-4 nothing
# was learnt in the time). From scratch the validation loss jumps between epochs (1.3 → 2.8 → 1.4): on
# 2026-11-26 early stopping ended both networks at epoch 7 or 8 with their best at epoch 2 or 3.
def reduced_settings(minutes: float, patience: int, encoder_weights: str, epochs: int,
                     device: str = "cpu", backbone: str | None = None, input_size: int = 224,
                     frozen_blocks: int = 0, precision: str = "auto") -> list[str]:
    from models.engine.pretrained import is_packaged, timm_architecture

    backbone = backbone or (timm_architecture(encoder_weights) if is_packaged(encoder_weights) else "efficientnet_b0")
    pretrained = encoder_weights != "none"    # packaged or a weights FILE: fine-tuning's rate
    return ["--backbone", backbone, "--encoder-weights", encoder_weights, "--input-size", str(input_size),
            *(["--frozen-blocks", str(frozen_blocks)] if frozen_blocks else []),
            "--epochs", str(epochs), "--patience", str(patience), "--batch-size", "8",
            "--lr", "1e-4" if pretrained else "1e-3", "--precision", precision, "--time-limit", str(int(minutes * 60)),
            "--validation-fraction", "0.2", "--seed", "0", "--device", device]


ARMS = {"baseline": ["--no-mask"], "attention-binary": ["--as-published"], "attention": []}
PAPER = {"baseline": 0.783, "attention": 0.922}


def run_name(name: str, fold: tuple[int, int] | None) -> str:
    return name if fold is None else f"{name}-fold{fold[0]}of{fold[1]}"


def run(name: str, export: Path | None, run_root: Path, settings: list[str], data: Path,
        fold: tuple[int, int] | None = None) -> dict:
    run_dir = run_root / run_name(name, fold)
    weights = export or run_dir / "model.safetensors"
    argv = ["train", "--network", "attention-mask", "--reference", "idrid", "--data", str(data),
            "--run-dir", str(run_dir), "--export", str(weights), *settings, *ARMS[name],
            *(["--fold", f"{fold[0]}/{fold[1]}"] if fold else [])]
    start = time.perf_counter()
    if octant(argv) != 0:
        raise SystemExit(f"training the {name} classifier failed")
    metrics = read_metadata(weights)["metrics"]
    history = json.loads((run_dir / "history.json").read_text())
    return {**metrics, "epochs_trained": len(history),
            "val_accuracy_by_epoch": [round(row.get("val_accuracy", float("nan")), 4) for row in history],
            "minutes_this_call": (time.perf_counter() - start) / 60, "command": "python main.py " + " ".join(argv)}


def validation_correct(weights: Path, data: Path, fold: tuple[int, int] | None = None,
                       device_choice: str = "cpu") -> dict[str, bool]:
    """Photo by photo (by key), whether the network in ``weights`` grades the validation photos
    right: the split ``train`` made (fraction 0.2 or ``fold``, seed 0, per grade), masks as the
    network was trained on (cached with the photos), fp32."""
    from torch.utils.data import DataLoader

    from models.diagnosis.attention_mask import (
        AttentionClassifier,
        AttentionConfig,
        AttentionTask,
        diagnosis_dataset,
        load_structure_models,
        predict_classes,
    )
    from models.engine.device import pick_device
    from models.engine.weights import load_weights
    from models.findings.data import idrid_grade_photos, split_derivation_validation

    values = read_metadata(weights).get("config", {})
    config = AttentionConfig(**{k: v for k, v in values.items() if k in AttentionConfig.__dataclass_fields__})
    model = AttentionClassifier(config)
    load_weights(model, weights)
    _, validation = split_derivation_validation(idrid_grade_photos(data), 0.2, 0, stratum=lambda photo: photo.label,
                                                fold=fold)
    device = pick_device(device_choice)
    structures = load_structure_models(device) if config.masked else None
    dataset = diagnosis_dataset(validation, config, structures, device)
    logits, labels = predict_classes(model.float().to(device), DataLoader(dataset, batch_size=8), device,
                                     AttentionTask(config, None, None).inputs)
    return {photo.key: bool(v) for photo, v in zip(validation, (logits.argmax(1) == labels).tolist())}


def compare(files: dict[str, list[tuple[Path, tuple[int, int] | None]]], data: Path, device: str = "cpu") -> dict:
    """Accuracy ± its binomial standard error per network, and McNemar's exact test for every pair
    on the same validation photos: is one better by more than the noise of 84 photos (one split) or
    212 (the K folds pooled, each network measured on the fold it did not train on)?"""
    from models.metrics.classification import accuracy_standard_error, paired_comparison

    correct: dict[str, list[bool]] = {}
    for name, parts in files.items():
        if not all(path.is_file() for path, _ in parts):
            continue
        by_photo: dict[str, bool] = {}
        for path, fold in parts:
            by_photo.update(validation_correct(path, data, fold, device))
        correct[name] = [by_photo[key] for key in sorted(by_photo)]
    figures = {name: {"accuracy": sum(c) / len(c), "standard_error": accuracy_standard_error(sum(c) / len(c), len(c)),
                      "photos": len(c)} for name, c in correct.items()}
    names = list(correct)
    pairs = {f"{a} vs {b}": paired_comparison(correct[a], correct[b])
             for i, a in enumerate(names) for b in names[i + 1:]}
    return {"networks": figures, "pairs": pairs,
            "files": {n: [str(path) for path, _ in files[n]] for n in names}}


def machine_description(device: str, precision: str = "auto") -> str:
    """The CPU (name, flags) or the GPU the figures were measured on, and the precision rule."""
    import torch

    from models.engine.precision import cpu_facts

    if device != "cpu" and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (CUDA, fp16 autocast), torch {torch.__version__}"
    facts = cpu_facts()
    return (f"{facts.model} (flags {' '.join(facts.flags or ())}), {torch.get_num_threads()} threads, "
            f"precision {precision}, torch {torch.__version__}")


def matrix_lines(matrix: list[list[int]]) -> list[str]:
    return [" ".join(f"{v:3d}" for v in row) for row in matrix]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--export-starter", action="store_true",
                        help="write the soft-mask arm's best weights to weights/dr_grade_attention.safetensors")
    parser.add_argument("--only", choices=tuple(ARMS), default=None)
    parser.add_argument("--encoder-weights", default="imagenet-lite0",
                        help="start of every arm: imagenet-lite0|lite1|lite2|FILE|none (default imagenet-lite0)")
    parser.add_argument("--epochs", type=int, default=30, help="epochs per arm (the paper's 30)")
    parser.add_argument("--minutes", type=float, default=55.0, help="training time cap per arm and call")
    parser.add_argument("--patience", type=int, default=5, help="early stopping (the paper's 5; 0 = all epochs)")
    parser.add_argument("--run-root", type=Path, default=None,
                        help="run folders (default: bench_attention_mask-<encoder weights> in the user's runs folder)")
    parser.add_argument("--data", help="folder of the public data sets (default $OCTANT_PUBLIC_DATA)")
    parser.add_argument("--folds", type=int, default=0, help="K: cross-validate over K folds (with --fold or --compare)")
    parser.add_argument("--fold", type=int, default=0, help="I: train the arms on fold I of --folds K")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    parser.add_argument("--backbone", default=None,
                        help="timm backbone for an encoder-weights FILE (e.g. tf_efficientnet_lite0)")
    parser.add_argument("--input-size", type=int, default=224, help="network input side (the paper's 224)")
    parser.add_argument("--frozen-blocks", type=int, default=0,
                        help="N: train with the encoder's stem and first N blocks frozen (CPU at 512 px: 4)")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                        help="training precision (auto: bf16 autocast where the CPU has it natively; on a "
                             "shared 2-core Xeon with AMX fp32 trained the frozen-trunk network faster)")
    parser.add_argument("--compare", action="store_true",
                        help="train nothing: measure each arm's exported weights and the shipped "
                             "weights/dr_grade_attention.safetensors again on the validation photos, with "
                             "each accuracy's noise and McNemar's test for every pair")
    args = parser.parse_args()
    if args.fold and not 1 <= args.fold <= args.folds:
        parser.error(f"--fold {args.fold} needs --folds K with 1 ≤ {args.fold} ≤ K")
    from models.engine.pretrained import available_encoder_weights

    encoder_weights = available_encoder_weights(args.encoder_weights)
    data = public_data_dir(args.data)
    settings = reduced_settings(args.minutes, args.patience, encoder_weights, args.epochs, args.device, args.backbone,
                                args.input_size, args.frozen_blocks, args.precision)
    # Another input size or frozen part is another network: its runs and figures are kept apart.
    variant = Path(encoder_weights).stem + (f"-{args.input_size}px" if args.input_size != 224 else "") + (
        f"-frozen{args.frozen_blocks}" if args.frozen_blocks else "")
    run_root = args.run_root or default_runs_dir() / f"bench_attention_mask-{variant}"
    folds = f"-folds{args.folds}" if args.folds else ""
    # One JSON per fold: the folds' runs go side by side and must not overwrite each other's figures.
    part = f"-fold{args.fold}" if args.fold else ""
    output = ROOT / "bench" / "results" / f"bench_attention_mask-{variant}{folds}{part}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    results: dict = json.loads(output.read_text()) if output.is_file() else {}
    if args.compare:
        if args.folds:
            files = {name: [(run_root / run_name(name, (i, args.folds)) / "model.safetensors", (i, args.folds))
                            for i in range(1, args.folds + 1)] for name in ARMS}
        else:
            files = {name: [(run_root / name / "model.safetensors", None)] for name in ARMS}
            files["shipped"] = [(ROOT / "weights" / "dr_grade_attention.safetensors", None)]
        found = compare(files, data, args.device)
        results = json.loads(output.read_text()) if output.is_file() else {}
        results["comparison"] = found
        output.write_text(json.dumps(results, indent=2, default=str))
        for name, r in found["networks"].items():
            print(f"{name}: accuracy {r['accuracy']:.3f} ± {r['standard_error']:.3f} ({r['photos']} photos)")
        for pair, r in found["pairs"].items():
            print(f"{pair}: {r['difference']:+.3f}, right by the first only {r['a_only']:.0f}, by the second only "
                  f"{r['b_only']:.0f}, McNemar exact p = {r['p_value']:.3f}")
        return
    for name in ARMS:
        if args.only and args.only != name:
            continue
        export = ROOT / "weights" / "dr_grade_attention.safetensors" if name == "attention" and args.export_starter else None
        fold = (args.fold, args.folds) if args.fold else None
        figures = run(name, export, run_root, settings, data, fold)
        # Re-read just before writing: a side-by-side run of another arm may have finished.
        results = json.loads(output.read_text()) if output.is_file() else {}
        results.update({"settings": settings, "machine": machine_description(args.device, args.precision),
                        "paper_odir": PAPER, name: figures})
        output.write_text(json.dumps(results, indent=2, default=str))
    fmt = lambda r, k: f"{r[k]:.3f}" if k in r else "–"  # noqa: E731
    arms = {name: results.get(name, {}) for name in ARMS}
    print("| | " + " | ".join(arms) + " |\n" + "|---" * (len(arms) + 1) + "|")
    print("| validation accuracy | " + " | ".join(fmt(r, "val_accuracy") for r in arms.values()) + " |")
    print("| epochs | " + " | ".join(str(r.get("epochs_trained", "–")) for r in arms.values()) + " |")
    print(f"| paper (ODIR, B6 pretrained, binary masks) | {PAPER['baseline']:.3f} | {PAPER['attention']:.3f} | – |")
    classes = next((r.get("val_classes") for r in arms.values() if r.get("val_classes")), [])
    for c in classes:
        print(f"| {c} | " + " | ".join(fmt(r.get("val_per_class_accuracy", {}), c) for r in arms.values()) + " |")
    for name, figures in arms.items():
        if figures.get("val_confusion_matrix"):
            print(f"\n{name} confusion (rows true, columns predicted):")
            print("\n".join(matrix_lines(figures["val_confusion_matrix"])))


if __name__ == "__main__":
    from main import one_line_errors  # no public data named: one line, not a traceback

    with one_line_errors(Path(__file__).name):
        main()
