"""Training data for the guided networks: photos, per-finding labels and regional cues.

Two sources give the same ``FindingSample``s:
- the project database (``consensus_samples``): the readers' consensus per finding (Son et al.
  §3.1: absent when nobody marked it, present when k of 3 did, uncertain left out), the cue being
  the union of the marking readers' regions; or a reviewer's adjudicated answer where the project's
  label source is "adjudicated, else consensus" (``annotate.services.final_labels``);
- a public reference labelling (``models.findings.reference_labels``) standing in for consensus, marked
  ``source="reference:..."``.

A sample's photo is decoded by the app's one photo reader (``annotate.services.photos.read_fundus``:
JPEG, PNG, TIFF and DICOM alike), its black border cropped (``annotate.fov``), resized to the network
input and cached (a project's photos in the project's ``cache/`` folder, public photos in the user's
cache folder; ``storage.locations``); its regions are rasterised at the activation map's size with
``annotate.geometry.region_mask`` over the same crop box (``mode="area"``: a cell on a region border
gets the covered fraction, a soft version of the paper's binary M). Negatives get an all-zero cue.
With ``cue_source="lesions"`` a sample that carries its lesions (public masks or boxes, see
``models.findings.reference_labels``) is cued by the map cells holding them instead (``lesion_cue``).
Augmentation (``random_affine``) runs on whole batches, on the training device, so the photo and
its cue move together and draw from torch's RNG, which the engine reseeds each epoch.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from annotate.fov import FieldOfView, crop_box, detect_fov
from annotate.geometry import region_mask
from annotate.services.photos import check_unchanged, read_fundus
from storage.errors import BadImageError, OctantError
from storage.locations import public_cache_dir

if TYPE_CHECKING:
    from storage.database import Database

CUE_SOURCES = ("regions", "lesions")
# A map cell's activation sees well past the cell, so a lesion's neighbours are not "outside" it.
LESION_CUE_DILATION_CELLS = 1


@dataclass(frozen=True)
class FindingSample:
    key: str                          # unique; names the cached photo
    image_path: Path
    present: bool
    regions: frozenset[int]           # cue: region codes 1..8 (empty for negatives)
    disc: tuple[float, float] | None  # landmarks in decoded pixels (needed when regions exist)
    fovea: tuple[float, float] | None
    source: str                       # "consensus" or "reference:<labelling>"
    group: str = ""                   # one photo under several names shares a group
    confident: bool = True            # fit for validation (public data: name match checked)
    reduce: int = 1                   # decode at 1/reduce size (JPEG decoders do this cheaply)
    crop: tuple[int, int, int, int] | None = None  # FOV crop box in decoded pixels; None: detect
    # The cue names every region holding the finding (readers, exhaustive masks). Non-exhaustive
    # boxes leave the other regions unknown: no guidance there, and no AIR measured on them.
    cue_complete: bool = True
    extra: dict = field(default_factory=dict, compare=False)
    sha256: str | None = None         # a project photo's, from import (``photos_as_imported``)


def fov_square(decoded_bgr: np.ndarray, size: int, crop: tuple[int, int, int, int] | None = None
               ) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The network's view of a photo: the field of view's crop box (``crop``, else detected) cut
    out and squeezed to ``size`` × ``size`` (BGR uint8), and the box. Training and inference
    (``models.findings.inference``) both go through here."""
    box = crop if crop is not None else crop_box(detect_fov(decoded_bgr), decoded_bgr.shape)
    x0, y0, x1, y1 = (int(v) for v in box)
    return cv2.resize(decoded_bgr[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_AREA), (x0, y0, x1, y1)


def photo_tensor(rgb: np.ndarray) -> torch.Tensor:
    """RGB uint8 H × W × 3 → the network's float input 3 × H × W in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float() / 255.0


def cached_photo(path: Path, key: str, size: int, reduce: int = 1,
                 crop: tuple[int, int, int, int] | None = None,
                 cache_root: Path | None = None) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """RGB uint8 ``size``×``size`` photo with its black border cropped, and the crop box used.

    The crop box is in decoded pixels (1/``reduce`` of the original). Cached as PNG + box JSON
    under ``<cache_root>/photo-cache`` (default: the user's cache folder, for public photos; a
    project's photos are cached in ``storage.locations.project_cache_dir``).
    """
    folder = Path(cache_root or public_cache_dir()) / "photo-cache" / str(size)
    png, box_file = folder / f"{key}.png", folder / f"{key}.box.json"
    if png.is_file() and box_file.is_file():
        image = cv2.imread(str(png), cv2.IMREAD_COLOR)
        if image is not None:
            x0, y0, x1, y1 = json.loads(box_file.read_text())
            return image[..., ::-1].copy(), (x0, y0, x1, y1)
    resized, box = fov_square(read_fundus(path, reduce), size, crop)
    folder.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(png), resized)
    box_file.write_text(json.dumps([int(v) for v in box]))
    return resized[..., ::-1].copy(), box


def regional_cue(sample: FindingSample, decoded_shape: tuple[int, int],
                 box: tuple[int, int, int, int], map_size: int) -> np.ndarray:
    """The sample's regions over the crop box at the activation map's size (all zero if none)."""
    if not sample.regions:
        return np.zeros((map_size, map_size), np.float32)
    if sample.disc is None or sample.fovea is None:
        raise OctantError(f"Photo {sample.key} has regions but no disc and fovea; place both landmarks first.")
    return region_mask(sample.regions, sample.disc, sample.fovea, decoded_shape, (map_size, map_size),
                       mode="area", box=box)


def lesion_cue(sample: FindingSample, box: tuple[int, int, int, int], map_size: int) -> np.ndarray | None:
    """The map cells (over the crop box) that hold the sample's lesions, widened by
    ``LESION_CUE_DILATION_CELLS``; None when the sample carries no lesion detail.

    ``extra["lesion_mask"]`` is (mask file, its scale to decoded pixels); ``extra["lesion_boxes"]``
    are boxes in decoded pixels. Regions are what readers give; lesions, where public data has
    them, tell the starters much more precisely where activation belongs.
    """
    x0, y0, x1, y1 = box
    mask_file = sample.extra.get("lesion_mask")
    boxes = sample.extra.get("lesion_boxes")
    if mask_file:
        path, scale = mask_file
        mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if mask is None:
            raise BadImageError(f"The lesion mask {path} cannot be read; check the public data folder.")
        inside = mask[int(y0 * scale):int(y1 * scale), int(x0 * scale):int(x1 * scale)] > 0
        cells = cv2.resize(inside.astype(np.float32), (map_size, map_size), interpolation=cv2.INTER_AREA) > 0
    elif boxes:
        cells = np.zeros((map_size, map_size), bool)
        sx, sy = map_size / (x1 - x0), map_size / (y1 - y0)
        for bx0, by0, bx1, by1 in boxes:
            c0, c1 = max(0, math.floor((bx0 - x0) * sx)), min(map_size, math.ceil((bx1 - x0) * sx))
            r0, r1 = max(0, math.floor((by0 - y0) * sy)), min(map_size, math.ceil((by1 - y0) * sy))
            cells[r0:r1, c0:c1] = True
    else:
        return None
    if LESION_CUE_DILATION_CELLS:
        side = 2 * LESION_CUE_DILATION_CELLS + 1
        cells = cv2.dilate(cells.astype(np.uint8), np.ones((side, side), np.uint8)) > 0
    return cells.astype(np.float32)


class FindingDataset(Dataset):
    """Items ``(image float[3, S, S] in [0, 1], present float, cue float[m, m], cue complete float)``
    (§3.1 input)."""

    def __init__(self, samples: list[FindingSample], input_size: int, map_size: int,
                 cache_root: Path | None = None, cue_source: str = "regions"):
        if cue_source not in CUE_SOURCES:
            raise OctantError(f"The cue source must be one of {', '.join(CUE_SOURCES)}, not {cue_source!r}.")
        self.samples, self.cue_source = list(samples), cue_source
        self.photos: list[np.ndarray] = []
        cues = []
        for sample in self.samples:
            photo, box = cached_photo(sample.image_path, sample.key, input_size, sample.reduce,
                                      sample.crop, cache_root)
            self.photos.append(photo)
            cue = lesion_cue(sample, box, map_size) if cue_source == "lesions" and sample.present else None
            if cue is None:
                shape = sample.extra.get("decoded_shape") or _decoded_shape(sample)
                cue = regional_cue(sample, shape, box, map_size)
            cues.append(cue)
        self.cues = np.stack(cues) if cues else np.zeros((0, map_size, map_size), np.float32)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        image = photo_tensor(self.photos[index])
        sample = self.samples[index]
        return (image, torch.tensor(float(sample.present)), torch.from_numpy(self.cues[index]),
                torch.tensor(float(sample.cue_complete)))

    def label_snapshot(self) -> dict:
        """What the model saw, for the model registry: per photo, label, cue regions and source."""
        return {s.key: {"present": s.present, "regions": sorted(s.regions), "source": s.source,
                        "cue_complete": s.cue_complete, "cue": self.cue_source} for s in self.samples}


def _decoded_shape(sample: FindingSample) -> tuple[int, int]:
    return read_fundus(sample.image_path, sample.reduce).shape[:2]


class _ProjectPhoto(Protocol):
    @property
    def image_path(self) -> Path: ...

    @property
    def sha256(self) -> str | None: ...


PhotoT = TypeVar("PhotoT", bound=_ProjectPhoto)


def photos_as_imported(photos: list[PhotoT]) -> tuple[list[PhotoT], list[str]]:
    """The samples (``FindingSample`` or ``GradedPhoto``) whose photo file still holds what was
    imported, and one sentence for each other one: photos are read where they were imported from,
    and a camera numbering its files again puts another patient's photo under a known name, which
    must not be learnt with this one's labels. Public photos (no SHA-256) are kept unchecked."""
    kept: list[PhotoT] = []
    skipped: list[str] = []
    for photo in photos:
        try:
            if photo.sha256 is not None:
                check_unchanged(photo.image_path, photo.sha256)
        except BadImageError as error:
            skipped.append(f"{error} It was left out of training.")
            continue
        kept.append(photo)
    return kept, skipped


def split_derivation_validation(samples: list, validation_fraction: float = 0.1, seed: int = 0,
                                stratum=lambda sample: sample.present,
                                fold: tuple[int, int] | None = None) -> tuple[list, list]:
    """Son et al. §3.1: 90 % derivation, 10 % validation, drawn per group and per class.

    A photo known under two names (``group``) lands wholly on one side; only groups whose samples
    are all ``confident`` can be drawn for validation (unless a stratum has none); each stratum (present / absent, or each
    diagnosis class) is drawn separately so that both sides keep the prevalence.

    ``fold = (i, k)`` (1 ≤ i ≤ k) takes the i-th of k equal parts of each stratum's eligible groups
    instead of ``validation_fraction``: the k folds of one seed validate every eligible photo exactly
    once, so k runs give a paired comparison on all of them rather than on one fifth.
    """
    if fold is not None and not 1 <= fold[0] <= fold[1]:
        raise OctantError(f"Fold {fold[0]}/{fold[1]} does not exist; give I/K with 1 ≤ I ≤ K, e.g. 1/5.")
    groups: dict[str, list[FindingSample]] = {}
    for sample in samples:
        groups.setdefault(sample.group or sample.key, []).append(sample)
    rng = np.random.default_rng(seed)
    validation_groups: set[str] = set()
    for value in sorted({stratum(members[0]) for members in groups.values()}):
        names = sorted(g for g, members in groups.items() if stratum(members[0]) == value)
        # A class with no confident photo at all (e.g. cotton wool patches, only in IDRiD-segmentation)
        # is drawn from all its photos, else validation would have no positives to measure.
        eligible = [g for g in names if all(s.confident for s in groups[g])] or names
        drawn = rng.permutation(eligible).tolist()
        if fold is not None:
            validation_groups.update(np.array_split(np.array(drawn, dtype=object), fold[1])[fold[0] - 1].tolist())
            continue
        count = min(len(eligible), math.ceil(validation_fraction * len(names))) if names else 0
        validation_groups.update(drawn[:count])
    derivation = [s for g, members in groups.items() if g not in validation_groups for s in members]
    validation = [s for g, members in groups.items() if g in validation_groups for s in members]
    return derivation, validation


def consensus_samples(db: Database, finding_code: str, split: str, k: int = 2, root: Path | None = None
                      ) -> list[FindingSample]:
    """Present/absent samples of one finding from the project's final labels in its database.

    The final labels are the readers' consensus, or a reviewer's adjudicated answer where the
    project's label source says so (``annotate.services.final_labels``). Uncertain images are left
    out. The cue landmarks are the mean of the landmarks the readers set (regions are drawn from
    them); a positive without any reader's landmarks is left out too.
    """
    from annotate.services.final_labels import final_labels
    from storage.images import list_images
    from storage.review import iter_all_reads

    reads = list(iter_all_reads(db))
    landmarks: dict[int, list] = {}
    for image_id, _, read in reads:
        if read.done and read.landmarks is not None:
            landmarks.setdefault(image_id, []).append(read.landmarks)
    labels = final_labels(db, [finding_code], reads=reads, k=k)
    images = {record.id: record for record in list_images(db, split)}
    samples = []
    for image_id in labels.image_ids():
        record = images.get(image_id)
        finding = labels.finding(image_id, finding_code)
        if record is None or finding.state == "uncertain":
            continue
        marks = landmarks.get(image_id, [])
        present = finding.state == "present"
        if present and not marks:
            continue
        disc = tuple(np.mean([m.disc for m in marks], axis=0).tolist()) if marks else None
        fovea = tuple(np.mean([m.fovea for m in marks], axis=0).tolist()) if marks else None
        box = record.crop or (crop_box(FieldOfView(*record.fov), (record.height, record.width))
                              if record.fov else None)
        samples.append(FindingSample(
            key=f"project-{record.sha256[:16]}", image_path=record.path, present=present,
            regions=finding.regions if present else frozenset(), disc=disc, fovea=fovea,
            source=finding.source, group=record.patient or record.sha256, crop=box,
            extra={"image_id": record.id, "decoded_shape": (record.height, record.width)}, sha256=record.sha256))
    return samples


@dataclass(frozen=True)
class GradedPhoto:
    """A photo with a diagnosis class (index into the project's diagnosis classes)."""

    key: str
    image_path: Path
    label: int
    source: str
    group: str = ""
    confident: bool = True
    reduce: int = 1
    crop: tuple[int, int, int, int] | None = None
    disc: tuple[float, float] | None = None     # decoded pixels, a start for the disc network
    sha256: str | None = None                   # a project photo's, from import (``photos_as_imported``)


def idrid_grade_photos(data_root: Path) -> list[GradedPhoto]:
    """IDRiD-landmarks photos with their retinopathy grade 0–4 (the default diagnosis classes)."""
    import csv

    folder = Path(data_root) / "IDRiD-landmarks"
    with open(folder / "landmarks.csv", newline="") as handle:
        landmarks = {r["image"]: r for r in csv.DictReader(handle)}
    with open(folder / "grades.csv", newline="") as handle:
        grades = list(csv.DictReader(handle))
    photos = []
    for row in grades:
        name, mark = row["image"], landmarks.get(row["image"])
        photos.append(GradedPhoto(
            key=f"idrid-landmarks-{Path(name).stem}", image_path=folder / "images" / name,
            label=int(row["retinopathy_grade"]), source="reference:IDRiD grades", group=f"landmarks:{name}",
            confident=mark is not None and mark["confident"] == "1",
            disc=(float(mark["disc_x"]), float(mark["disc_y"])) if mark else None))
    return photos


def consensus_diagnosis_photos(db: Database, classes: list[str], split: str) -> list[GradedPhoto]:
    """Photos whose readers agree on a diagnosis (majority of gradable reads; ties left out), or
    whose diagnosis a reviewer adjudicated where the project's label source uses adjudication."""
    from annotate.services.final_labels import final_labels
    from storage.images import list_images

    images = {record.id: record for record in list_images(db, split)}
    labels = final_labels(db, [])
    photos = []
    for image_id in labels.image_ids():
        record = images.get(image_id)
        diagnosis, source = labels.diagnosis(image_id)
        if record is None or diagnosis not in classes:
            continue
        box = record.crop or (crop_box(FieldOfView(*record.fov), (record.height, record.width))
                              if record.fov else None)
        photos.append(GradedPhoto(key=f"project-{record.sha256[:16]}", image_path=record.path,
                                  label=classes.index(diagnosis), source=source,
                                  group=record.patient or record.sha256, crop=box, sha256=record.sha256))
    return photos


def random_affine(images: torch.Tensor, maps: torch.Tensor | None = None, *, rotation_deg: float = 0.0,
                  shift: float = 0.0, scale: float = 0.0, shear_deg: float = 0.0,
                  flip: bool = False, vertical_flip: bool = False, intensity: float = 0.0,
                  unit_range: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One random affine per image applied to the photos (bilinear) and their maps (nearest).

    Ranges are symmetric: rotation ±``rotation_deg``, translation ±``shift`` of the size, zoom
    1 ± ``scale``, shear ±``shear_deg``, brightness ×(1 ± ``intensity``). Parameters are drawn on
    the CPU from torch's global RNG so that a seeded epoch repeats exactly on any device.
    ``unit_range`` clamps the photos to [0, 1] afterwards (off for inputs already weighted by a mask).
    """
    n = images.shape[0]

    def uniform(limit: float) -> torch.Tensor:
        return (torch.rand(n) * 2 - 1) * limit

    angle = torch.deg2rad(uniform(rotation_deg))
    shear = torch.deg2rad(uniform(shear_deg))
    zoom = 1 + uniform(scale)
    sign_x = torch.where(torch.rand(n) < 0.5, -1.0, 1.0) if flip else torch.ones(n)
    sign_y = torch.where(torch.rand(n) < 0.5, -1.0, 1.0) if vertical_flip else torch.ones(n)
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotate = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    skew = torch.eye(2).repeat(n, 1, 1)
    skew[:, 0, 1] = torch.tan(shear)
    mirror = torch.diag_embed(torch.stack([sign_x, sign_y], -1))
    theta = torch.zeros(n, 2, 3)
    theta[:, :, :2] = rotate @ skew @ mirror / zoom.view(n, 1, 1)  # output → input sampling grid
    theta[:, :, 2] = torch.stack([uniform(2 * shift), uniform(2 * shift)], dim=1)  # grid spans 2
    brightness = 1 + uniform(intensity)
    theta, brightness = theta.to(images.device, images.dtype), brightness.to(images.device, images.dtype)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    moved = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    moved = moved * brightness.view(n, 1, 1, 1)
    moved = moved.clamp(0, 1) if unit_range else moved
    if maps is None:
        return moved, None
    squeeze = maps.dim() == 3
    stacked = maps.unsqueeze(1) if squeeze else maps
    map_grid = F.affine_grid(theta, list(stacked.shape), align_corners=False)
    moved_maps = F.grid_sample(stacked.to(images.dtype), map_grid, mode="nearest", padding_mode="zeros",
                               align_corners=False)
    return moved, (moved_maps.squeeze(1) if squeeze else moved_maps)
