"""Tiny synthetic fundus photographs and damaged files for the annotate tests."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def synthetic_fundus(w: int, h: int, cx: float, cy: float, r: float, seed: int = 0) -> np.ndarray:
    """Textured orange disc on a noisy black border; the circle may be cut by the image edges."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    inside = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
    shade = 0.6 + 0.4 * np.cos((xx - cx) / r * 1.2)          # darker towards the rim, like vignetting
    image = np.zeros((h, w, 3), np.float64)
    for channel, level in enumerate((30, 80, 170)):           # B, G, R
        image[..., channel] = level * shade + rng.normal(0, 8, (h, w))
    image[~inside] = rng.integers(0, 8, size=(int((~inside).sum()), 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def write_photo(path: Path, seed: int = 0, size: tuple[int, int] = (96, 64)) -> Path:
    """A small fundus photo cut at top and bottom, in the format the suffix says."""
    w, h = size
    path.parent.mkdir(parents=True, exist_ok=True)
    image = synthetic_fundus(w, h, w / 2, h / 2, 0.6 * w, seed=seed)
    ok, data = cv2.imencode(path.suffix.lower() if path.suffix.lower() != ".jpeg" else ".jpg", image)
    assert ok
    path.write_bytes(data.tobytes())
    return path


def write_truncated_jpeg(path: Path, seed: int = 0) -> Path:
    whole = write_photo(path, seed).read_bytes()
    path.write_bytes(whole[: len(whole) * 6 // 10])
    return path


def write_corrupt_jpeg(path: Path) -> Path:
    """A JPEG header followed by noise and an end marker: the decoder gives up."""
    header = write_photo(path, seed=5).read_bytes()[:200]
    noise = np.random.default_rng(7).integers(0, 255, 3000, dtype=np.uint8).tobytes()
    path.write_bytes(header + noise + b"\xff\xd9")
    return path
