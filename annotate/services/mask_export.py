"""The labels as PNG masks, one folder per photo (``export --format masks``; ``docs/labels.md``).

::

    <out>/index.csv                              one row per file written
    <out>/<image id>/reader-<id>/regions.png     region codes 0..8 (0: outside the field of view)
                                                 from that reader's landmarks
    <out>/<image id>/reader-<id>/<finding>.png   0/255: the union of the regions the reader chose
    <out>/<image id>/consensus/regions.png       region codes from the readers' mean landmarks
    <out>/<image id>/consensus/<finding>.png     0/255: union of the marking readers' regions,
                                                 where the consensus says present
    <out>/<image id>/final/<finding>.png         0/255: the final labels (what training uses)
    <out>/<image id>/presegmentation/<mask>.png  the pre-segmented masks (disc, cup, vessels,
                                                 lesions), where the photo was pre-segmented

Masks have the photograph's full size. A finding nobody marked has no file. The folder is built
beside ``out`` and renamed into place, so a failure never leaves half an export.
"""
from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from annotate.services.label_shapes import region_code_map, regions_mask, shared_landmarks
from storage.errors import OctantError

if TYPE_CHECKING:
    from storage.project import ProjectHandle

INDEX_COLUMNS = ("image_id", "sha256", "patient", "record", "reader_id", "reader", "finding", "file")
_PNG = [cv2.IMWRITE_PNG_COMPRESSION, 1]   # fast; binary masks compress well anyway
PRESEGMENTATION_FOLDER = "presegmentation"


def _write_png(path: Path, mask: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), mask, _PNG):
        raise OctantError(f"Cannot write {path}; choose a folder you can write to with free space.")


def write_masks(project: ProjectHandle, out: Path, images, by_image, labels, readers, model_landmarks,
                presegmented_folder) -> int:
    """Write every mask under ``out`` (replaced whole); returns the number of files written."""
    _check_replaceable(out)
    staging = out.with_name(out.name + ".part")
    shutil.rmtree(staging, ignore_errors=True)
    rows: list[dict] = []
    try:
        staging.mkdir(parents=True)
        for image in images:
            rows.extend(_image_masks(staging, image, by_image.get(image.id, []), labels, readers,
                                     model_landmarks, presegmented_folder))
        with open(staging / "index.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=INDEX_COLUMNS, restval="")
            writer.writeheader()
            writer.writerows(rows)
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        os.replace(staging, out)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise OctantError(f"Cannot write the masks to {out} ({error.strerror}); "
                          "choose a folder you can write to with free space.") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return len(rows)


def _check_replaceable(out: Path) -> None:
    """An existing folder is replaced whole only when it is empty or an earlier masks export (its
    index.csv and one folder per image): ``export --force`` given a project, home or photo folder by
    mistake deleted everything in it."""
    if not out.is_dir():
        return
    entries = list(out.iterdir())
    index = out / "index.csv"
    earlier_export = index.is_file() and _first_line(index) == ",".join(INDEX_COLUMNS) and all(
        entry == index or (entry.is_dir() and entry.name.isdigit()) for entry in entries)
    if entries and not earlier_export:
        shown = ", ".join(sorted(entry.name for entry in entries)[:3]) + (", …" if len(entries) > 3 else "")
        raise OctantError(f"{out} holds other files ({shown}), not an earlier masks export; "
                          "give a new or empty folder for the masks (nothing was deleted).")


def _first_line(path: Path) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.readline().strip()
    except (OSError, UnicodeDecodeError):
        return ""


def _image_masks(root: Path, image, reads, labels, readers, model_landmarks, presegmented_folder):
    folder = root / str(image.id)
    base = dict(image_id=image.id, sha256=image.sha256, patient=image.patient or "")

    def written(path: Path, **row) -> dict:
        return dict(base, file=path.relative_to(root).as_posix(), **row)

    for reader_id, state in reads:
        if state.landmarks is None:
            continue
        name = readers[reader_id].name if reader_id in readers else ""
        who = dict(record="reader", reader_id=reader_id, reader=name)
        codes = region_code_map(image, state.landmarks)
        target = folder / f"reader-{reader_id}"
        _write_png(target / "regions.png", codes)
        yield written(target / "regions.png", **who)
        for code, regions in sorted(state.regions.items()):
            _write_png(target / f"{code}.png", regions_mask(codes, regions))
            yield written(target / f"{code}.png", **who, finding=code)
    landmarks = shared_landmarks((state for _, state in reads), model_landmarks(image.id))
    if landmarks is not None and image.id in labels:
        codes = region_code_map(image, landmarks)
        _write_png(folder / "consensus" / "regions.png", codes)
        yield written(folder / "consensus" / "regions.png", record="consensus")
        if image.id in labels.consensus:
            for code, finding in sorted(labels.consensus.image(image.id).findings.items()):
                if finding.state == "present" and finding.cue_regions:
                    path = folder / "consensus" / f"{code}.png"
                    _write_png(path, regions_mask(codes, finding.cue_regions))
                    yield written(path, record="consensus", finding=code)
        for code, finding in sorted(labels.image(image.id).findings.items()):
            if finding.state == "present" and finding.regions:
                path = folder / "final" / f"{code}.png"
                _write_png(path, regions_mask(codes, finding.regions))
                yield written(path, record="final", finding=code)
    source = presegmented_folder(image.id)
    if source is not None and source.is_dir():
        for mask in sorted(source.glob("*.png")):
            if mask.stem.endswith("_probability"):
                continue
            target = folder / PRESEGMENTATION_FOLDER / mask.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(mask, target)
            yield written(target, record=PRESEGMENTATION_FOLDER, finding=mask.stem)
