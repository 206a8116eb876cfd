"""The final labels as a COCO-style JSON document (``export --format coco``; ``docs/labels.md``).

One category per finding; one annotation per (photo, finding) the final labels call present
(``annotate.services.final_labels``: the consensus, or a reviewer's adjudication), its
segmentation the union of the chosen regions as polygons in original pixels, clipped to the field
of view. A union with a hole (e.g. every region but the macula and the disc) cannot be a COCO
polygon, so it is written as uncompressed RLE instead. ``regions`` and ``source`` ride along on
each annotation; images carry their SHA-256, eye, split and patient pseudonym.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from annotate.services.label_shapes import (
    outer_rings,
    region_code_map,
    regions_mask,
    regions_shape,
    shared_landmarks,
    uncompressed_rle,
)

if TYPE_CHECKING:
    from storage.project import ProjectHandle


def coco_document(project: ProjectHandle, images, by_image, labels, model_landmarks, relative) -> tuple[dict[str, Any], int]:
    """The COCO document, and how many present findings had no landmarks to draw them with."""
    settings = project.settings()
    categories = [dict(id=index, name=f.code, full_name=f.name, supercategory="finding")
                  for index, f in enumerate(settings.findings, start=1)]
    category_of = {c["name"]: c["id"] for c in categories}
    document: dict[str, Any] = dict(
        info=dict(description=f"Octant labels of {settings.name}: final labels ({settings.label_source})",
                  version="1", date_created=datetime.now(timezone.utc).isoformat(timespec="seconds")),
        licenses=[], categories=categories, images=[], annotations=[],
    )
    undrawn = 0
    for image in images:
        # A listed photo without annotations means "nothing present" (to pycocotools and to
        # import-labels, which reads it as "normal"): a photo without final labels yet, or whose
        # findings cannot be drawn, is left out rather than listed as normal.
        if image.id not in labels:
            continue
        present = {code: f for code, f in labels.image(image.id).findings.items()
                   if f.state == "present" and f.regions and code in category_of}
        landmarks = shared_landmarks((state for _, state in by_image.get(image.id, [])), model_landmarks(image.id))
        if present and landmarks is None:
            undrawn += len(present)
            continue
        document["images"].append(dict(
            id=image.id, file_name=relative(image.path), width=image.width, height=image.height,
            sha256=image.sha256, laterality=image.laterality, split=image.split, patient=image.patient))
        if not present or landmarks is None:
            continue
        code_map = None
        for code, finding in sorted(present.items()):
            shape = regions_shape(image, landmarks, finding.regions)
            if shape.is_empty:
                continue
            rings, holed = outer_rings(shape)
            if holed:
                code_map = region_code_map(image, landmarks) if code_map is None else code_map
                segmentation: Any = uncompressed_rle(regions_mask(code_map, finding.regions))
            else:
                segmentation = rings
            x0, y0, x1, y1 = shape.bounds
            document["annotations"].append(dict(
                id=len(document["annotations"]) + 1, image_id=image.id, category_id=category_of[code],
                segmentation=segmentation, area=round(float(shape.area), 2),
                bbox=[round(float(v), 2) for v in (x0, y0, x1 - x0, y1 - y0)], iscrowd=0,
                regions=sorted(int(r) for r in finding.regions), source=finding.source,
                landmarks=dict(disc=list(landmarks.disc), fovea=list(landmarks.fovea)),
            ))
    return document, undrawn

