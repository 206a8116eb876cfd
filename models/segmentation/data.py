"""Datasets of the public sets for the pre-segmentation networks (read from the caches that
``models/segmentation/cache.py`` writes to ``local-data/``).

Randomness comes from numpy's global generator, which the engine reseeds every epoch, so an
epoch's crops and augmentations are reproducible and a resumed run repeats them.

Splits (validation never overlaps training, also across the two IDRiD numberings):
- DRIVE: train 21–37, validate 38–40 (carved from the training set); the bench tests on 01–20.
- Drishti-GS1: every 5th photo (sorted by name) validates.
- IDRiD-segmentation: train 01–44, validate 45–54 (the split every network and bench here uses).
- IDRiD-landmarks: validate on every 4th ``confident`` photo that is not one of the
  segmentation training photos under another name; train on the rest, minus the validation
  segmentation photos (45–54) under their landmark names, so every network is clean on them.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from models.segmentation.cache import DISC_DIAMETER_PX, idrid_overlap, public_sets_cache_dir
from models.segmentation.common import rgb_to_tensor
from models.segmentation.landmarks import heatmap_targets
from models.segmentation.vessels import vessel_input

LESION_VALIDATION = range(45, 55)
DRIVE_VALIDATION = (38, 39, 40)


# ---------------------------------------------------------------- augmentation helpers
def random_affine(centre: tuple[float, float], out_size: tuple[int, int], scale: float, angle: float,
                  flip: bool) -> np.ndarray:
    """2 × 3 matrix mapping source pixels around ``centre`` to an ``out_size`` (w, h) patch."""
    matrix = cv2.getRotationMatrix2D(centre, angle, scale)
    matrix[:, 2] += np.array(out_size, np.float64) / 2 - np.array(centre)
    if flip:
        matrix[0] = -matrix[0]
        matrix[0, 2] += out_size[0]
    return matrix


def warp(array: np.ndarray, matrix: np.ndarray, out_size: tuple[int, int], linear: bool = True) -> np.ndarray:
    return cv2.warpAffine(array, matrix, out_size, flags=cv2.INTER_LINEAR if linear else cv2.INTER_NEAREST,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def colour_jitter(image: np.ndarray) -> np.ndarray:
    """Jithesh III-B: brightness/contrast ±20 %, gamma 0.8–1.2, HSV (hue ±10°, sat ±15 %,
    value ±10 %), one of them with p = 0.5; Gaussian blur (p = 0.15) and noise (p = 0.15)."""
    rng = np.random
    out: np.ndarray = image.astype(np.float32)
    if rng.rand() < 0.5:
        choice = rng.randint(3)
        if choice == 0:
            out = out * rng.uniform(0.8, 1.2) + rng.uniform(-0.2, 0.2) * 255 * 0.25
        elif choice == 1:
            out = 255 * (np.clip(out, 0, 255) / 255) ** rng.uniform(0.8, 1.2)
        else:
            hsv = cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
            hsv[..., 0] = (hsv[..., 0] + rng.uniform(-5, 5)) % 180   # OpenCV hue is degrees / 2
            hsv[..., 1] *= rng.uniform(0.85, 1.15)
            hsv[..., 2] *= rng.uniform(0.9, 1.1)
            out = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    if rng.rand() < 0.15:
        out = cv2.GaussianBlur(out, (3, 3), 0)
    if rng.rand() < 0.15:
        out = out + rng.normal(0, math.sqrt(rng.uniform(10, 50)), out.shape)
    return np.clip(out, 0, 255).astype(np.uint8)


def flips_and_quarter_turns(*arrays: np.ndarray) -> list[np.ndarray]:
    """The same random horizontal/vertical flip and 90° rotation of (..., H, W) arrays."""
    rng = np.random
    k, flip_h, flip_v = rng.randint(4), rng.rand() < 0.5, rng.rand() < 0.5
    out = []
    for a in arrays:
        if flip_h:
            a = a[..., ::-1]
        if flip_v:
            a = a[..., ::-1, :]
        out.append(np.ascontiguousarray(np.rot90(a, k, axes=(-2, -1))))
    return out


# ---------------------------------------------------------------- vessels (DRIVE)
def load_drive(split: str, numbers=None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(network inputs (N, H, W) float32, vessels (N, H, W) uint8, fov masks, image numbers)."""
    data = np.load(public_sets_cache_dir() / "drive.npz")
    keep = [i for i, n in enumerate(data[f"{split}_numbers"]) if numbers is None or n in numbers]
    inputs = np.stack([vessel_input(data[f"{split}_images"][i]) for i in keep])
    return inputs, data[f"{split}_vessels"][keep], data[f"{split}_fov"][keep], data[f"{split}_numbers"][keep]


class VesselPatches(Dataset):
    """Random square patches of the pre-processed green channel, flips and 90° turns (Andrikevych et al.'s recipe)."""

    def __init__(self, inputs: np.ndarray, vessels: np.ndarray, patch: int = 128, patches_per_epoch: int = 800):
        self.inputs, self.vessels, self.patch, self.length = inputs, vessels, patch, patches_per_epoch

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        i = np.random.randint(len(self.inputs))
        h, w = self.inputs.shape[1:]
        y, x = np.random.randint(h - self.patch + 1), np.random.randint(w - self.patch + 1)
        image = self.inputs[i, y:y + self.patch, x:x + self.patch]
        target = self.vessels[i, y:y + self.patch, x:x + self.patch].astype(np.float32)
        image, target = flips_and_quarter_turns(image, target)
        return torch.from_numpy(image)[None], torch.from_numpy(target)[None]


class WholeImages(Dataset):
    """Whole validation images: (input, target, fov mask) as tensors."""

    def __init__(self, inputs, targets, fovs):
        self.inputs, self.targets, self.fovs = inputs, targets, fovs

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int):
        x = torch.from_numpy(np.ascontiguousarray(self.inputs[index]))
        x = x[None] if x.ndim == 2 else x
        target = torch.from_numpy(np.ascontiguousarray(self.targets[index]).astype(np.float32))
        target = target[None] if target.ndim == 2 else target
        return x, target, torch.from_numpy(np.ascontiguousarray(self.fovs[index]).astype(bool))


# ---------------------------------------------------------------- disc and cup (Drishti-GS1)
def drishti_split() -> tuple[list[str], list[str]]:
    names = sorted((public_sets_cache_dir() / "drishti" / "names.txt").read_text().split())
    return [n for i, n in enumerate(names) if i % 5], [n for i, n in enumerate(names) if i % 5 == 0]


class DiscCupCrops(Dataset):
    """256² crops of ``crop_disc_diameters`` disc diameters; in training the centre moves by up
    to 0.6 disc diameters, the size by 0.75–1.33×, rotation ±15°, flips, colour jitter, so the
    second-pass crop of the pipeline (centred on a first, rougher guess) is inside the training
    distribution. Targets are the experts' agreement maps (soft, 0..1)."""

    def __init__(self, names: list[str], train: bool, size: int = 256, crop_disc_diameters: float = 3.0,
                 samples_per_epoch: int = 400):
        folder = public_sets_cache_dir() / "drishti"
        self.items = [dict(np.load(folder / f"{n}.npz")) for n in names]
        self.centres = []
        for item in self.items:
            ys, xs = np.nonzero(item["disc"] >= 128)
            self.centres.append((float(xs.mean()), float(ys.mean())))
        self.train, self.size, self.side = train, size, crop_disc_diameters * DISC_DIAMETER_PX
        self.length = samples_per_epoch if train else len(self.items)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        rng = np.random
        i = rng.randint(len(self.items)) if self.train else index
        item, (cx, cy) = self.items[i], self.centres[i]
        side, angle, flip = self.side, 0.0, False
        if self.train:
            cx += rng.uniform(-0.6, 0.6) * DISC_DIAMETER_PX
            cy += rng.uniform(-0.6, 0.6) * DISC_DIAMETER_PX
            side *= math.exp(rng.uniform(math.log(0.75), math.log(1.33)))
            angle, flip = rng.uniform(-15, 15), rng.rand() < 0.5
        matrix = random_affine((cx, cy), (self.size, self.size), self.size / side, angle, flip)
        image = warp(item["image"], matrix, (self.size, self.size))
        masks = np.stack([warp(item[k], matrix, (self.size, self.size)) for k in ("disc", "cup")]).astype(np.float32) / 255
        if self.train:
            image = colour_jitter(image)
        return rgb_to_tensor(image), torch.from_numpy(masks)


# ---------------------------------------------------------------- landmarks (IDRiD-landmarks)
def landmark_split() -> tuple[np.ndarray, np.ndarray]:
    data = np.load(public_sets_cache_dir() / "idrid_landmarks.npz")
    overlap = idrid_overlap()
    seg_train = {v for k, v in overlap.items() if int(k.split("_")[1]) not in LESION_VALIDATION}
    seg_val = {v for k, v in overlap.items() if int(k.split("_")[1]) in LESION_VALIDATION}
    candidates = [i for i, (n, c) in enumerate(zip(data["names"], data["confident"])) if c == 1 and n not in seg_train]
    val = np.array(candidates[::4])
    train = np.array([i for i, n in enumerate(data["names"]) if i not in set(val) and n not in seg_val])
    return train, val


class LandmarkCanvases(Dataset):
    """Letterboxed photos with Gaussian target heatmaps; training moves the photo (scale
    0.85–1.15, ±10°, ±8 % shift), mirrors it (a right eye becomes a left eye) and jitters colour."""

    def __init__(self, indices: np.ndarray, train: bool, sigma: tuple[float, float] = (5.0, 7.0),
                 samples_per_epoch: int = 0):
        data = np.load(public_sets_cache_dir() / "idrid_landmarks.npz")
        self.images, self.points = data["images"][indices], data["points"][indices]
        self.scale = data["scale"][indices]   # canvas pixels per original pixel
        self.train, self.sigma = train, sigma
        self.length = samples_per_epoch or len(indices)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        rng = np.random
        i = rng.randint(len(self.images)) if self.train else index
        image, points = self.images[i], self.points[i].copy()
        h, w = image.shape[:2]   # the cache's canvas (LOCATOR_CANVAS)
        if self.train:
            centre = (w / 2 + rng.uniform(-0.08, 0.08) * w, h / 2 + rng.uniform(-0.08, 0.08) * h)
            matrix = random_affine(centre, (w, h), rng.uniform(0.85, 1.15), rng.uniform(-10, 10), rng.rand() < 0.5)
            image = colour_jitter(warp(image, matrix, (w, h)))
            points = points @ matrix[:, :2].T + matrix[:, 2]
        targets = heatmap_targets(points, (w, h), self.sigma)
        return (rgb_to_tensor(image), torch.from_numpy(targets), torch.from_numpy(points.astype(np.float32)),
                torch.tensor(self.scale[i]))


# ---------------------------------------------------------------- lesions (IDRiD-segmentation)
def lesion_arrays() -> tuple[np.ndarray, np.ndarray, list[str]]:
    folder = public_sets_cache_dir() / "idrid_lesions"
    return (np.load(folder / "images.npy", mmap_mode="r"), np.load(folder / "masks.npy", mmap_mode="r"),
            (folder / "names.txt").read_text().split())


def lesion_split(names: list[str]) -> tuple[list[int], list[int]]:
    val = [i for i, n in enumerate(names) if int(n.split("_")[1]) in LESION_VALIDATION]
    return [i for i in range(len(names)) if i not in val], val


class LesionCrops(Dataset):
    """Crops of the 1/3-scale photos, half of them centred on a lesion pixel of a random type
    (haemorrhages and microaneurysms are rare: random crops would rarely show them), with the
    paper's flips, 90° turns, shift–scale–rotate (±6.25 %, ±10 %, ±15°) and colour jitter
    (Jithesh III-B; the elastic/grid/optical distortions are left out)."""

    def __init__(self, indices: list[int], crop: int = 384, samples_per_epoch: int = 400, lesion_centred: float = 0.5,
                 prepare=None, channels: tuple[int, ...] = (0, 1, 2, 3)):
        images, masks, _ = lesion_arrays()
        self.images = np.stack([prepare(images[i]) if prepare else images[i] for i in indices])
        # lesion present over half the pixel; only the channels this network predicts
        self.masks = np.ascontiguousarray(masks[indices][:, list(channels)] >= 128)
        self.crop, self.length, self.lesion_centred = crop, samples_per_epoch, lesion_centred
        step = 4   # lesion pixels kept on a 4-pixel grid: enough centres, little memory
        self.lesion_pixels = [[np.argwhere(c_mask[::step, ::step]) * step for c_mask in m] for m in self.masks]

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        rng = np.random
        i = rng.randint(len(self.images))
        h, w = self.images.shape[1:3]
        present = [c for c in range(len(self.masks[i])) if len(self.lesion_pixels[i][c])]
        if present and rng.rand() < self.lesion_centred:
            pixels = self.lesion_pixels[i][present[rng.randint(len(present))]]
            cy, cx = pixels[rng.randint(len(pixels))] + rng.uniform(-0.3, 0.3, 2) * self.crop
        else:
            cy, cx = rng.uniform(0.15, 0.85) * h, rng.uniform(0.1, 0.9) * w
        scale = 1 + rng.uniform(-0.1, 0.1)
        matrix = random_affine((float(cx), float(cy)), (self.crop, self.crop), scale,
                               rng.uniform(-15, 15) if rng.rand() < 0.5 else 0.0, False)
        image = colour_jitter(warp(self.images[i], matrix, (self.crop, self.crop)))
        masks = np.stack([warp(m.astype(np.uint8), matrix, (self.crop, self.crop), linear=False)
                          for m in self.masks[i]]).astype(np.float32)
        image_chw, masks = flips_and_quarter_turns(image.transpose(2, 0, 1), masks)
        x = rgb_to_tensor(np.ascontiguousarray(image_chw.transpose(1, 2, 0)))
        return x, torch.from_numpy(masks)


class LesionPhotos(Dataset):
    """Whole validation photos at 1/3 scale: (input, targets (4, H, W), all-true mask)."""

    def __init__(self, indices: list[int], prepare=None, channels: tuple[int, ...] = (0, 1, 2, 3)):
        self.images, self.masks, _ = lesion_arrays()
        self.indices, self.prepare, self.channels = indices, prepare, list(channels)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int):
        i = self.indices[index]
        target = torch.from_numpy((np.asarray(self.masks[i, self.channels]) >= 128).astype(np.float32))
        image = np.asarray(self.images[i])
        return rgb_to_tensor(self.prepare(image) if self.prepare else image), target, torch.ones(target.shape[1:], dtype=torch.bool)
