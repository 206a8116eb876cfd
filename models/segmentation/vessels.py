"""Retinal vessel segmentation: a U-Net run on overlapping tiles (Himbitskaya et al. III-B) and
its Attention U-Net++ variant (Andrikevych et al.).

Input is the green channel with CLAHE (vessels contrast best in green); the photo is first
rescaled so its field of view is ``fov_diameter_px`` wide, the scale of DRIVE that the network
learns from (DRIVE's FOV is ≈ 540 px across), so vessel calibres match whatever the camera.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import nn

from models.segmentation.attention_unetpp import AttentionUNetPlusPlus
from models.segmentation.common import LIGHT_ENCODER, NetConfig, build_smp, inference_context
from models.segmentation.tiling import TileConfig, predict_tiled_many

CLAHE_CLIP, CLAHE_TILES = 2.0, 8
DRIVE_FOV_DIAMETER_PX = 540
PAPER_ENCODERS = {"unet": "resnet18", "attention_unetpp": "resnet34"}


@dataclass
class VesselNetConfig(NetConfig):
    architecture: str = "unet"                 # "unet" | "attention_unetpp"
    # None: the architecture's paper encoder, ResNet-18 for the U-Net (Himbitskaya III-B), ResNet-34 for
    # the Attention U-Net++ (Andrikevych section 2); the starter uses LIGHT_ENCODER
    encoder: str | None = None
    decoder_channels: tuple[int, ...] = (128, 64, 32, 32, 16)
    unetpp_filters: tuple[int, ...] = (8, 16, 32, 64, 128)   # Andrikevych section 2
    in_channels: int = 1
    fov_diameter_px: int = DRIVE_FOV_DIAMETER_PX
    tile: int = 352
    overlap: int = 48
    margin: int = 8
    threshold: float = 0.5
    encoder_weights_path: str | None = None   # imagenet-liteN or a local file (models/engine/pretrained.py)

    def __post_init__(self):
        if self.encoder is None:
            self.encoder = PAPER_ENCODERS.get(self.architecture, "resnet18")


STARTER_VESSELS = VesselNetConfig(encoder=LIGHT_ENCODER)


def build_vessel_net(config: VesselNetConfig) -> nn.Module:
    chosen = config.encoder or PAPER_ENCODERS.get(config.architecture, "resnet18")   # __post_init__ sets it
    if config.architecture == "attention_unetpp":
        encoder = chosen if chosen.startswith("resnet") else "resnet34"
        return AttentionUNetPlusPlus(encoder, config.in_channels, 1, config.unetpp_filters)
    if config.architecture != "unet":
        raise ValueError(f"unknown vessel architecture {config.architecture!r}")
    return build_smp("Unet", chosen, config.encoder_weights_path, in_channels=config.in_channels,
                     classes=1, decoder_channels=config.decoder_channels)


def vessel_input(image_rgb: np.ndarray) -> np.ndarray:
    """Green channel, CLAHE (clip 2, 8 × 8 tiles), scaled to zero mean-ish: float32 (H, W)."""
    green = image_rgb[..., 1]
    clahe = cv2.createCLAHE(clipLimit=CLAHE_CLIP, tileGridSize=(CLAHE_TILES, CLAHE_TILES))
    return (clahe.apply(np.ascontiguousarray(green)).astype(np.float32) / 255.0 - 0.5) / 0.25


def segment_vessels(model: nn.Module, image_rgb: np.ndarray, config: VesselNetConfig,
                    device: torch.device) -> np.ndarray:
    """Vessel probability (H, W) float32 for an image already at the working scale."""
    return segment_vessels_batch(model, [image_rgb], config, device)[0]


def segment_vessels_batch(model: nn.Module, images_rgb: list[np.ndarray], config: VesselNetConfig,
                          device: torch.device, tiles_per_batch: int = 4) -> list[np.ndarray]:
    """``segment_vessels`` for several photos, their tiles ``tiles_per_batch`` to a network call."""
    inputs = [torch.from_numpy(vessel_input(image))[None].to(device) for image in images_rgb]
    tiles = TileConfig(config.tile, config.overlap, config.margin, tiles_per_batch)
    with inference_context(device):
        probs = predict_tiled_many(lambda batch: torch.sigmoid(model(batch)), inputs, tiles)
    return [prob[0].float().cpu().numpy() for prob in probs]
