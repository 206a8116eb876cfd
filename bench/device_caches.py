"""Carry the training caches to a GPU machine that has neither the public data nor room for it.

A lent GPU machine receives only a small folder (tens of MB), so the caches that ``train`` and
``train-seg`` read are packed compactly here and rebuilt there, under ``$OCTANT_CACHE_DIR``:

    attention-mask (IDRiD grades)  photo-cache/224 (lossless WebP) and structure-maps/224-*
                                   (disc, cup, vessel maps per set of weights, one xz array: lossless)
    grades, landmarks CSVs         the public data folder's IDRiD-landmarks/*.csv
    vessels (DRIVE)                public-sets/drive.npz: photos as lossless WebP, masks as PNG

(The lesion network's cache is built there from IDRiD-segmentation itself, 25 MB as published:
its 1/3-scale photos take no less as JPEG of a quality worth training on.)

    python bench/device_caches.py pack --part grades --out .gpu/a      # here
    python bench/device_caches.py unpack --part grades --src .gpu/a --cache DIR --data DIR   # there

Both parts are lossless: the caches rebuilt there equal these pixel for pixel.
"""
from __future__ import annotations

import argparse
import json
import lzma
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from storage.errors import OctantError  # noqa: E402
from storage.locations import public_cache_dir, public_data_dir  # noqa: E402

SIZE = 224             # the attention-mask network's input side (bench_attention_mask)
PARTS = ("grades", "grade-photos", "drive")


def save_xz(path: Path, array: np.ndarray) -> None:
    header = json.dumps({"shape": array.shape, "dtype": str(array.dtype)}).encode()
    path.write_bytes(len(header).to_bytes(4, "little") + header + lzma.compress(np.ascontiguousarray(array).tobytes()))


def load_xz(path: Path) -> np.ndarray:
    blob = path.read_bytes()
    size = int.from_bytes(blob[:4], "little")
    header = json.loads(blob[4:4 + size])
    return np.frombuffer(lzma.decompress(blob[4 + size:]), dtype=header["dtype"]).reshape(header["shape"])


def pack_arrays(arrays, folder: Path) -> None:
    """Each array of an .npz: stacks of 8-bit pictures one lossless image file each (colour as
    WebP, single channel as PNG), anything else as .npy."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in arrays.files:
        array = arrays[name]
        if array.dtype == np.uint8 and array.ndim in (3, 4):
            (folder / name).mkdir(exist_ok=True)
            suffix = ".webp" if array.ndim == 4 else ".png"
            for index, picture in enumerate(array):
                picture = picture[..., ::-1] if array.ndim == 4 else picture   # OpenCV writes BGR
                cv2.imwrite(str(folder / name / f"{index:04d}{suffix}"), np.ascontiguousarray(picture),
                            [cv2.IMWRITE_WEBP_QUALITY, 101] if suffix == ".webp" else [])
        else:
            np.save(folder / f"{name}.npy", array)


def unpack_arrays(folder: Path) -> dict[str, np.ndarray]:
    arrays = {path.stem: np.load(path) for path in folder.glob("*.npy")}
    for stack in (path for path in folder.iterdir() if path.is_dir()):
        pictures = []
        for path in sorted(stack.iterdir()):
            picture = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            pictures.append(picture[..., ::-1] if picture.ndim == 3 else picture)
        arrays[stack.name] = np.ascontiguousarray(np.stack(pictures))
    return arrays


def pack(part: str, out: Path, data: Path | None, cache: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    if part == "grades":
        data = public_data_dir(data)
        csvs = out / "IDRiD-landmarks"
        csvs.mkdir(exist_ok=True)
        for name in ("grades.csv", "landmarks.csv"):
            shutil.copy2(data / "IDRiD-landmarks" / name, csvs / name)
        # One folder per size and disc/cup + vessel weights (224-<fingerprint>): each travels as it is.
        root = cache / "structure-maps"
        keys = sorted(str(p.relative_to(root).with_suffix("")) for p in root.glob(f"{SIZE}*/*.png"))
        maps = np.stack([cv2.imread(str(root / f"{key}.png"), cv2.IMREAD_UNCHANGED) for key in keys])
        (out / "map_keys.txt").write_text("\n".join(keys) + "\n")
        save_xz(out / "structure_maps.xz", maps)
    elif part == "drive":
        pack_arrays(np.load(cache / "public-sets" / "drive.npz"), out / "drive")
    else:
        photos = cache / "photo-cache" / str(SIZE)
        target = out / "photos"
        target.mkdir(exist_ok=True)
        for png in sorted(photos.glob("*.png")):
            image = cv2.imread(str(png), cv2.IMREAD_COLOR)
            cv2.imwrite(str(target / f"{png.stem}.webp"), image, [cv2.IMWRITE_WEBP_QUALITY, 101])   # 101: lossless
            shutil.copy2(photos / f"{png.stem}.box.json", target / f"{png.stem}.box.json")


def unpack(part: str, source: Path, cache: Path, data: Path) -> None:
    if part == "grades":
        shutil.copytree(source / "IDRiD-landmarks", data / "IDRiD-landmarks", dirs_exist_ok=True)
        root = cache / "structure-maps"
        for key, maps in zip((source / "map_keys.txt").read_text().split(), load_xz(source / "structure_maps.xz")):
            (root / key).parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / f"{key}.png"), maps)
    elif part == "drive":
        (cache / "public-sets").mkdir(parents=True, exist_ok=True)
        np.savez(cache / "public-sets" / "drive.npz", **unpack_arrays(source / "drive"))
    else:
        photos = cache / "photo-cache" / str(SIZE)
        photos.mkdir(parents=True, exist_ok=True)
        for webp in sorted((source / "photos").glob("*.webp")):
            cv2.imwrite(str(photos / f"{webp.stem}.png"), cv2.imread(str(webp), cv2.IMREAD_COLOR))
            shutil.copy2(webp.with_name(f"{webp.stem}.box.json"), photos / f"{webp.stem}.box.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("pack", "unpack"))
    parser.add_argument("--part", choices=PARTS, required=True)
    parser.add_argument("--out", type=Path, help="pack: the folder to write")
    parser.add_argument("--src", type=Path, help="unpack: the packed folder")
    parser.add_argument("--cache", type=Path, default=None, help="cache folder (default $OCTANT_CACHE_DIR or the user's)")
    parser.add_argument("--data", type=Path, default=None, help="public data folder (pack: read; unpack: CSVs written)")
    args = parser.parse_args()
    cache = args.cache or public_cache_dir()
    if args.action == "pack":
        if args.out is None:
            parser.error("pack needs --out")
        try:
            pack(args.part, args.out, args.data, cache)
        except OctantError as problem:
            parser.error(str(problem))
    else:
        if args.src is None or args.data is None:
            parser.error("unpack needs --src and --data")
        unpack(args.part, args.src, cache, args.data)
    print(json.dumps({"action": args.action, "part": args.part}))


if __name__ == "__main__":
    main()
