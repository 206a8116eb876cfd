"""Inference on images of any size: overlapping tiles blended linearly, or padding to the stride.

Himbitskaya et al. (attention-mask-classification, III-B) cut the photo into 352-pixel tiles that
overlap, drop a few pixels at each tile's inner border and alpha-blend the overlaps so no seam
shows. Here each tile's weight is 0 within ``margin`` pixels of an inner edge (where its receptive
field is cut) and rises linearly across the rest of the overlap; the two ramps of neighbouring
tiles sum to 1, and the accumulated weights are normalised anyway (the last tile of a row is
aligned to the image edge, so its overlap may be wider).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

Predict = Callable[[torch.Tensor], torch.Tensor]   # (B, C, h, w) -> (B, K, h, w)


@dataclass(frozen=True)
class TileConfig:
    tile: int = 352      # Himbitskaya III-B
    overlap: int = 48
    margin: int = 8      # pixels dropped at each inner tile edge
    batch_size: int = 4


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets along one axis: equal steps of at most ``tile − overlap``, last tile flush."""
    if length <= tile:
        return [0]
    count = math.ceil((length - overlap) / (tile - overlap))
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def edge_ramp(tile: int, overlap: int, margin: int, at_start: bool, at_end: bool) -> torch.Tensor:
    """1-D blending weight of a tile: 0 within ``margin`` of an inner edge, linear up to 1."""
    d = torch.arange(1, tile + 1, dtype=torch.float32)           # distance to the start edge
    ramp_length = overlap - 2 * margin + 1
    weight = torch.ones(tile)
    if not at_start:
        weight = torch.minimum(weight, ((d - margin) / ramp_length).clamp(0, 1))
    if not at_end:
        weight = torch.minimum(weight, ((d.flip(0) - margin) / ramp_length).clamp(0, 1))
    return weight


def predict_tiled(predict: Predict, image: torch.Tensor, config: TileConfig = TileConfig()) -> torch.Tensor:
    """Run ``predict`` on overlapping tiles of ``image`` (C, H, W) and blend: returns (K, H, W).

    Images smaller than a tile are zero-padded to the tile size and cropped back."""
    return predict_tiled_many(predict, [image], config)[0]


def predict_tiled_many(predict: Predict, images: list[torch.Tensor], config: TileConfig = TileConfig()) -> list[torch.Tensor]:
    """``predict_tiled`` for several images of any sizes at once: their tiles share batches of
    ``config.batch_size`` (a GPU fills up with a batch of photos); each image gets the same
    result as alone."""
    if config.overlap <= 2 * config.margin:
        raise ValueError("tile overlap must exceed twice the margin")
    t = config.tile
    padded = [F.pad(image, (0, max(0, t - image.shape[2]), 0, max(0, t - image.shape[1]))) for image in images]
    boxes = [(i, y, x) for i, p in enumerate(padded)
             for y in tile_starts(p.shape[1], t, config.overlap) for x in tile_starts(p.shape[2], t, config.overlap)]
    totals: list = [None] * len(images)
    weights: list = [None] * len(images)
    for first in range(0, len(boxes), config.batch_size):
        chunk = boxes[first:first + config.batch_size]
        out = predict(torch.stack([padded[i][:, y:y + t, x:x + t] for i, y, x in chunk])).float()
        for (i, y, x), tile_out in zip(chunk, out):
            ph, pw = padded[i].shape[1:]
            if totals[i] is None:
                totals[i] = torch.zeros(out.shape[1], ph, pw, device=out.device)
                weights[i] = torch.zeros(1, ph, pw, device=out.device)
            wy = edge_ramp(t, config.overlap, config.margin, y == 0, y + t >= ph)
            wx = edge_ramp(t, config.overlap, config.margin, x == 0, x + t >= pw)
            weight = (wy[:, None] * wx[None, :]).to(out.device)
            totals[i][:, y:y + t, x:x + t] += tile_out * weight
            weights[i][:, y:y + t, x:x + t] += weight
    return [(total / weight.clamp_min(1e-6))[:, :image.shape[1], :image.shape[2]]
            for total, weight, image in zip(totals, weights, images)]


def _pad_to_multiple(image: torch.Tensor, multiple: int) -> torch.Tensor:
    """(C, H, W) -> (1, C, H', W'), padded at the bottom and right by reflection (by zeros when
    the image is too small to reflect) to the next multiple of the network's stride."""
    _, h, w = image.shape
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    mode = "reflect" if pad_h < h and pad_w < w else "constant"
    return F.pad(image[None], (0, pad_w, 0, pad_h), mode=mode)


def predict_padded(predict: Predict, image: torch.Tensor, multiple: int = 32) -> torch.Tensor:
    """Whole-image inference: pad (C, H, W) by reflection to a multiple of the network's stride,
    run once, crop back; returns (K, H, W)."""
    return predict_padded_many(predict, [image], multiple)[0]


def predict_padded_many(predict: Predict, images: list[torch.Tensor], multiple: int = 32) -> list[torch.Tensor]:
    """``predict_padded`` for several images: those whose padded sizes agree run as one batch.
    Images are never padded further to share a batch, because a network with global pooling
    (DeepLab's ASPP) would then see another image; so each result equals the image's alone."""
    groups: dict[tuple[int, ...], list[int]] = {}
    padded = [_pad_to_multiple(image, multiple) for image in images]
    for index, tensor in enumerate(padded):
        groups.setdefault(tuple(tensor.shape), []).append(index)
    results: list = [None] * len(images)
    for indices in groups.values():
        out = predict(torch.cat([padded[i] for i in indices]))
        for i, prob in zip(indices, out):
            results[i] = prob[:, :images[i].shape[1], :images[i].shape[2]].float()
    return results
