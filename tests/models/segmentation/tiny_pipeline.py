"""Tiny, untrained pipeline networks (one of each) for tests that run the whole pipeline fast."""
from __future__ import annotations

from pathlib import Path

from models.engine.weights import save_weights
from models.segmentation.disc_cup import DiscCupConfig, build_disc_cup_net
from models.segmentation.landmarks import LocatorConfig, build_locator
from models.segmentation.lesions import LesionNetConfig, build_lesion_net
from models.segmentation.vessels import VesselNetConfig, build_vessel_net

TINY = {
    "landmarks": (LocatorConfig(decoder_channels=(8,) * 4, canvas=(96, 64)), build_locator),
    "disc_cup": (DiscCupConfig(decoder_channels=(8,) * 4, crop_size=64), build_disc_cup_net),
    "vessels": (VesselNetConfig(encoder="tu-mobilenetv4_conv_small", decoder_channels=(8,) * 5, fov_diameter_px=120,
                                tile=64, overlap=16, margin=4), build_vessel_net),
    "lesions": (LesionNetConfig(decoder_channels=16, fov_diameter_px=160), build_lesion_net),
}


def write_tiny_pipeline_weights(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, (config, build) in TINY.items():
        save_weights(build(config), folder / f"{name}.safetensors",
                     {"name": name, "config": config.to_dict(), "version": f"{name}-test"})
    return folder
