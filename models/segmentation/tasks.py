"""Training tasks of the pre-segmentation networks for the one engine (``models/engine/training.py``),
each with its paper's recipe as a ``TrainConfig`` factory.

| task | network | loss | recipe |
|---|---|---|---|
| vessels | U-Net (or Attention U-Net++) on 128² green+CLAHE patches | BCE + Dice (Andrikevych §2) | Adam 1e-3, LR halved after 10 stale epochs, early stop 30 |
| disc_cup | U-Net, 2 sigmoid channels, 256² disc crops | BCE + Dice (Himbitskaya III-A: BCE, Dice suggested) | Adam 1e-3, ≤ 30 epochs, early stop |
| lesions | Attention-DeepLab / DeepLabV3+, 384² crops at 1/3 scale | Dice + 0.5 BCE + focal + 0.5 boundary (Jithesh III-D) | Adam 1e-4, ReduceLROnPlateau, batch 4, early stop 15 |
| landmarks | U-Net heatmaps on the 512 × 384 canvas | spatial-softmax cross-entropy | Adam 1e-3, cosine |
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import partial

import numpy as np
import torch
from torch import nn

from models.engine.losses import BCEDiceLoss, LesionLoss, LesionLossConfig, SpatialSoftmaxLoss
from models.engine.training import TrainConfig
from models.metrics.segmentation import PrecisionRecallCurve, dice
from models.segmentation.data import (
    DRIVE_VALIDATION,
    DiscCupCrops,
    LandmarkCanvases,
    LesionCrops,
    LesionPhotos,
    VesselPatches,
    WholeImages,
    drishti_split,
    landmark_split,
    lesion_arrays,
    lesion_split,
    load_drive,
)
from models.segmentation.disc_cup import DiscCupConfig, build_disc_cup_net
from models.segmentation.landmarks import LocatorConfig, build_locator, decode_heatmaps
from models.segmentation.lesions import LESION_CHANNELS, LesionNetConfig, build_lesion_net, prepare_input
from models.segmentation.tiling import predict_padded
from models.segmentation.vessels import VesselNetConfig, build_vessel_net


def _padded_logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Whole-image logits for a batch of equal-size images (padded to the stride of 32)."""
    return torch.stack([predict_padded(model, image) for image in x])


def _parts(values: dict[str, torch.Tensor]) -> dict[str, float]:
    return {k: float(v.detach()) for k, v in values.items()}


@dataclass
class VesselTask:
    net: VesselNetConfig = field(default_factory=VesselNetConfig)
    patch: int = 128
    patches_per_epoch: int = 800

    def build_model(self) -> nn.Module:
        return build_vessel_net(self.net)

    def datasets(self):
        train_numbers = [n for n in range(21, 41) if n not in DRIVE_VALIDATION]
        inputs, vessels, _, _ = load_drive("training", train_numbers)
        val_inputs, val_vessels, val_fov, _ = load_drive("training", DRIVE_VALIDATION)
        return (VesselPatches(inputs, vessels, self.patch, self.patches_per_epoch),
                WholeImages(val_inputs, val_vessels, val_fov))

    def loss(self, model, batch, device):
        x, target = (t.to(device) for t in batch)
        return BCEDiceLoss().to(device)(model(x), target), {}

    def validate(self, model, loader, device):
        losses, dices = [], []
        for x, target, fov in loader:
            logits = _padded_logits(model, x.to(device)).float().cpu()
            losses.append(float(BCEDiceLoss()(logits, target)))
            prob = torch.sigmoid(logits)[:, 0].numpy()
            for p, t, m in zip(prob, target[:, 0].numpy(), fov.numpy()):
                dices.append(dice(p >= self.net.threshold, t > 0.5, m))
        return {"val_loss": float(np.mean(losses)), "val_dice": float(np.mean(dices))}

    def task_config(self) -> dict:
        return {"task": "vessels", **asdict(self)}

    @staticmethod
    def recipe(**overrides) -> TrainConfig:
        return TrainConfig(**{**dict(epochs=300, batch_size=16, lr=1e-3, optimizer="adam", scheduler="plateau",
                                     gamma=0.5, plateau_patience=10, early_stopping_patience=30,
                                     monitor="val_dice", monitor_mode="max"), **overrides})


@dataclass
class DiscCupTask:
    net: DiscCupConfig = field(default_factory=DiscCupConfig)
    samples_per_epoch: int = 400

    def build_model(self) -> nn.Module:
        return build_disc_cup_net(self.net)

    def datasets(self):
        train, val = drishti_split()
        return (DiscCupCrops(train, True, self.net.crop_size, self.net.crop_disc_diameters, self.samples_per_epoch),
                DiscCupCrops(val, False, self.net.crop_size, self.net.crop_disc_diameters))

    def loss(self, model, batch, device):
        x, target = (t.to(device) for t in batch)
        return BCEDiceLoss().to(device)(model(x), target), {}

    def validate(self, model, loader, device):
        losses, disc, cup = [], [], []
        for x, target in loader:
            logits = model(x.to(device)).float().cpu()
            losses.append(float(BCEDiceLoss()(logits, target)))
            prob = torch.sigmoid(logits).numpy()
            for p, t in zip(prob, target.numpy()):
                disc.append(dice(p[0] >= self.net.threshold, t[0] >= 0.5))
                cup.append(dice(p[1] >= self.net.threshold, t[1] >= 0.5))
        return {"val_loss": float(np.mean(losses)), "val_dice_disc": float(np.mean(disc)),
                "val_dice_cup": float(np.mean(cup)), "val_dice_mean": float(np.mean(disc) / 2 + np.mean(cup) / 2)}

    def task_config(self) -> dict:
        return {"task": "disc_cup", **asdict(self)}

    @staticmethod
    def recipe(**overrides) -> TrainConfig:
        return TrainConfig(**{**dict(epochs=30, batch_size=8, lr=1e-3, optimizer="adam", scheduler="plateau",
                                     gamma=0.5, plateau_patience=3, early_stopping_patience=8,
                                     monitor="val_dice_mean", monitor_mode="max"), **overrides})


@dataclass
class LesionTask:
    net: LesionNetConfig = field(default_factory=LesionNetConfig)
    loss_weights: LesionLossConfig = field(default_factory=LesionLossConfig)
    crop: int = 384
    samples_per_epoch: int = 400
    lesion_centred: float = 0.5

    def build_model(self) -> nn.Module:
        return build_lesion_net(self.net)

    def datasets(self):
        _, _, names = lesion_arrays()
        train, val = lesion_split(names)
        prepare = partial(prepare_input, config=self.net)
        channels = tuple(LESION_CHANNELS.index(c) for c in self.net.channels)
        return (LesionCrops(train, self.crop, self.samples_per_epoch, self.lesion_centred, prepare, channels),
                LesionPhotos(val, prepare, channels))

    def loss(self, model, batch, device):
        x, target = (t.to(device) for t in batch)
        criterion = LesionLoss(self.loss_weights).to(device)
        logits = model(x)
        terms = criterion.terms(logits, target)
        total = sum(getattr(self.loss_weights, name) * value for name, value in terms.items())
        return total, _parts(terms)

    def validate(self, model, loader, device):
        curves = [PrecisionRecallCurve() for _ in self.net.channels]
        criterion, losses = LesionLoss(self.loss_weights), []
        for x, target, _ in loader:
            logits = _padded_logits(model, x.to(device)).float().cpu()
            losses.append(float(criterion(logits, target)))
            prob = torch.sigmoid(logits).numpy()
            for c, curve in enumerate(curves):
                curve.add(prob[:, c], target[:, c].numpy())
        metrics = {"val_loss": float(np.mean(losses))}
        for name, curve in zip(self.net.channels, curves):
            metrics[f"val_aupr_{name}"] = curve.average_precision()
            metrics[f"val_dice_{name}"] = curve.dice_at(0.5)
            metrics[f"val_iou_{name}"] = curve.iou_at(0.5)
            best, threshold = curve.best_dice()
            metrics[f"val_best_dice_{name}"], metrics[f"val_threshold_{name}"] = best, threshold
        metrics["val_aupr_mean"] = float(np.nanmean([metrics[f"val_aupr_{n}"] for n in self.net.channels]))
        return metrics

    def task_config(self) -> dict:
        return {"task": "lesions", **asdict(self)}

    @staticmethod
    def recipe(**overrides) -> TrainConfig:
        return TrainConfig(**{**dict(epochs=100, batch_size=4, lr=1e-4, optimizer="adam", scheduler="plateau",
                                     gamma=0.5, plateau_patience=5, early_stopping_patience=15,
                                     monitor="val_aupr_mean", monitor_mode="max"), **overrides})


@dataclass
class LandmarkTask:
    net: LocatorConfig = field(default_factory=LocatorConfig)
    samples_per_epoch: int = 400

    def build_model(self) -> nn.Module:
        return build_locator(self.net)

    def datasets(self):
        train, val = landmark_split()
        return (LandmarkCanvases(train, True, self.net.sigma_px, self.samples_per_epoch),
                LandmarkCanvases(val, False, self.net.sigma_px))

    def loss(self, model, batch, device):
        x, target = batch[0].to(device), batch[1].to(device)
        return SpatialSoftmaxLoss()(model(x), target), {}

    def validate(self, model, loader, device):
        losses, errors, confidence = [], [], []
        for x, target, points, scale in loader:
            logits = model(x.to(device)).float().cpu()
            losses.append(float(SpatialSoftmaxLoss()(logits, target)))
            centres, mass = decode_heatmaps(logits, self.net.peak_radius)
            errors.append(np.linalg.norm(centres - points.numpy(), axis=-1) / scale.numpy()[:, None])
            confidence.append(mass)
        error_px, mass_share = np.concatenate(errors), np.concatenate(confidence)
        return {"val_loss": float(np.mean(losses)), "val_disc_px": float(error_px[:, 0].mean()),
                "val_fovea_px": float(error_px[:, 1].mean()), "val_mean_px": float(error_px.mean()),
                "val_disc_confidence": float(mass_share[:, 0].mean()),
                "val_fovea_confidence": float(mass_share[:, 1].mean())}

    def task_config(self) -> dict:
        return {"task": "landmarks", **asdict(self)}

    @staticmethod
    def recipe(**overrides) -> TrainConfig:
        return TrainConfig(**{**dict(epochs=40, batch_size=8, lr=1e-3, optimizer="adam", scheduler="cosine",
                                     early_stopping_patience=10, monitor="val_mean_px", monitor_mode="min"),
                                **overrides})
