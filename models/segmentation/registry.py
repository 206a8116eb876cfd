"""One spec per pre-segmentation network: everything the pipeline, ``train-seg``, the model cards
and the benches need to know about it. Adding a network means adding one ``NetworkSpec`` here
(and its module), nothing else.

The specs name their config class, builder, training task and cache builders as
``"module:attribute"`` strings, resolved on first use: reading the registry (``train-seg --help``,
the task choices) must not import torch.
"""
from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def _resolve(reference: str) -> Any:
    module, attribute = reference.split(":")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class Cache:
    """A compact cache of a public set (``models/segmentation/cache.py``): its file under the
    public-sets cache folder and the builder that writes it from the public data folder."""
    file: str
    builder: str   # "module:function" taking the public data folder

    def build(self, data: Path) -> None:
        _resolve(self.builder)(data)


DRIVE = Cache("drive.npz", "models.segmentation.cache:build_drive_cache")
DRISHTI = Cache("drishti/names.txt", "models.segmentation.cache:build_drishti_cache")
IDRID_LANDMARKS = Cache("idrid_landmarks.npz", "models.segmentation.cache:build_idrid_landmarks_cache")
IDRID_LESIONS = Cache("idrid_lesions/names.txt", "models.segmentation.cache:build_idrid_lesion_cache")
# the overlap table keeps the IDRiD landmark and lesion splits apart: both sets' tasks need all three
IDRID_OVERLAP = Cache("idrid_overlap.csv", "models.segmentation.registry:_build_idrid_overlap")
IDRID = (IDRID_LANDMARKS, IDRID_LESIONS, IDRID_OVERLAP)


def _build_idrid_overlap(_data: Path) -> None:
    from models.segmentation.cache import find_idrid_overlap

    find_idrid_overlap()   # reads the two IDRiD caches, not the public folder


@dataclass(frozen=True)
class NetworkSpec:
    name: str                      # weights file <name>.safetensors; key of the pipeline's results
    config: str                    # "module:Class" of its config dataclass (``NetConfig``)
    builder: str                   # "module:function" building the network from that config
    task: str                      # the train-seg task that trains it
    task_class: str                # "module:Class" of that task (recipe, datasets, loss, validate)
    working_resolution: str        # what the network sees, in words (bench reports, docs)
    fallback: str                  # what the pipeline does without it
    caches: tuple[Cache, ...]      # public-set caches its training and bench read
    training_data: str             # the model card's data line
    pipeline_input: tuple[int, int, int, int]   # the batch the pipeline feeds it for one IDRiD photo (benches)
    train_options: str = ""        # train-seg options beyond --task that make this network
    optional: bool = False         # absent weights are not worth a message
    former_file_names: tuple[str, ...] = ()   # earlier names of its weights file, still read
    architectures: tuple[str, ...] = ()       # --architecture choices (empty: one architecture)
    lesion_options: bool = False   # --channels, --decoder-channels and --preprocess apply
    samples_field: str = "samples_per_epoch"  # the task's field --steps-per-epoch sets

    @property
    def config_class(self) -> Any:
        return _resolve(self.config)

    @property
    def build(self) -> Callable:
        return _resolve(self.builder)

    @property
    def training_task(self) -> Any:
        return _resolve(self.task_class)

    @property
    def train_command(self) -> str:
        return f"python main.py train-seg --task {self.task}" + (f" {self.train_options}" if self.train_options else "")

    def weights_file(self, folder: Path) -> Path | None:
        """``<folder>/<name>.safetensors``, else the file under a former name; None if neither."""
        for stem in (self.name, *self.former_file_names):
            path = folder / f"{stem}.safetensors"
            if path.is_file():
                return path
        return None


# the pipeline runs them in this order
NETWORKS: dict[str, NetworkSpec] = {spec.name: spec for spec in (
    NetworkSpec(
        "landmarks", "models.segmentation.landmarks:LocatorConfig", "models.segmentation.landmarks:build_locator",
        task="landmarks", task_class="models.segmentation.tasks:LandmarkTask",
        working_resolution="photo letterboxed into 512 × 384",
        fallback="disc and fovea come from the classical method", caches=IDRID,
        training_data="IDRiD-landmarks (413 photos, 1/3 scale, letterboxed 512 × 384); validation: every 4th "
                      "`confident` photo not in the lesion training set under another name; lesion-validation "
                      "photos excluded from training.",
        pipeline_input=(1, 3, 384, 512)),
    NetworkSpec(
        "disc_cup", "models.segmentation.disc_cup:DiscCupConfig", "models.segmentation.disc_cup:build_disc_cup_net",
        task="disc_cup", task_class="models.segmentation.tasks:DiscCupTask",
        working_resolution="256 × 256 crop of 3 disc diameters around the disc (two passes)",
        fallback="the optic disc and cup are not segmented", caches=(DRISHTI,),
        training_data="Drishti-GS1 training split (50 photos, 4-expert soft maps); every 5th photo by name "
                      "validates.",
        pipeline_input=(1, 3, 256, 256)),
    NetworkSpec(
        "vessels", "models.segmentation.vessels:VesselNetConfig", "models.segmentation.vessels:build_vessel_net",
        task="vessels", task_class="models.segmentation.tasks:VesselTask",
        working_resolution="FOV rescaled to 540 px across (DRIVE's scale), 352-px tiles",
        fallback="vessels are not segmented", caches=(DRIVE,),
        training_data="DRIVE training images 21–37 (38–40 validate); tested by bench/bench_segmentation.py on "
                      "DRIVE test 01–20.",
        pipeline_input=(4, 1, 352, 352),
        architectures=("unet", "attention_unetpp"), samples_field="patches_per_epoch"),
    NetworkSpec(
        "lesions", "models.segmentation.lesions:LesionNetConfig", "models.segmentation.lesions:build_lesion_net",
        task="lesions", task_class="models.segmentation.tasks:LesionTask",
        working_resolution="FOV rescaled to 1150 px across (1/3 of IDRiD's 4288 × 2848)",
        # Lesions read their own cache only (the overlap list serves the landmark split).
        fallback="lesions are not segmented and no regions are suggested", caches=(IDRID_LESIONS,),
        training_data="IDRiD-segmentation 01–44 at 1/3 scale (45–54 validate).",
        pipeline_input=(1, 3, 960, 1152),
        architectures=("attention_deeplab", "deeplab", "unet"), lesion_options=True),
    # A detail network for the small lesions (its channels, e.g. MA and EX, replace the lesion
    # network's); without it the lesion network's channels serve. Before 2026-11-26's fifth
    # session its file held MA only, under the name "microaneurysms".
    NetworkSpec(
        "lesion_detail", "models.segmentation.lesions:LesionNetConfig",
        "models.segmentation.lesions:build_lesion_net",
        task="lesions", task_class="models.segmentation.tasks:LesionTask",
        working_resolution="FOV rescaled to 1150 px across, full-resolution output",
        fallback="all lesion types come from the lesion network", caches=(IDRID_LESIONS,),
        training_data="IDRiD-segmentation 01–44 at 1/3 scale (45–54 validate).",
        pipeline_input=(1, 3, 960, 1152),
        train_options="--architecture unet --channels MA,EX", optional=True,
        former_file_names=("microaneurysms",)),
)}

# the specs whose name is a train-seg task (the network that task makes by default)
TRAINABLE = {name: spec for name, spec in NETWORKS.items() if spec.task == name}


def network(name: str) -> NetworkSpec:
    return NETWORKS[name]


def ensure_caches(task: str, data: str | Path | None) -> None:
    """Build the public-set caches network (or task) ``task`` reads that are not there yet."""
    from models.segmentation.cache import public_sets_cache_dir

    local = public_sets_cache_dir()
    missing = [cache for cache in NETWORKS[task].caches if not (local / cache.file).exists()]
    if missing:
        from storage.locations import public_data_dir

        source = public_data_dir(data)   # one sentence saying how to point to it when missing
        for cache in missing:
            print(f"building the cache {Path(cache.file).name} from {source} ...", file=sys.stderr, flush=True)
            try:
                cache.build(source)
            except OSError as error:   # a folder without the sets: "cannot read …/21_training.tif" traceback
                from storage.errors import NotFoundError

                lacking = f"no {error.filename}" if error.filename else str(error)
                raise NotFoundError(f"{source} does not hold the public data sets as published ({lacking}); "
                                    "pass --data DIR or set OCTANT_PUBLIC_DATA=DIR to the folder holding DRIVE, "
                                    "IDRiD-landmarks, IDRiD-segmentation and Drishti-GS1.") from None
