"""Regional labels built from public IDRiD annotations, standing in for the readers' consensus.

Two labellings (the public data folder's README.md; ``--data`` or ``$OCTANT_PUBLIC_DATA``):
- ``IDRiD-segmentation``: pixel masks, exhaustive (no mask = no such lesion). Every lesion pixel
  is classified into its disc–fovea region with ``annotate.geometry``; the disc centre is the
  centroid of the optic-disc mask. The fovea is not in this set: it is taken from
  ``IDRiD-landmarks`` when the same photo appears there (matched by content, the two sets number
  photos independently), else placed 2.5 disc diameters from the disc towards the image centre
  on the disc's row (a macula-centred photo; the disc–fovea distance is about 2.5 disc diameters).
- ``IDRiD-landmarks``: disc and fovea centres and a clinician's boxes (CODRAS), not exhaustive. A
  box says "present in the regions it covers"; no box is "unknown" (left out) unless the photo's
  retinopathy grade is 0 (no DR: no microaneurysm, haemorrhage or exudate, so absent). A box on
  a grade-0 photo contradicts the grade and the photo is left out as uncertain. A box cue is
  incomplete (``cue_complete`` False): the regions without a box are unknown, so guidance leaves
  them alone and AIR is not measured there. A photo also in the segmentation set keeps only its masks.

Each sample also keeps its lesions themselves (``extra``: the mask file, or the boxes), for
``FindingDataset(cue_source="lesions")``: starters may be guided by where the lesions are, a finer
cue than the regions they fall in (see ``models.findings.data.lesion_cue``).

Microaneurysms have no boxes of their own: the boxes labelled haemorrhages include them, so a
red-lesion box on a photo of grade ≥ 1 (ICDR: at least microaneurysms) marks microaneurysm
regions too. Cotton wool patches (IDRiD "soft exudates") come from the segmentation set only, with
grade-0 photos as further negatives.
"""
from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from annotate.geometry import RegionGeometry
from annotate.services.photos import read_fundus
from models.findings.data import FindingSample
from storage.errors import OctantError
from storage.locations import public_data_dir

SEGMENTATION_FOLDERS = {"haemorrhage": "haemorrhages", "hard_exudate": "hard_exudates",
                        "microaneurysm": "microaneurysms", "cotton_wool_patch": "soft_exudates"}
BOX_LABELS = {"haemorrhage": "haemorrhages", "hard_exudate": "hard_exudates",
              "microaneurysm": "haemorrhages"}
REFERENCE_FINDINGS = tuple(SEGMENTATION_FOLDERS)
FOVEA_DISC_DIAMETERS = 2.5       # typical disc–fovea distance in disc diameters
SEGMENTATION_REDUCE = 4          # 4288 × 2848 decoded at 1072 × 712
LANDMARKS_SCALE = 3              # IDRiD-landmarks photos are the originals downscaled by 3 ...
LANDMARKS_SHAPE = (949, 1429)    # ... to 1429 × 949 (data README), the frame of its CSV coordinates
CERTAIN_TWIN, PROBABLE_TWIN, TWIN_MARGIN = 0.99, 0.9, 0.03  # see match_same_photos


def idrid_reference_samples(finding: str, data_root: Path | None = None) -> list[FindingSample]:
    """Present/absent samples of ``finding`` from both IDRiD labellings, duplicates grouped."""
    if finding not in SEGMENTATION_FOLDERS:
        raise ValueError(f"public labels exist for {REFERENCE_FINDINGS}, not {finding!r}")
    root = public_data_dir(data_root)
    landmark_samples = _landmark_set_samples(finding, root / "IDRiD-landmarks")
    segmentation_samples = _segmentation_set_samples(finding, root / "IDRiD-segmentation",
                                                     root / "IDRiD-landmarks")
    # A photo in both sets keeps its exhaustive masks; its boxes would only repeat it, less completely.
    masked = {s.group for s in segmentation_samples}
    return segmentation_samples + [s for s in landmark_samples if s.group not in masked]


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _landmark_set_samples(finding: str, folder: Path) -> list[FindingSample]:
    grades = {r["image"]: int(r["retinopathy_grade"]) for r in _rows(folder / "grades.csv")}
    boxes: dict[str, list[tuple[float, ...]]] = {}
    for r in _rows(folder / "lesion_boxes.csv"):
        if r["label"] == BOX_LABELS.get(finding):
            boxes.setdefault(r["image"], []).append(tuple(float(r[k]) for k in ("x0", "y0", "x1", "y1")))
    samples = []
    for r in _rows(folder / "landmarks.csv"):
        name, grade = r["image"], grades.get(r["image"])
        disc = (float(r["disc_x"]), float(r["disc_y"]))
        fovea = (float(r["fovea_x"]), float(r["fovea_y"]))
        has_box = name in boxes
        if grade is None or (grade == 0 and has_box):
            continue  # no grade, or a box that contradicts "no DR": uncertain
        if finding == "cotton_wool_patch":
            present = False if grade == 0 else None
        elif finding == "microaneurysm":
            present = False if grade == 0 else (True if has_box else None)
        else:
            present = True if has_box else (False if grade == 0 else None)
        if present is None:
            continue
        path = folder / "images" / name
        regions: frozenset[int] = frozenset()
        if present:
            regions = _regions_of_boxes(boxes[name], disc, fovea, LANDMARKS_SHAPE)
        samples.append(FindingSample(
            key=f"idrid-landmarks-{Path(name).stem}", image_path=path, present=present, regions=regions,
            disc=disc, fovea=fovea, source="reference:IDRiD-landmarks boxes + grades",
            group=f"landmarks:{name}", confident=r["confident"] == "1", cue_complete=not present,
            extra={"decoded_shape": LANDMARKS_SHAPE, "grade": grade,
                   "lesion_boxes": tuple(boxes[name]) if present else ()}))
    return samples


def _regions_of_boxes(boxes, disc, fovea, shape, step: float = 2.0) -> frozenset[int]:
    geometry = RegionGeometry.from_landmarks(disc, fovea, shape)
    codes: set[int] = set()
    for x0, y0, x1, y1 in boxes:
        xs, ys = np.meshgrid(np.arange(x0, x1 + step, step), np.arange(y0, y1 + step, step))
        codes.update(int(c) for c in np.unique(geometry.classify_xy(xs.ravel(), ys.ravel())))
    codes.discard(0)
    return frozenset(codes)


def _segmentation_set_samples(finding: str, folder: Path, landmarks_folder: Path) -> list[FindingSample]:
    manifest = _rows(folder / "manifest.csv")
    matches = match_same_photos(tuple(folder / "images" / r["image"] for r in manifest),
                                landmarks_folder / "images", SEGMENTATION_REDUCE)
    landmark_rows = {r["image"]: r for r in _rows(landmarks_folder / "landmarks.csv")}
    samples = []
    for r in manifest:
        name = r["image"]
        path = folder / "images" / name
        shape = read_fundus(path, SEGMENTATION_REDUCE).shape[:2]
        disc, diameter = _disc_from_mask(folder / "optic_disc" / f"{Path(name).stem}.png")
        twin, certain = matches.get(path, (None, False))
        if certain and twin is not None:
            fx, fy = float(landmark_rows[twin.name]["fovea_x"]), float(landmark_rows[twin.name]["fovea_y"])
            scale = LANDMARKS_SCALE / SEGMENTATION_REDUCE
            fovea, fovea_source = (fx * scale, fy * scale), "IDRiD-landmarks (same photo)"
        else:
            towards_centre = 1.0 if disc[0] < shape[1] / 2 else -1.0
            fovea = (disc[0] + towards_centre * FOVEA_DISC_DIAMETERS * diameter, disc[1])
            fovea_source = "estimated 2.5 disc diameters towards the centre"
        mask_path = folder / SEGMENTATION_FOLDERS[finding] / f"{Path(name).stem}.png"
        regions = _regions_of_mask(mask_path, disc, fovea, shape) if mask_path.is_file() else frozenset()
        samples.append(FindingSample(
            key=f"idrid-segmentation-{Path(name).stem}", image_path=path, present=bool(regions),
            regions=regions, disc=disc, fovea=fovea, source="reference:IDRiD-segmentation masks",
            group=f"landmarks:{twin.name}" if twin is not None else f"segmentation:{name}",
            # Fit for validation when its fovea is the twin's, and that twin's name was checked.
            confident=certain and twin is not None and landmark_rows[twin.name]["confident"] == "1", reduce=SEGMENTATION_REDUCE,
            extra={"decoded_shape": shape, "fovea_source": fovea_source,
                   "lesion_mask": (mask_path, SEGMENTATION_REDUCE) if regions else None}))
    return samples


def _read_mask(path: Path) -> np.ndarray:
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise OctantError(f"The public mask {path} is missing or unreadable; copy the data set again.")
    return mask


def _disc_from_mask(path: Path) -> tuple[tuple[float, float], float]:
    """Centroid and equivalent diameter of the optic-disc mask, in 1/SEGMENTATION_REDUCE pixels."""
    mask = _read_mask(path)
    ys, xs = np.nonzero(mask)
    scale = 1 / SEGMENTATION_REDUCE
    centre = ((xs.mean() + 0.5) * scale, (ys.mean() + 0.5) * scale)
    return (float(centre[0]), float(centre[1])), float(2 * np.sqrt(len(xs) / np.pi) * scale)


def _regions_of_mask(path: Path, disc, fovea, shape) -> frozenset[int]:
    mask = _read_mask(path)
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return frozenset()
    scale = 1 / SEGMENTATION_REDUCE
    geometry = RegionGeometry.from_landmarks(disc, fovea, shape)
    codes = set(np.unique(geometry.classify_xy((xs + 0.5) * scale, (ys + 0.5) * scale)).tolist())
    codes.discard(0)
    return frozenset(int(c) for c in codes)


def _thumbnail(path: Path, reduce: int) -> np.ndarray:
    """High-passed 144 × 96 grey thumbnail, unit norm: fine detail tells two eyes apart."""
    grey = cv2.cvtColor(read_fundus(path, reduce), cv2.COLOR_BGR2GRAY)
    small = cv2.resize(grey, (144, 96), interpolation=cv2.INTER_AREA).astype(np.float64)
    small = (small - cv2.GaussianBlur(small, (0, 0), 4)).ravel()
    small -= small.mean()
    return small / (np.linalg.norm(small) + 1e-9)


@lru_cache(maxsize=4)
def match_same_photos(photos: tuple[Path, ...], other_folder: Path, reduce: int) -> dict[Path, tuple[Path, bool]]:
    """For each photo, its likely twin in ``other_folder`` and whether the match is certain.

    Twins found on this data correlate ≥ 0.995 (certain: landmarks may be copied); a best match
    ≥ 0.9 that stands out from the runner-up by ≥ 0.03 is probable: enough to keep the two on one
    side of a split, not to copy landmarks.
    """
    others = sorted(other_folder.glob("*.jpg"))
    other_thumbs = np.stack([_thumbnail(p, 2) for p in others])
    matches = {}
    for photo in photos:
        correlation = other_thumbs @ _thumbnail(photo, reduce * 2)
        best, runner_up = np.argsort(correlation)[::-1][:2]
        if correlation[best] >= CERTAIN_TWIN:
            matches[photo] = (others[best], True)
        elif correlation[best] >= PROBABLE_TWIN and correlation[best] - correlation[runner_up] >= TWIN_MARGIN:
            matches[photo] = (others[best], False)
    return matches
