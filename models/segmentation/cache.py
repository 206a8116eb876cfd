"""Compact caches of the public training sets for the pre-segmentation networks.

The public photos are large (IDRiD 4288 × 2848 JPEG); decoding them every epoch would cost more
CPU than training. Each builder reads one set from the public data folder (``--data`` or
``$OCTANT_PUBLIC_DATA``, ``storage.locations.public_data_dir``) once and writes downscaled uint8
arrays to the user's cache folder (``public_cache_dir``), at the working resolution of its network:

- DRIVE: as published (565 × 584), the vessel network's own scale (FOV diameter ≈ 540 px);
- Drishti-GS1: each photo rescaled so that its disc is ``DISC_DIAMETER_PX`` wide (the disc/cup
  network sees a crop of ``CROP_DISC_DIAMETERS`` disc diameters around the disc);
- IDRiD-landmarks: letterboxed into the locator's 512 × 384 canvas, landmarks in canvas pixels;
- IDRiD-segmentation: 1/3 of the original (1429 × 949), lesion masks as area fractions 0..255.

Nothing here is imported at run time by the pipeline; the arrays are only for training and bench.
"""
from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np

from storage.locations import public_cache_dir, public_data_dir

LESION_FOLDERS = ("microaneurysms", "haemorrhages", "hard_exudates", "soft_exudates")
LESION_SCALE = 1 / 3            # IDRiD-segmentation working scale (MA median ≈ 16 px → 5.5 px)
DISC_DIAMETER_PX = 96           # Drishti photos are normalised to this disc diameter
LOCATOR_CANVAS = (512, 384)     # (width, height) of the landmark locator's input


def public_sets_cache_dir() -> Path:
    """The caches of the public sets, under the user's cache folder (never the source tree)."""
    path = public_cache_dir() / "public-sets"
    path.mkdir(parents=True, exist_ok=True)
    return path


def read_rgb(path: Path) -> np.ndarray:
    if not path.is_file():   # asked first: OpenCV's imread prints a WARN line of its own
        raise FileNotFoundError(f"cannot read {path}")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"cannot read {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_gray(path: Path) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"cannot read {path}")
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise FileNotFoundError(f"cannot read {path}")
    return image


def read_mask(path: Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    """A 0/255 mask as float32 0..1; a missing file is an empty mask (IDRiD: lesion absent)."""
    if not path.exists():
        assert shape is not None, path
        return np.zeros(shape, np.float32)
    return read_gray(path).astype(np.float32) / 255.0


def letterbox(image: np.ndarray, canvas: tuple[int, int] = LOCATOR_CANVAS) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Fit ``image`` into a ``canvas`` (w, h) keeping its aspect; returns (canvas, scale, (dx, dy))
    with canvas_xy = image_xy * scale + (dx, dy)."""
    cw, ch = canvas
    h, w = image.shape[:2]
    scale = min(cw / w, ch / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
    dx, dy = (cw - nw) // 2, (ch - nh) // 2
    out = np.zeros((ch, cw) + image.shape[2:], image.dtype)
    out[dy:dy + nh, dx:dx + nw] = resized
    return out, scale, (dx, dy)


def build_drive_cache(data: Path | None = None) -> Path:
    data = public_data_dir(data) / "DRIVE"
    out = public_sets_cache_dir() / "drive.npz"
    arrays: dict[str, np.ndarray] = {}
    for split, numbers in (("training", range(21, 41)), ("test", range(1, 21))):
        images, vessels, fovs, second = [], [], [], []
        for n in numbers:
            images.append(read_rgb(data / split / "images" / f"{n:02d}_{split}.tif"))
            vessels.append(read_gray(data / split / "1st_manual" / f"{n:02d}_manual1.png"))
            fovs.append(read_gray(data / split / "mask" / f"{n:02d}_{split}_mask.png"))
            if split == "test":
                second.append(read_gray(data / split / "2nd_manual" / f"{n:02d}_manual2.png"))
        arrays[f"{split}_images"] = np.stack(images)
        arrays[f"{split}_vessels"] = (np.stack(vessels) > 127).astype(np.uint8)
        arrays[f"{split}_fov"] = (np.stack(fovs) > 127).astype(np.uint8)
        arrays[f"{split}_numbers"] = np.array(list(numbers))
        if second:
            arrays["test_vessels_2nd"] = (np.stack(second) > 127).astype(np.uint8)
    np.savez_compressed(out, **arrays)  # type: ignore[arg-type]  # the keywords are array names, not options
    return out


def build_drishti_cache(data: Path | None = None) -> Path:
    """Each photo rescaled so its disc is DISC_DIAMETER_PX wide; disc/cup soft maps kept (0..255)."""
    data = public_data_dir(data) / "Drishti-GS1"
    out = public_sets_cache_dir() / "drishti"
    out.mkdir(exist_ok=True)
    names = []
    with open(data / "index.csv") as handle:
        for row in csv.DictReader(handle):
            name = row["name"]
            x0, y0, x1, y1 = (float(v) for v in row["disc_bbox"].split())
            scale = DISC_DIAMETER_PX / max(x1 - x0, y1 - y0)
            image = read_rgb(data / "images" / f"{name}.jpg")
            size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
            disc = read_gray(data / "disc_softmap" / f"{name}.png")
            cup = read_gray(data / "cup_softmap" / f"{name}.png")
            np.savez_compressed(
                out / f"{name}.npz",
                image=cv2.resize(image, size, interpolation=cv2.INTER_AREA),
                disc=cv2.resize(disc, size, interpolation=cv2.INTER_AREA),
                cup=cv2.resize(cup, size, interpolation=cv2.INTER_AREA),
                scale=np.float32(scale / 2),   # cache pixels per ORIGINAL pixel (staged = original / 2)
            )
            names.append(name)
    (out / "names.txt").write_text("\n".join(names) + "\n")
    return out


def build_idrid_landmarks_cache(data: Path | None = None) -> Path:
    data = public_data_dir(data) / "IDRiD-landmarks"
    out = public_sets_cache_dir() / "idrid_landmarks.npz"
    images, points, names, confident, scales, boxes = [], [], [], [], [], []
    with open(data / "landmarks.csv") as handle:
        for row in csv.DictReader(handle):
            image = read_rgb(data / "images" / row["image"])
            boxed, scale, (dx, dy) = letterbox(image)
            xy = np.array([[float(row["disc_x"]), float(row["disc_y"])],
                           [float(row["fovea_x"]), float(row["fovea_y"])]], np.float32)
            images.append(boxed)
            points.append(xy * scale + np.array([dx, dy], np.float32))
            names.append(row["image"])
            confident.append(int(row["confident"]))
            scales.append(scale / 3)   # canvas pixels per ORIGINAL pixel (the set is downscaled by 3)
            boxes.append((dx, dy, dx + round(image.shape[1] * scale), dy + round(image.shape[0] * scale)))
    np.savez(out, images=np.stack(images), points=np.stack(points), names=np.array(names),
             confident=np.array(confident), scale=np.array(scales, np.float32),
             photo_box=np.array(boxes, np.int32))   # where the photo lies inside the canvas
    return out


def build_idrid_lesion_cache(data: Path | None = None) -> Path:
    """IDRiD-segmentation at LESION_SCALE: images (N, H, W, 3), masks (N, 5, H, W) area fractions
    0..255 in the order MA, HE, EX, SE, optic disc. Stored as .npy so training can memory-map them."""
    data = public_data_dir(data) / "IDRiD-segmentation"
    out = public_sets_cache_dir() / "idrid_lesions"
    out.mkdir(exist_ok=True)
    names = sorted(p.stem for p in (data / "images").glob("IDRiD_*.jpg"))
    images, masks = [], []
    for name in names:
        image = read_rgb(data / "images" / f"{name}.jpg")
        size = (round(image.shape[1] * LESION_SCALE), round(image.shape[0] * LESION_SCALE))
        images.append(cv2.resize(image, size, interpolation=cv2.INTER_AREA))
        channels = []
        for folder in (*LESION_FOLDERS, "optic_disc"):
            mask = read_mask(data / folder / f"{name}.png", image.shape[:2])
            channels.append(np.round(cv2.resize(mask, size, interpolation=cv2.INTER_AREA) * 255))
        masks.append(np.stack(channels).astype(np.uint8))
    np.save(out / "images.npy", np.stack(images))
    np.save(out / "masks.npy", np.stack(masks))
    (out / "names.txt").write_text("\n".join(names) + "\n")
    return out


def thumbnail(image_rgb: np.ndarray) -> np.ndarray:
    """A 48 × 32 grey thumbnail, zero-mean unit-norm: enough to recognise the same photo."""
    small = cv2.resize(cv2.cvtColor(image_rgb, cv2.COLOR_RGB2GRAY), (48, 32), interpolation=cv2.INTER_AREA)
    small = small.astype(np.float32) - small.mean()
    return small.ravel() / (np.linalg.norm(small) + 1e-6)


def find_idrid_overlap(threshold: float = 0.985) -> Path:
    """Pairs (segmentation name, landmarks name) that are the same photo under two IDRiD numberings
    (the README warns of them), by correlation of thumbnails. Written to idrid_overlap.csv so that
    no network is validated on a photo it trained on under another name."""
    landmarks = np.load(public_sets_cache_dir() / "idrid_landmarks.npz")
    lesions = public_sets_cache_dir() / "idrid_lesions"
    seg_images = np.load(lesions / "images.npy", mmap_mode="r")
    seg_names = (lesions / "names.txt").read_text().split()
    land = np.stack([thumbnail(im[y0:y1, x0:x1])
                     for im, (x0, y0, x1, y1) in zip(landmarks["images"], landmarks["photo_box"])])
    out = public_sets_cache_dir() / "idrid_overlap.csv"
    with open(out, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["segmentation", "landmarks", "correlation"])
        for name, image in zip(seg_names, seg_images):
            corr = land @ thumbnail(np.asarray(image))
            best = int(np.argmax(corr))
            if corr[best] >= threshold:
                writer.writerow([name, str(landmarks["names"][best]), f"{corr[best]:.4f}"])
    return out


def idrid_overlap() -> dict[str, str]:
    """segmentation name -> landmarks image name for photos present in both IDRiD sets."""
    path = public_sets_cache_dir() / "idrid_overlap.csv"
    if not path.exists():
        return {}
    with open(path) as handle:
        return {row["segmentation"]: row["landmarks"] for row in csv.DictReader(handle)}


def build_all(data: Path | None = None) -> None:
    for builder in (build_drive_cache, build_drishti_cache, build_idrid_landmarks_cache,
                    build_idrid_lesion_cache):
        print(builder.__name__, "->", builder(data), flush=True)
    print("overlap ->", find_idrid_overlap(), flush=True)


if __name__ == "__main__":   # python -m models.segmentation.cache [DATA_DIR]
    import sys

    build_all(Path(sys.argv[1]) if len(sys.argv) > 1 else None)
