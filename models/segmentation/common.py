"""What the pre-segmentation networks share: building smp models offline, input normalisation,
and the inference precision policy."""
from __future__ import annotations

import contextlib
from dataclasses import asdict
from typing import Any, ClassVar

import numpy as np
import segmentation_models_pytorch as smp
import torch
from torch import nn

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)   # Jithesh III-B normalisation
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
LIGHT_ENCODER = "tu-mobilenetv4_conv_small"   # 1.3 M encoder parameters: the starter models' encoder


class NetConfig:
    """Mixin for the networks' config dataclasses: a plain dict for checkpoints and weight headers,
    and back (JSON turns tuples into lists; keys from other versions are ignored)."""

    __dataclass_fields__: ClassVar[dict[str, Any]]   # the subclasses are dataclasses

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict):
        """The config of a saved network. Its encoder's starting weights are left out: the saved
        weights replace them, and the package they came from need not be installed here."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v
                      for k, v in values.items() if k in cls.__dataclass_fields__ and k != "encoder_weights_path"})


def build_smp(architecture: str, encoder: str, encoder_weights: str | None = None, **kwargs) -> nn.Module:
    """An smp network whose encoder starts from scratch (no downloads, ever) or from the encoder
    weights ``encoder_weights`` names: ``imagenet-liteN`` (the packaged ImageNet weights, for the
    encoder ``tu-tf_efficientnet_liteN``), a local .pth/.safetensors file, or none
    (``models/engine/pretrained.py``)."""
    model = getattr(smp, architecture)(encoder_name=encoder, encoder_weights=None, **kwargs)
    if encoder_weights:
        from models.engine.pretrained import apply_encoder_weights

        apply_encoder_weights(model.encoder, encoder_weights)
    return model


def rgb_to_tensor(image_rgb: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) RGB -> float (3, H, W) normalised with ImageNet statistics."""
    x = (image_rgb.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))


def inference_context(device: torch.device, precision: str | None = None):
    """no_grad plus the autocast ``models.engine.precision`` chooses for ``device`` (``precision``:
    auto, fp32 or bf16; default the process's choice, ``--precision``)."""
    from models.engine.precision import resolve_precision

    stack = contextlib.ExitStack()
    stack.enter_context(torch.inference_mode())
    stack.enter_context(resolve_precision(device, precision).autocast())
    return stack


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
