"""Diabetic-retinopathy lesion segmentation: Attention-DeepLab (Jithesh et al., III-C) and the
plain DeepLabV3+ it is compared with.

Four sigmoid channels: microaneurysms (MA), haemorrhages (HE), hard exudates (EX), soft exudates
(SE, cotton-wool spots). CBAM sits after ASPP (semantic attention on the high-level features) and
after the decoder's 1 × 1 projection of the low-level features to 48 channels (spatial detail).

Input: optionally contrast-normalised (``preprocess="local_contrast"``): the local mean colour is
subtracted, which removes uneven illumination and pigmentation so small dark (MA, HE) and bright
(EX, SE) spots stand out; networks trained from scratch on a few dozen photos learn them sooner.

Detail network for the small lesions: DeepLabV3+ predicts at 1/4 of its input, coarse for spots
one or two logit pixels wide. ``architecture="unet"`` with ``channels=("MA", "EX")`` is a U-Net
whose decoder returns to full resolution, trained on the same crops and loss; when its weights
(``lesion_detail.safetensors``) are present the pipeline blends its channels with the lesion
network's (``blend_detail``): the two networks err on different pixels, so their mean ranks lesion
pixels better than either alone (docs/benchmarks.md, the detail network blended).

Working resolution: microaneurysms are ≈ 16 px across (median, IDRiD at 4288 × 2848; 10th
percentile 10 px); DeepLabV3+ predicts at 1/4 of its input, so the photo is rescaled until the FOV
is ``fov_diameter_px`` wide (1/3 of IDRiD's): MAs are then ≈ 5 px, ≥ 1 logit pixel each.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from annotate.fov import BLACK_PIXEL_LEVEL
from models.segmentation.common import LIGHT_ENCODER, NetConfig, build_smp, inference_context, rgb_to_tensor
from models.segmentation.stored_names import LESION_CHANNELS, LESION_NAMES  # noqa: F401 (re-exported)
from models.segmentation.tiling import predict_padded_many

IDRID_FOV_DIAMETER_PX = 3450   # IDRiD 4288 × 2848 photos: the FOV circle is ≈ 3450 px across


class ChannelAttention(nn.Module):
    """CBAM channel attention: σ(MLP(avgpool F) + MLP(maxpool F)) (Woo et al. 2018)."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1, bias=False), nn.ReLU(inplace=True),
                                 nn.Conv2d(hidden, channels, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = self.mlp(x.mean((2, 3), keepdim=True))
        peak = self.mlp(x.amax((2, 3), keepdim=True))
        return torch.sigmoid(avg + peak)


class SpatialAttention(nn.Module):
    """CBAM spatial attention: σ(conv7×7([mean_c F; max_c F]))."""

    def __init__(self, kernel_size: int = 7):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], dim=1)
        return torch.sigmoid(self.conv(pooled))


class CBAM(nn.Module):
    """Convolutional Block Attention Module: channel then spatial attention (Jithesh Fig. 3)."""

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7):
        super().__init__()
        self.channel = ChannelAttention(channels, reduction)
        self.spatial = SpatialAttention(kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * self.channel(x)
        return x * self.spatial(x)


@dataclass
class LesionNetConfig(NetConfig):
    architecture: str = "attention_deeplab"    # "attention_deeplab" | "deeplab" (the ablation) | "unet"
    encoder: str = LIGHT_ENCODER
    decoder_channels: int = 256                 # Jithesh III-C: 256 channels after ASPP (U-Net: its widest stage)
    channels: tuple[str, ...] = LESION_CHANNELS  # which lesion types it predicts, in LESION_CHANNELS order
    cbam_reduction: int = 16
    fov_diameter_px: int = IDRID_FOV_DIAMETER_PX // 3
    thresholds: tuple[float, ...] = (0.5, 0.5, 0.5, 0.5)   # per channel, tuned on validation
    # Per channel, the probability a spot's most probable pixel must reach to be suggested (0: the
    # threshold alone), tuned on healthy eyes for this network's calibration (bench_pipeline --healthy);
    # None (files written before): the pipeline's DEFAULT_LESION_PEAK.
    peaks: tuple[float, ...] | None = None
    # Per channel, the rest of its suggestion rule (``suggestions.SuggestionRule``'s fields but the peak,
    # e.g. {"MA": {"least_spots": 2}}), tuned with bench/bench_suggestions.py; None: the pipeline's defaults.
    suggestion_rules: dict[str, dict[str, Any]] | None = None
    encoder_weights_path: str | None = None   # imagenet-liteN or a local file (models/engine/pretrained.py)
    preprocess: str = "none"                    # "none" | "local_contrast" (see prepare_input)
    # A detail network's share of the pipeline's map for its channels, the rest the lesion network's
    # (1: it replaces them). Below 1 its thresholds and peaks are those of the blended map.
    blend: float = 1.0
    # Test-time augmentation: each map is the mean of the photo's and of its mirror image's (flipped
    # left to right, run in the same network call, the result flipped back). It changes the maps'
    # calibration, so the thresholds and suggestion rules stored beside it are tuned with it.
    mirror_average: bool = False


LOCAL_MEAN_SIGMA_FRACTION = 1 / 40   # of the FOV diameter: wider than the largest haemorrhages
CONTRAST_GAIN = 4.0


def local_contrast(image_rgb: np.ndarray, fov_diameter_px: float) -> np.ndarray:
    """128 + 4·(I − local mean), inside the field of view; mid-grey outside (Graham, Kaggle DR 2015).

    The local mean is a Gaussian blur normalised by the blurred FOV mask, so the dark border does
    not leak a bright ring into the rim of the fundus."""
    import cv2

    fov = (image_rgb.max(axis=2) > BLACK_PIXEL_LEVEL).astype(np.float32)
    image = image_rgb.astype(np.float32)
    # The mean varies slowly: blur a 4× smaller copy (16× fewer pixels, same result within a grey level).
    h, w = fov.shape
    small = (max(1, w // 4), max(1, h // 4))
    sigma = max(1.0, fov_diameter_px * LOCAL_MEAN_SIGMA_FRACTION / 4)
    weight = cv2.GaussianBlur(cv2.resize(fov, small, interpolation=cv2.INTER_AREA), (0, 0), sigma)
    masked = cv2.resize(image * fov[..., None], small, interpolation=cv2.INTER_AREA)
    local_small = cv2.GaussianBlur(masked, (0, 0), sigma) / np.maximum(weight, 1e-3)[..., None]
    local = cv2.resize(local_small, (w, h), interpolation=cv2.INTER_LINEAR)
    out = 128 + CONTRAST_GAIN * (image - local)
    out[fov == 0] = 128
    return np.clip(out, 0, 255).astype(np.uint8)


def prepare_input(image_rgb: np.ndarray, config: LesionNetConfig) -> np.ndarray:
    """The photo at the working scale as the network was trained to see it."""
    if config.preprocess == "local_contrast":
        return local_contrast(image_rgb, config.fov_diameter_px)
    if config.preprocess != "none":
        raise ValueError(f"unknown lesion preprocessing {config.preprocess!r}")
    return image_rgb


def build_lesion_net(config: LesionNetConfig) -> nn.Module:
    if config.architecture not in ("attention_deeplab", "deeplab", "unet"):
        raise ValueError(f"unknown lesion architecture {config.architecture!r}")
    unknown = set(config.channels) - set(LESION_CHANNELS)
    if unknown or not config.channels:
        raise ValueError(f"lesion channels must be among {LESION_CHANNELS}, not {sorted(unknown)}")
    if config.architecture == "unet":
        widest = config.decoder_channels
        return build_smp("Unet", config.encoder, config.encoder_weights_path, classes=len(config.channels),
                         decoder_channels=(widest, widest // 2, widest // 4, widest // 4, widest // 4))
    model = build_smp("DeepLabV3Plus", config.encoder, config.encoder_weights_path,
                      classes=len(config.channels), decoder_channels=config.decoder_channels)
    if config.architecture == "attention_deeplab":
        decoder: Any = model.decoder   # smp's DeepLabV3+ decoder: aspp and block1 are Sequentials
        decoder.aspp.append(CBAM(config.decoder_channels, config.cbam_reduction))
        low_level = decoder.block1[0].out_channels   # 48 (DeepLabV3+ low-level projection)
        decoder.block1.append(CBAM(low_level, config.cbam_reduction))
    return model


def blend_detail(probs: np.ndarray, detail_probs: np.ndarray, detail: LesionNetConfig) -> np.ndarray:
    """The lesion network's probabilities (4, h, w) with the detail network's channels blended in by
    ``detail.blend``; the detail maps are resized onto the lesion network's grid where it works at
    another scale. Returns a new array."""
    import cv2

    out = probs.copy()
    for channel, prob in zip(detail.channels, detail_probs):
        if prob.shape != probs.shape[1:]:
            prob = cv2.resize(prob, probs.shape[:0:-1], interpolation=cv2.INTER_LINEAR)
        index = LESION_CHANNELS.index(channel)
        out[index] = detail.blend * prob + (1 - detail.blend) * probs[index]
    return out


def segment_lesions(model: nn.Module, image_rgb: np.ndarray, device: torch.device,
                    config: LesionNetConfig | None = None) -> np.ndarray:
    """Lesion probabilities (len(config.channels), H, W) float32 for an image already at the working
    scale, averaged with the mirror image's where ``config.mirror_average`` says so."""
    config = config or LesionNetConfig()
    return segment_prepared(model, prepare_input(image_rgb, config), device, config.mirror_average)


def segment_prepared(model: nn.Module, prepared_rgb: np.ndarray, device: torch.device,
                     mirror_average: bool = False) -> np.ndarray:
    """``segment_lesions`` on an input already through ``prepare_input`` (shared by two networks)."""
    return segment_prepared_batch(model, [prepared_rgb], device, mirror_average)[0]


def segment_prepared_batch(model: nn.Module, prepared: list[np.ndarray], device: torch.device,
                           mirror_average: bool = False) -> list[np.ndarray]:
    """``segment_prepared`` for several photos: one network call for those of one padded size.
    ``mirror_average``: each map is the mean of the photo's and of its mirror image's (flipped back);
    the mirror images have their photos' padded sizes, so they share the photos' call."""
    inputs = [rgb_to_tensor(image).to(device) for image in prepared]
    if mirror_average:
        inputs += [image.flip(-1) for image in inputs]
    with inference_context(device):
        probs = [prob.float().cpu().numpy()
                 for prob in predict_padded_many(lambda batch: torch.sigmoid(model(batch)), inputs, multiple=32)]
    if not mirror_average:
        return probs
    count = len(prepared)
    return [(own + mirrored[..., ::-1]) / 2 for own, mirrored in zip(probs[:count], probs[count:])]
