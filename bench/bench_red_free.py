"""Red-free detection (``models.segmentation.red_free.is_red_free``) on real photos.

Every public colour photo (IDRiD-landmarks, IDRiD-segmentation, Drishti-GS1, DRIVE), brought to a
long side of 1024 pixels, is checked as it is and in forms made from it: ones that must not be
called red-free (darkened, reddened, JPEG-compressed colour) and red-free ones as cameras export
them (grey, green with red and blue zero, with a faint leak, with a black level, pale green).
Counts per form; writes bench/results/bench_red_free.json. Accuracy only, no speed figure.

    python bench/bench_red_free.py [--data DIR]
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from annotate.services.image_files import find_image_files  # noqa: E402
from models.segmentation.red_free import is_red_free, red_free_version  # noqa: E402
from storage.locations import public_data_dir  # noqa: E402

FOLDERS = ("IDRiD-landmarks/images", "IDRiD-segmentation/images", "Drishti-GS1/images",
           "DRIVE/training/images", "DRIVE/test/images")
LONG_SIDE = 1024


def jpeg(image: np.ndarray, quality: int = 70) -> np.ndarray:
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(encoded, cv2.IMREAD_COLOR)


def from_green(image: np.ndarray, red: Callable, blue: Callable) -> np.ndarray:
    """BGR: red and blue as functions of the photo's green."""
    green = image[..., 1].astype(np.float32)
    return np.clip(np.stack([blue(green), green, red(green)], axis=-1), 0, 255).astype(np.uint8)


# form -> (how it is made from a colour photo, whether it is red-free)
FORMS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], bool]] = {
    "colour": (lambda i: i, False),
    "colour, JPEG quality 50": (lambda i: jpeg(i, 50), False),
    "colour darkened to 20 %": (lambda i: (i * 0.2).astype(np.uint8), False),
    "colour, green and blue halved (reddish)": (lambda i: (i * np.array([0.5, 0.5, 1.0])).astype(np.uint8), False),
    "colour, blue replaced by green": (lambda i: np.stack([i[..., 1], i[..., 1], i[..., 2]], -1), False),
    "grey (green on 3 channels), JPEG 70": (lambda i: jpeg(red_free_version(i)), True),
    "green only (red = blue = 0), JPEG 70": (lambda i: jpeg(i * np.array([0, 1, 0], np.uint8)), True),
    "green, leak: red 0.15 G + 6, blue 0.1 G + 4": (lambda i: from_green(i, lambda g: 0.15 * g + 6,
                                                                          lambda g: 0.1 * g + 4), True),
    "green, black level: red = blue = 8": (lambda i: from_green(i, lambda g: 8 + 0 * g, lambda g: 8 + 0 * g), True),
    "pale green (red = blue = 0.5 G), JPEG 70": (lambda i: jpeg(from_green(i, lambda g: 0.5 * g,
                                                                           lambda g: 0.5 * g)), True),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="folder of the public data sets (default $OCTANT_PUBLIC_DATA)")
    args = parser.parse_args()
    data = public_data_dir(args.data)
    paths = find_image_files([data / folder for folder in FOLDERS if (data / folder).is_dir()])
    called = {form: 0 for form in FORMS}
    wrong: dict[str, list[str]] = {form: [] for form in FORMS}
    photos = 0
    for path in paths:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            continue
        scale = LONG_SIDE / max(image.shape[:2])
        if scale < 1:
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        photos += 1
        for form, (make, red_free) in FORMS.items():
            said = is_red_free(make(image))
            called[form] += said
            if said != red_free:
                wrong[form].append(path.name)
    print(f"{photos} photos ({', '.join(FOLDERS)}), long side {LONG_SIDE}")
    for form, (_, red_free) in FORMS.items():
        print(f"  {form:<46} called red-free: {called[form]:>4} of {photos}  (should be {'all' if red_free else 'none'})")
    out = REPO / "bench" / "results" / "bench_red_free.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(photos=photos, called_red_free=called, wrong=wrong), indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    from main import one_line_errors  # no public data named: one line, not a traceback

    with one_line_errors(Path(__file__).name):
        sys.exit(main())
