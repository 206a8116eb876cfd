"""A guided finding network on one photo, prepared exactly as it was trained
(``models.findings.data.fov_square`` and ``photo_tensor``: black border cropped, squeezed to the
network's input size, RGB in [0, 1]), so a change to the training preprocessing reaches inference.

Preparing and running are apart: a caller that shares one network among threads (the review
screen) prepares photos in parallel and serialises only ``run_guided``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from models.findings.data import fov_square, photo_tensor


@dataclass(frozen=True)
class GuidedInput:
    tensor: torch.Tensor                  # 1 × 3 × size × size, what the network takes
    crop: np.ndarray                      # RGB uint8: the photo inside its crop box, at full resolution
    box: tuple[int, int, int, int]        # x0, y0, x1, y1 of the crop box in the photo's pixels


def prepare_guided_input(photo_bgr: np.ndarray, input_size: int,
                         crop: tuple[int, int, int, int] | None = None) -> GuidedInput:
    """``photo_bgr`` (as ``annotate.services.photos.read_fundus`` decodes it) for a network of
    ``input_size``; ``crop`` is the stored crop box (None: detected, as in training)."""
    square, box = fov_square(photo_bgr, input_size, crop)
    x0, y0, x1, y1 = box
    return GuidedInput(photo_tensor(square[..., ::-1])[None], np.ascontiguousarray(photo_bgr[y0:y1, x0:x1, ::-1]),
                       box)


@torch.no_grad()
def run_guided(network: nn.Module, prepared: GuidedInput) -> tuple[float, np.ndarray]:
    """(probability that the finding is present, activation map S/16 × S/16 in [0, 1])."""
    device = next(network.parameters()).device
    logit, activation = network(prepared.tensor.to(device))
    return float(torch.sigmoid(logit.float().cpu())[0]), activation[0, 0].float().cpu().numpy()
