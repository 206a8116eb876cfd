"""Commands of the pre-segmentation networks: ``train-seg`` and ``presegment``.

``python main.py train-seg --task vessels --time-limit 15 --export weights/vessels.safetensors``
trains one network with its paper's recipe on the public sets (``--data DIR`` or
``$OCTANT_PUBLIC_DATA``; their caches are built on first use in the user's cache folder), resumes an interrupted run from ``--run-dir``, and exports the best epoch
as fp16 safetensors with a model card beside it.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from models.segmentation.registry import NETWORKS, TRAINABLE, ensure_caches
from storage.errors import OctantError


def register(subparsers) -> None:
    from models.engine.precision import add_precision_argument
    from storage.options import positive_float, positive_int, whole_number

    train = subparsers.add_parser(
        "train-seg", help="train a pre-segmentation network on the public data sets",
        description="Train one of the pre-segmentation networks (landmarks, disc and cup, vessels, lesions) on the "
                    "public data sets found by --data or $OCTANT_PUBLIC_DATA, resumable from its run folder, and "
                    "export the best epoch as fp16 safetensors with its model card.")
    train.add_argument("--task", required=True, choices=tuple(TRAINABLE))
    train.add_argument("--architecture", help="; ".join(f"{name}: {' | '.join(spec.architectures)}"
                                                        for name, spec in TRAINABLE.items() if spec.architectures))
    train.add_argument("--encoder", help="encoder name (smp or tu-<timm name>); default: the task's starter encoder")
    train.add_argument("--decoder-channels", type=positive_int, help="lesions: channels after ASPP (paper 256)")
    train.add_argument("--channels", help="lesions: comma-separated types to predict, e.g. MA (default MA,HE,EX,SE)")
    train.add_argument("--preprocess", choices=("none", "local_contrast"),
                       help="lesions: input as is or with the local mean colour subtracted")
    from models.engine.pretrained import ENCODER_WEIGHTS_HELP

    train.add_argument("--encoder-weights", metavar="imagenet-lite0|lite1|lite2|FILE|none",
                       help="the encoder's starting weights, never downloaded: " + ENCODER_WEIGHTS_HELP
                            + "; imagenet-liteN picks the encoder tu-tf_efficientnet_liteN unless --encoder is given")
    train.add_argument("--epochs", type=positive_int)
    train.add_argument("--batch-size", type=positive_int)
    train.add_argument("--lr", type=positive_float)
    train.add_argument("--workers", type=whole_number, default=None,
                       help="data loader processes preparing crops beside training (default 0: in the training "
                            "process; a GPU waits on one core's crops, so give it a few)")
    train.add_argument("--steps-per-epoch", type=positive_int, help="training batches per epoch (crops are sampled at random)")
    train.add_argument("--time-limit", type=float, default=0.0, help="minutes; the run stops after the epoch that passes it")
    train.add_argument("--run-dir", help="checkpoints and history (default: runs/seg-<task>-<architecture> "
                            "in the user's data folder, e.g. ~/.local/share/octant)")
    train.add_argument("--fresh", action="store_true", help="start over instead of resuming from the run folder")
    train.add_argument("--start-from", metavar="FILE",
                       help="a new run starts from this .safetensors file (e.g. a shipped starter): tensors of "
                            "matching name and shape load, the rest (a head for other channels) start fresh")
    train.add_argument("--device", help="auto (default), cpu, cuda, mps")
    add_precision_argument(train)
    train.add_argument("--no-bf16", action="store_true", help=argparse.SUPPRESS)   # deprecated: --precision fp32
    train.add_argument("--export", help="write the best epoch to this .safetensors file (fp16) with a model card")
    train.add_argument("--int8", action="store_true",
                       help="export the convolution weights as int8 (half the size; ship only if the bench measures the same)")
    train.add_argument("--data", help="folder of the public data sets (default $OCTANT_PUBLIC_DATA)")
    train.set_defaults(func=run_train_seg, thread_role="batch")

    pre = subparsers.add_parser(
        "presegment", help="pre-segment fundus photos: disc, cup, vessels, lesions, regions",
        description="Run the pre-segmentation networks (field of view, disc and fovea, disc and cup, vessels, "
                    "lesions) on photos and suggest the regions each lesion type touches: as files with --out, "
                    "or as the project's predictions. Photos already done are skipped (--redo to recompute); "
                    "under torchrun the photos are shared between the processes.")
    pre.add_argument("inputs", nargs="*", metavar="IMAGE_OR_FOLDER",
                     help="image files or folders (with --project: default all its images)")
    pre.add_argument("--out", metavar="DIR", help="output folder: one sub-folder per image (needed without --project)")
    pre.add_argument("--project", metavar="DIR", help="store the results as predictions of this project instead of files "
                                                      "(without --out: default $OCTANT_PROJECT, else the current folder)")
    pre.add_argument("--database-url", metavar="URL", help="PostgreSQL URL of the project database (optional)")
    pre.add_argument("--probabilities", action="store_true", help="also write 8-bit probability maps")
    pre.add_argument("--weights-dir", metavar="DIR", help="folder with vessels/disc_cup/lesions/landmarks .safetensors (default: weights/)")
    pre.add_argument("--device", help="auto (default), cpu, cuda, mps")
    add_precision_argument(pre)
    pre.add_argument("--redo", action="store_true", help="recompute images that already have a result")
    pre.add_argument("--batch-size", type=positive_int, help="photos per network call (default 8 on a GPU, 1 on a CPU)")
    pre.add_argument("--quiet", action="store_true", help="no progress bar (skipped photos and the summary are still said)")
    pre.set_defaults(func=run_presegment, thread_role="batch")


# ---------------------------------------------------------------- train-seg
def build_task(args):
    from models.engine.precision import apply_precision_argument
    from models.engine.pretrained import NO_PRETRAINING, is_packaged, timm_architecture
    from models.segmentation.common import LIGHT_ENCODER

    spec = TRAINABLE[args.task]
    net_options = {}
    if args.architecture:
        if not spec.architectures:
            raise OctantError(f"The task {args.task} has one architecture; leave out --architecture.")
        net_options["architecture"] = args.architecture
    encoder_weights = encoder_weights_choice(args)
    default_encoder = (f"tu-{timm_architecture(encoder_weights)}" if is_packaged(encoder_weights)
                       else LIGHT_ENCODER)
    net_options["encoder"] = args.encoder or (default_encoder if args.architecture != "attention_unetpp" else "resnet34")
    lesions_only = [option for option, value in (("--decoder-channels", args.decoder_channels),
                                                 ("--channels", args.channels), ("--preprocess", args.preprocess))
                    if value and not spec.lesion_options]
    if lesions_only:
        raise OctantError(f"{lesions_only[0]} applies to the lesions task only; leave it out.")
    if args.decoder_channels:
        net_options["decoder_channels"] = args.decoder_channels
    if args.channels:
        from models.segmentation.lesions import LESION_CHANNELS

        net_options["channels"] = tuple(c.strip().upper() for c in args.channels.split(",") if c.strip())
        if not net_options["channels"] or set(net_options["channels"]) - set(LESION_CHANNELS):
            raise OctantError(f"--channels takes lesion types among {', '.join(LESION_CHANNELS)}, "
                              f"not {args.channels!r}.")
        net_options["thresholds"] = (0.5,) * len(net_options["channels"])
    if args.preprocess:
        net_options["preprocess"] = args.preprocess
    if encoder_weights != NO_PRETRAINING:
        if args.architecture == "attention_unetpp":
            raise OctantError("The Attention U-Net++ builds its own ResNet encoder and takes no --encoder-weights; "
                              "leave the option out.")
        net_options["encoder_weights_path"] = encoder_weights
    try:
        net = spec.config_class(**net_options)
    except TypeError as error:
        raise OctantError(f"Bad option for {args.task}: {error}; see train-seg --help.") from error
    task = spec.training_task(net=net)
    overrides = {k: v for k, v in (("epochs", args.epochs), ("batch_size", args.batch_size), ("lr", args.lr),
                                   ("device", args.device), ("num_workers", getattr(args, "workers", None)))
                 if v is not None}
    overrides["time_limit_s"] = args.time_limit * 60
    if args.start_from:
        if not Path(args.start_from).is_file():
            raise OctantError(f"--start-from {args.start_from}: no such weights file; give a .safetensors file.")
        overrides["init_weights"] = str(Path(args.start_from).resolve())
    overrides["precision"] = apply_precision_argument(args, "fp32" if getattr(args, "no_bf16", False) else None,
                                                      args.device)
    config = task.recipe(**overrides)
    if args.steps_per_epoch:
        setattr(task, spec.samples_field, args.steps_per_epoch * config.batch_size)
    return task, config


def encoder_weights_choice(args) -> str:
    """``--encoder-weights`` checked (WeightsError in one sentence), ``none`` when absent, and
    ``none`` with a one-sentence note when the packaged weights are not installed."""
    from models.engine.pretrained import available_encoder_weights

    return available_encoder_weights(getattr(args, "encoder_weights", None))


def run_train_seg(args) -> int:
    from models.commands.progress import TrainingProgress
    from models.commands.training import command_line
    from models.engine.training import load_best, train

    task, config = build_task(args)   # bad options are refused before any data is looked for
    ensure_caches(args.task, args.data)
    architecture = getattr(task.net, "architecture", args.task)
    if args.run_dir:
        run_dir = Path(args.run_dir)
    else:
        from storage.locations import default_runs_dir

        run_dir = default_runs_dir() / f"seg-{args.task}-{architecture}"
    started = time.time()
    progress = TrainingProgress()
    try:
        result = train(task, config, run_dir, progress=progress, resume=not args.fresh)
    finally:
        progress.close()
    print(f"trained {len(result.history)} epochs in {(time.time() - started) / 60:.1f} min; best {result.best_metrics}",
          flush=True)
    if args.export:
        model = task.build_model()
        metrics = load_best(model, run_dir)
        export_starter(model, Path(args.export), task, config, metrics, result.history, int8=args.int8,
                       command=command_line(args))
    return 0


def export_starter(model, path: Path, task, config, metrics: dict, history: list[dict], int8: bool = False,
                   command: str | None = None) -> None:
    """fp16 (or int8-weight) safetensors with the metadata the pipeline needs, and a model card beside it."""
    from models.engine.model_card import write_model_card
    from models.engine.weights import save_weights
    from models.segmentation.common import count_parameters

    now = datetime.now(timezone.utc)
    architecture = getattr(task.net, "architecture", task.task_config()["task"])
    metadata = {
        "name": path.stem, "task": task.task_config()["task"], "architecture": architecture,
        "config": task.net.to_dict(), "version": f"{path.stem}-{architecture}-{now:%Y%m%d%H%M}",
        "metrics": metrics, "date": now.isoformat(timespec="seconds"),
        "command": command or "python main.py " + shlex.join(sys.argv[1:]), "engine": config.to_dict(),
        "epochs_trained": len(history), "parameters": count_parameters(model),
    }
    if int8:
        metadata["storage"] = "int8 per-channel weights, fp16 others"
    save_weights(model.eval(), path, metadata, int8=int8)
    write_model_card(path, command=metadata["command"], data=NETWORKS[metadata["task"]].training_data)
    print(f"exported {path} ({path.stat().st_size / 2**20:.1f} MB) and its model card", flush=True)


# ---------------------------------------------------------------- presegment
def run_presegment(args) -> int:
    from models.segmentation.presegment import presegment_command

    return presegment_command(args)
