"""``python main.py train``: train a guided (finding) or attention-mask (diagnosis) network.

The same records as the workstation's training panel: a run folder with config, checkpoints and
history (``models/engine/training.py``), fp16 safetensors of the best epoch with a metadata header (a new
``<name>-<UTC stamp>.safetensors`` in the run folder per run, so an earlier, perhaps active, model
is never overwritten; ``--export`` names the file instead), and, for a project, the model registered
in its database with metrics, config and the label snapshot. The orchestration itself is
``models/findings/training.py``, shared with the training panel; this module parses arguments.

Labels come from the project's consensus (``--project``; derivation/validation 90/10 of the train
split, the test split measured at the end) or, marked as such, from public IDRiD reference labels
(``--reference idrid``; no test split, validation only).
"""
from __future__ import annotations

import argparse
import shlex
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from storage.errors import OctantError

if TYPE_CHECKING:  # torch and the networks load only when a training starts (fast --help and GUI start)
    from models.findings.training import TrainingOutcome
    from storage.project import ProjectHandle


def register(subparsers) -> None:
    from storage.commands import add_project_argument
    from storage.options import (
        command_description,
        network_input_size,
        positive_float,
        positive_int,
        validation_fold,
        whole_number,
    )

    parser = subparsers.add_parser("train", help="train a guided finding network or the attention-mask classifier",
                                   description=command_description(__doc__))
    parser.add_argument("--network", required=True, choices=("guided", "attention-mask"))
    parser.add_argument("--finding", help="finding code for --network guided (e.g. haemorrhage)")
    parser.add_argument("--reference", choices=("idrid",), default=None,
                        help="train on public IDRiD reference labels instead of the project's consensus")
    parser.add_argument("--data", type=Path, default=None, metavar="DIR",
                        help="with --reference: folder of the public data sets (default $OCTANT_PUBLIC_DATA)")
    add_project_argument(parser)
    parser.add_argument("--input-size", type=network_input_size, default=None, help="network input side in pixels")
    parser.add_argument("--width", type=positive_int, default=8, help="guided: base channels")
    parser.add_argument("--guidance-weight", type=float, default=1.0, help="guided: λ of eq. 3 (0 = unguided)")
    parser.add_argument("--cue", choices=("regions", "lesions"), default="regions",
                        help="guided with --reference: cue by the regions (default, as readers label) or by "
                             "the lesions' own map cells where the public data has masks or boxes")
    parser.add_argument("--complete-cues-only", action="store_true",
                        help="guided: train on no positive whose cue may miss lesions (public boxes)")
    parser.add_argument("--as-published", action="store_true",
                        help="the paper's network as written, from scratch unless --start-from/--encoder-weights say "
                             "otherwise: guided without our four additions (field-of-view mask, existence floor and "
                             "intercept, saturation hinge; models/findings/guided.py) and with the binary cue M; "
                             "attention-mask with binary structure masks")
    parser.add_argument("--backbone", default=None,
                        help="attention-mask: timm EfficientNet name (default efficientnet_b0, or "
                             "tf_efficientnet_liteN with --encoder-weights imagenet-liteN; a run fine-tuning a "
                             "weights file builds that file's network: its backbone, input size and mask kind)")
    from models.engine.pretrained import ENCODER_WEIGHTS_HELP

    parser.add_argument("--encoder-weights", default=None, metavar="imagenet-lite0|lite1|lite2|FILE|none",
                        help="attention-mask: the backbone's starting weights for a run that starts from scratch, "
                             "never downloaded: " + ENCODER_WEIGHTS_HELP)
    parser.add_argument("--no-mask", action="store_true", help="attention-mask: the unmasked baseline")
    parser.add_argument("--frozen-blocks", type=whole_number, default=0, metavar="N",
                        help="attention-mask: keep the pretrained encoder's stem and first N blocks as they start "
                             "(no training, BatchNorm statistics kept), about 4x faster per step on a CPU at "
                             "512 px with N = 4; the exported network is whole (default 0: train every layer)")
    parser.add_argument("--epochs", type=positive_int)
    parser.add_argument("--batch-size", type=positive_int)
    parser.add_argument("--lr", type=positive_float)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="auto (default), cpu, cuda or mps")
    from models.engine.precision import add_precision_argument

    add_precision_argument(parser)
    parser.add_argument("--bf16", action="store_true", help=argparse.SUPPRESS)   # deprecated: --precision bf16
    parser.add_argument("--validation-fraction", type=float, default=0.1)
    parser.add_argument("--fold", type=validation_fold, default=None, metavar="I/K",
                        help="validate on the I-th of K folds of the validation-eligible photos instead of "
                             "--validation-fraction (K runs, I = 1..K, validate every eligible photo once)")
    parser.add_argument("--max-batches", type=int, default=0, help="batches per epoch (0 = all)")
    parser.add_argument("--time-limit", type=float, default=0.0, help="seconds of training (0 = none)")
    parser.add_argument("--patience", type=int, default=None,
                        help="epochs without a better validation loss before stopping (0 = never stop early)")
    parser.add_argument("--workers", type=whole_number, default=0, help="data loader processes")
    parser.add_argument("--run-dir", type=Path, default=None, help="checkpoints (default: under the project)")
    parser.add_argument("--export", type=Path, default=None,
                        help="write the best weights to this file (.safetensors), not a new one in the run folder")
    parser.add_argument("--name", default=None, help="model name in the registry")
    parser.add_argument("--no-resume", action="store_true", help="start over even if the run folder has a checkpoint")
    parser.add_argument("--start-from", default=None, metavar="starter|scratch|FILE",
                        help="what a new run starts from: the shipped starter (default on a project's labels), "
                             "random weights (default with --reference), or a .safetensors file")
    parser.set_defaults(func=run_train, thread_role="batch")


def initial_weights(args: argparse.Namespace) -> str:
    """``TrainConfig.init_weights`` from ``--start-from``: clinics fine-tune the shipped starter by
    default, the baselines (λ = 0, ``--no-mask``) the same starter as the network they are compared
    with; starters themselves (``--reference``), ``--as-published`` and a network on
    ``--encoder-weights`` start from scratch (the encoder from those weights)."""
    from models.engine.weights import starter_for

    pretrained = getattr(args, "encoder_weights", None) not in (None, "none")
    # Asking for encoder weights is asking for a new network on them, not the starter's; the papers'
    # networks as published start as the papers did (the starters were trained with our additions).
    fresh = args.reference or pretrained or getattr(args, "as_published", False)
    choice = getattr(args, "start_from", None) or ("scratch" if fresh else "starter")
    if choice == "scratch":
        return ""
    if choice != "starter":
        if not Path(choice).is_file():
            raise OctantError(f"--start-from {choice}: no such weights file; give a .safetensors file, "
                              "'starter' or 'scratch'.")
        return str(choice)
    # The unmasked baseline starts where the masked network it is compared with starts (the λ = 0
    # guided run likewise shares its guided starter): a comparison from two starts measures the starts.
    starter = starter_for(args.network, args.finding)
    if starter is None:
        print(f"No starter ships for this network ({args.finding or args.network}); it starts from scratch.",
              file=sys.stderr)
        return ""
    return str(starter)


def engine_overrides(args: argparse.Namespace) -> dict:
    from models.engine.precision import apply_precision_argument

    precision = apply_precision_argument(args, "bf16" if getattr(args, "bf16", False) else None, args.device)
    changes = {"seed": args.seed, "device": args.device, "precision": precision,
               "max_batches_per_epoch": args.max_batches, "time_limit_s": args.time_limit,
               "num_workers": args.workers, "init_weights": initial_weights(args)}
    for name, key in (("epochs", "epochs"), ("batch_size", "batch_size"), ("lr", "lr"),
                      ("patience", "early_stopping_patience")):
        if getattr(args, name) is not None:
            changes[key] = getattr(args, name)
    return changes


def run_train(args: argparse.Namespace) -> int:
    if args.reference is None and args.project is None:
        from storage.commands import default_project_folder

        args.project = default_project_folder()
    from models.commands.progress import TrainingProgress

    progress = TrainingProgress()
    try:
        outcome = train_from_args(args, progress=progress)
    finally:
        progress.close()
    for sentence in outcome.skipped:   # project photos changed since import: left out, the rest trained
        print(f"octant: {sentence}", file=sys.stderr)
    shown = ", ".join(f"{k} {v:.4f}" for k, v in outcome.metrics.items()
                      if isinstance(v, float) and k.endswith(("loss", "auroc", "accuracy", "air_tp", "air_fn")))
    print(f"Best epoch: {shown}")
    if outcome.weights_path:
        card = write_card(outcome.weights_path, args, outcome.counts)
        print(f"Weights: {outcome.weights_path} (model card {card.name})")
    if outcome.model_id is not None:
        print(f"Registered as model {outcome.model_id}.")
    return 0


def write_card(weights_path: Path, args: argparse.Namespace, counts: dict | None) -> Path:
    """The model card beside the weights ``train`` wrote (the same writer as ``train-seg``'s)."""
    from models.engine.model_card import write_model_card

    source = ("public IDRiD reference labels (--reference idrid)" if args.reference
              else f"the consensus labels of the project {Path(args.project).resolve()}")
    shown = ", ".join(f"{part} {count}" for part, count in (counts or {}).items())
    return write_model_card(weights_path, command=command_line(args),
                            data=source + (f"; photos: {shown}" if shown else ""))


def command_line(args: argparse.Namespace) -> str:
    """The command as typed (``main`` records it; a direct call falls back to this process's)."""
    return getattr(args, "command_line", None) or "python main.py " + shlex.join(sys.argv[1:])


def default_run_dir(args: argparse.Namespace, name: str) -> Path:
    if args.run_dir is not None:
        return args.run_dir
    if args.project is not None:
        return Path(args.project) / "models" / name
    from storage.locations import default_runs_dir

    return default_runs_dir() / name


def _size_class(finding: str, project: ProjectHandle | None) -> str:
    if project is not None:
        return project.settings().finding(finding).size_class
    from storage.catalogue import DEFAULT_FINDINGS

    for spec in DEFAULT_FINDINGS:
        if spec.code == finding:
            return spec.size_class
    raise OctantError(f"There is no finding called {finding!r} in the default catalogue; check its code.")


def train_from_args(args: argparse.Namespace, progress=None,
                    cancel: threading.Event | None = None) -> TrainingOutcome:
    """The settings on the command line → ``models.findings.training.train_guided`` / ``train_attention``."""
    from models.findings import training as finding_training

    if args.network == "guided" and not args.finding:
        raise OctantError("Name the finding to train with --finding, e.g. --finding haemorrhage.")
    if args.network == "guided" and getattr(args, "frozen_blocks", 0):
        raise OctantError("--frozen-blocks is for the attention-mask network's pretrained encoder; the guided "
                          "network trains every layer, so leave it out.")
    if args.network == "guided" and getattr(args, "encoder_weights", None) not in (None, "none"):
        raise OctantError("The guided network has no pretrained encoder (the paper trains it from scratch); "
                          "leave out --encoder-weights.")
    project = None if args.reference else _open_project(args)
    try:
        if args.network == "guided":
            config, engine, name = guided_settings(args, project)
        else:
            config, engine, name = attention_settings(args)
        common = dict(reference=args.reference, validation_fraction=args.validation_fraction,
                      resume=not args.no_resume, export=args.export, progress=progress, cancel=cancel,
                      data_root=getattr(args, "data", None), fold=getattr(args, "fold", None))
        if args.network == "guided":
            return finding_training.train_guided(project, config, engine, default_run_dir(args, name), name,
                                                 cue_source=getattr(args, "cue", "regions"),
                                                 complete_cues_only=getattr(args, "complete_cues_only", False),
                                                 **common)
        return finding_training.train_attention(project, config, engine, default_run_dir(args, name), name, **common)
    finally:
        if project is not None:
            project.close()


def guided_settings(args: argparse.Namespace, project: ProjectHandle | None) -> tuple:
    """``train --network guided``: the network's config, the engine's and the run's name."""
    from models.findings.guided import PAPER_INPUT_SIZE, GuidedConfig, guided_train_config

    config = GuidedConfig(finding=args.finding, size_class=_size_class(args.finding, project),
                          input_size=args.input_size or PAPER_INPUT_SIZE, width=args.width,
                          guidance_weight=args.guidance_weight)
    if getattr(args, "as_published", False):
        config = config.as_published()
    name = args.name or f"guided_{args.finding}" + ("" if args.guidance_weight else "_unguided")
    return config, guided_train_config(**engine_overrides(args)), name


def attention_settings(args: argparse.Namespace) -> tuple:
    """``train --network attention-mask``: the network's config (its encoder chosen by the encoder
    weights), the engine's and the run's name."""
    from models.diagnosis.attention_mask import AttentionConfig, attention_train_config
    from models.engine.pretrained import available_encoder_weights, is_packaged, timm_architecture

    encoder_weights = available_encoder_weights(getattr(args, "encoder_weights", None))
    backbone = args.backbone or (timm_architecture(encoder_weights) if is_packaged(encoder_weights)
                                 else "efficientnet_b0")
    config = AttentionConfig(backbone=backbone, masked=not args.no_mask, encoder_weights=encoder_weights,
                             soft_mask=not getattr(args, "as_published", False))
    config.input_size = args.input_size or config.input_size
    config.frozen_blocks = getattr(args, "frozen_blocks", 0)
    engine = attention_train_config(**engine_overrides(args))
    if config.frozen_blocks and encoder_weights == "none" and not engine.init_weights:
        raise OctantError(f"--frozen-blocks {config.frozen_blocks} would keep randomly initialised layers "
                          "untrained; start from pretrained weights (--encoder-weights imagenet-lite0 or "
                          "--start-from FILE) or leave it out.")
    name = args.name or ("dr_grade_attention" if config.masked else "dr_grade_baseline")
    return config, engine, name


def _open_project(args: argparse.Namespace) -> ProjectHandle:
    from storage.commands import open_project_from_args

    return open_project_from_args(args)
