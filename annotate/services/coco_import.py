"""COCO annotations read as one reader's answers (``import-labels FILE --reader NAME``).

A COCO file holds one set of answers, not three readers' reads, so it is imported as the answer
of one named reader. Each category must be a finding code of the project; each image is matched
by its ``sha256`` (as Octant writes it), else by ``file_name`` (the project's relative path, or a
unique file name). An annotation's regions are its ``regions`` (as Octant writes them), else the
regions holding at least ``REGION_SHARE`` of its pixels, its polygons or uncompressed RLE drawn at
the photo's size and the regions drawn with the annotation's ``landmarks``, else the reader's own,
else the model's (pre-segmentation); an annotation with none of these cannot be placed and is
counted. A listed image without annotations is answered "normal"; the reader's other answers
(diagnosis, comment, ungradable) stay as stored.
"""
from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any, NoReturn

import cv2
import numpy as np

from annotate.services.label_shapes import region_code_map
from storage.errors import InvalidRequestError
from storage.images import ImageRecord, find_image_by_sha256, list_images
from storage.labels import Landmarks, ReadState
from storage.predictions import latest_model_landmarks
from storage.review import iter_all_reads

if TYPE_CHECKING:
    from storage.database import Database
    from storage.project import ProjectHandle

REGION_SHARE = 0.01   # a region counts when it holds this share of the annotation's pixels


def is_coco(document: Any) -> bool:
    return isinstance(document, dict) and "annotations" in document and "categories" in document


def _fail(name: str, where: str, what: str) -> NoReturn:
    raise InvalidRequestError(f"{name}: {where}: {what}; fix the file or export it again.")


def _mask(segmentation: Any, height: int, width: int, name: str, where: str) -> np.ndarray:
    """The annotation's pixels: polygons ([x1, y1, …] lists) or uncompressed RLE."""
    mask = np.zeros((height, width), np.uint8)
    if isinstance(segmentation, list):
        for ring in segmentation:
            if not (isinstance(ring, list) and len(ring) >= 6 and len(ring) % 2 == 0
                    and all(isinstance(v, (int, float)) for v in ring)):
                _fail(name, where, "a polygon is a list of at least three x, y pairs")
            points = np.round(np.asarray(ring, np.float64).reshape(-1, 2) * 8).astype(np.int32)
            cv2.fillPoly(mask, [points], 1, shift=3)
        return mask.astype(bool)
    if isinstance(segmentation, dict) and isinstance(segmentation.get("counts"), list):
        counts = segmentation["counts"]
        if sum(counts) != height * width or not all(isinstance(c, int) and c >= 0 for c in counts):
            _fail(name, where, f"the run-length counts do not cover the photo's {width} × {height} pixels")
        values = np.zeros(len(counts), bool)
        values[1::2] = True
        return np.repeat(values, counts).reshape((height, width), order="F")
    _fail(name, where, "segmentation must be polygons or uncompressed RLE (compressed RLE: convert it first)")


def _regions_of(mask: np.ndarray, image: ImageRecord, landmarks: Landmarks) -> frozenset[int]:
    codes = region_code_map(image, landmarks)[mask]
    if not codes.size:
        return frozenset()
    share = np.bincount(codes, minlength=9) / codes.size
    return frozenset(int(c) for c in range(1, 9) if share[c] >= REGION_SHARE)


def _landmarks(value: Any, name: str, where: str) -> Landmarks | None:
    if value is None:
        return None
    try:
        disc, fovea = value["disc"], value["fovea"]
        return Landmarks((float(disc[0]), float(disc[1])), (float(fovea[0]), float(fovea[1])), "manual")
    except (KeyError, IndexError, TypeError, ValueError):
        _fail(name, where, "landmarks are {\"disc\": [x, y], \"fovea\": [x, y]}")


def _match(db: Database, image: dict, file_name: str, by_path: dict, names: dict) -> ImageRecord | None:
    """The project's photo: by SHA-256, else the stored relative path, else a unique file name."""
    if isinstance(image.get("sha256"), str):
        found = find_image_by_sha256(db, image["sha256"])
        if found is not None:
            return found
    if file_name in by_path:
        return by_path[file_name]
    same = names.get(file_name.rsplit("/", 1)[-1], [])
    return same[0] if len(same) == 1 else None


def coco_states(project: ProjectHandle, document: dict, reader_id: int | None, findings: set[str], name: str
                ) -> tuple[dict[str, ReadState], list[str], int]:
    """Per matched photo (by SHA-256) the reader's answer after the import; the photos not in the
    project; how many annotations had no landmarks to be placed with."""
    db = project.database
    categories = {}
    for index, category in enumerate(document.get("categories") or [], start=1):
        if not (isinstance(category, dict) and "id" in category and category.get("name") in findings):
            _fail(name, f"category {index}", f"{category.get('name') if isinstance(category, dict) else category!r} "
                  "is not a finding of this project (categories must be named by finding code)")
        categories[category["id"]] = category["name"]
    records = list_images(db)
    by_path = {}
    for record in records:
        by_path[record.path.relative_to(project.root).as_posix() if record.path.is_relative_to(project.root)
                else str(record.path)] = record
    names = defaultdict(list)
    for record in records:
        names[record.path.name].append(record)
    stored = {image_id: state for image_id, reader, state in iter_all_reads(db) if reader == reader_id}
    matched: dict[Any, ImageRecord] = {}
    missing: list[str] = []
    for index, image in enumerate(document.get("images") or [], start=1):
        if not isinstance(image, dict) or "id" not in image:
            _fail(name, f"image {index}", "an image needs its id")
        file_name = str(image.get("file_name") or "")
        match = _match(db, image, file_name, by_path, names)
        if match is None:
            missing.append(file_name or str(image["id"]))
        else:
            matched[image["id"]] = match
    regions: dict[int, dict[str, set[int]]] = {record.id: {} for record in matched.values()}
    placed: dict[int, Landmarks | None] = {}
    undrawn = 0
    for index, annotation in enumerate(document.get("annotations") or [], start=1):
        where = f"annotation {index}"
        if not isinstance(annotation, dict) or annotation.get("category_id") not in categories:
            _fail(name, where, "its category_id is not one of the file's categories")
        target = matched.get(annotation.get("image_id"))
        if target is None:
            continue
        code = categories[annotation["category_id"]]
        given = annotation.get("regions")
        if given is not None:
            if not (isinstance(given, list) and all(isinstance(c, int) and 1 <= c <= 8 for c in given)):
                _fail(name, where, "regions must be codes 1 to 8")
            found = frozenset(given)
        else:
            own = stored[target.id].landmarks if target.id in stored else None
            landmarks = _landmarks(annotation.get("landmarks"), name, where) or own or \
                latest_model_landmarks(db, target.id)
            if landmarks is None:
                undrawn += 1
                continue
            found = _regions_of(_mask(annotation.get("segmentation"), target.height, target.width, name, where),
                                target, landmarks)
        if annotation.get("landmarks") is not None:
            placed.setdefault(target.id, _landmarks(annotation["landmarks"], name, where))
        regions[target.id].setdefault(code, set()).update(found)
    states = {}
    for record in matched.values():
        before = stored.get(record.id, ReadState())
        chosen = {code: frozenset(r) for code, r in regions[record.id].items() if r}
        states[record.sha256] = ReadState(
            regions=chosen, normal=not chosen, ungradable=before.ungradable, diagnosis=before.diagnosis,
            comment=before.comment, done=True, landmarks=before.landmarks or placed.get(record.id))
    return states, missing, undrawn
