"""Exporting every reader's labels and the consensus: CSV, JSON, COCO or PNG masks (docs/labels.md).

Export shows all readers' answers side by side, which blind reading reserves for reviewers and
admins: it runs as such a reader (``ReviewSession`` refuses anyone else).

CSV is one long table, one row per (image, reader, finding) with ``record = "reader"``, one
per (image, finding) with ``record = "consensus"``, one per (image, finding) with
``record = "final"``: the answer training uses (``annotate.services.final_labels``: the consensus,
or a reviewer's adjudication where the project's label source says so; ``source`` tells which
and ``comment`` holds the adjudication's reason); a read without findings (normal, ungradable,
or not answered yet) has one row with an empty finding. Regions are written as codes joined by
";" (e.g. "1;5") and, beside them, their names. JSON nests the same facts per image, with each
reader's landmarks: it is the form ``import-labels`` reads back (``annotate.services.label_import``).
COCO (``annotate.services.coco_export``) has the final labels as polygons; masks
(``annotate.services.mask_export``) a folder of PNGs per photo.
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from annotate.consensus import ProjectConsensus
from annotate.geometry import REGION_NAMES
from annotate.services.coco_export import coco_document
from annotate.services.final_labels import FinalLabels, final_labels
from annotate.services.mask_export import write_masks
from storage.adjudication import list_adjudications
from storage.errors import InvalidRequestError, OctantError
from storage.images import ImageRecord, list_images
from storage.labels import ReadState
from storage.predictions import latest_model_landmarks, latest_prediction
from storage.readers import list_readers
from storage.review import ReviewSession

if TYPE_CHECKING:
    from storage.project import ProjectHandle

OCTANT_FORMAT = "octant-labels"   # the JSON export's name and version, which import-labels checks
OCTANT_VERSION = 1

FORMATS = ("csv", "json", "coco", "masks")
FILE_SUFFIX = {"csv": ".csv", "json": ".json", "coco": ".json", "masks": ""}   # masks: a folder
PRESEGMENTATION_KIND = "presegmentation"   # models.segmentation.presegment stores its masks' folder
CSV_COLUMNS = (
    "record", "image_id", "sha256", "path", "split", "laterality", "reader_id", "reader", "role",
    "done", "normal", "ungradable", "diagnosis", "finding", "state", "votes", "regions", "region_names",
    "comment", "source",
)


@dataclass(frozen=True)
class ExportSummary:
    path: Path
    images: int
    reads: int
    files: int = 1              # files written (masks: one per mask, plus the index)
    undrawn: int = 0            # findings left out of COCO/masks for want of landmarks


def _codes(regions) -> str:
    return ";".join(str(c) for c in sorted(regions))


def _names(regions) -> str:
    return ";".join(REGION_NAMES[c] for c in sorted(regions))


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _collect(project: ProjectHandle, reader_id: int):
    review = ReviewSession(project.database, reader_id)  # AccessDeniedError unless reviewer/admin
    settings = project.settings()
    reads = list(review.all_reads())
    findings = [f.code for f in settings.findings]
    labels = final_labels(project.database, findings, reads=reads)
    by_image: dict[int, list[tuple[int, ReadState]]] = defaultdict(list)
    for image_id, reader, state in reads:
        by_image[image_id].append((reader, state))
    readers = {r.id: r for r in list_readers(project.database, include_inactive=True)}
    return settings, list_images(project.database), by_image, labels, readers, len(reads)


def _final_rows(base, labels: FinalLabels, image_id: int):
    if image_id not in labels:
        return
    final = labels.image(image_id)
    for code, finding in final.findings.items():
        decided = labels.answers.finding(image_id, code) if finding.source == "adjudicated" else None
        yield dict(base, record="final", diagnosis=final.diagnosis or "", finding=code, state=finding.state,
                   regions=_codes(finding.regions), region_names=_names(finding.regions), source=finding.source,
                   comment=decided.reason if decided else "")


def _csv_rows(project: ProjectHandle, images, by_image, labels: FinalLabels, readers):
    consensus = labels.consensus
    for image in images:
        base = dict(image_id=image.id, sha256=image.sha256, path=_relative(image.path, project.root),
                    split=image.split, laterality=image.laterality or "")
        for reader_id, state in by_image.get(image.id, []):
            reader = readers.get(reader_id)
            who = dict(base, record="reader", reader_id=reader_id, reader=reader.name if reader else "",
                       role=reader.role.value if reader else "", done=int(state.done), normal=int(state.normal),
                       ungradable=int(state.ungradable), diagnosis=state.diagnosis or "", comment=state.comment)
            if not state.regions:
                yield dict(who, finding="")
            for code, regions in state.regions.items():
                yield dict(who, finding=code, regions=_codes(regions), region_names=_names(regions))
        yield from _final_rows(base, labels, image.id)
        if image.id not in consensus:
            continue
        agreed = consensus.image(image.id)
        for code, finding in agreed.findings.items():
            yield dict(base, record="consensus", ungradable=int(agreed.ungradable), diagnosis=agreed.diagnosis or "",
                       finding=code, state=finding.state, votes=finding.votes,
                       regions=_codes(finding.cue_regions), region_names=_names(finding.cue_regions))


def _image_json(project: ProjectHandle, image: ImageRecord, reads, labels: FinalLabels, readers) -> dict[str, Any]:
    consensus: ProjectConsensus = labels.consensus
    entry: dict[str, Any] = dict(
        id=image.id, sha256=image.sha256, path=_relative(image.path, project.root), split=image.split,
        laterality=image.laterality, patient=image.patient, width=image.width, height=image.height,
        fov=list(image.fov) if image.fov else None, crop=list(image.crop) if image.crop else None, reads=[],
    )
    for reader_id, state in reads:
        reader = readers.get(reader_id)
        landmarks = state.landmarks
        entry["reads"].append(dict(
            reader_id=reader_id, reader=reader.name if reader else None, role=reader.role.value if reader else None,
            done=state.done, normal=state.normal, ungradable=state.ungradable, diagnosis=state.diagnosis,
            comment=state.comment, findings={code: sorted(r) for code, r in state.regions.items()},
            landmarks=None if landmarks is None else dict(disc=list(landmarks.disc), fovea=list(landmarks.fovea),
                                                          source=landmarks.source),
        ))
    entry["consensus"] = None
    if image.id in consensus:
        agreed = consensus.image(image.id)
        entry["consensus"] = dict(
            ungradable=agreed.ungradable, diagnosis=agreed.diagnosis, reads=agreed.reads,
            gradable_reads=agreed.gradable_reads,
            findings={code: dict(state=f.state, votes=f.votes, cue_regions=sorted(f.cue_regions))
                      for code, f in agreed.findings.items()},
        )
    entry["final"] = None
    if image.id in labels:
        final = labels.image(image.id)
        entry["final"] = dict(
            diagnosis=final.diagnosis, diagnosis_source=final.diagnosis_source,
            findings={code: dict(state=f.state, regions=sorted(f.regions), source=f.source)
                      for code, f in final.findings.items()},
        )
    return entry


def _write_atomically(path: Path, write) -> None:
    """Write next to ``path`` and rename, so a failure never leaves half an export behind."""
    temporary = path.with_name(path.name + ".part")
    try:
        with open(temporary, "w", newline="", encoding="utf-8") as handle:
            write(handle)
        os.replace(temporary, path)
    except OSError as error:
        with contextlib.suppress(OSError):   # a file where the folder should be: unlink fails as well
            temporary.unlink(missing_ok=True)
        raise OctantError(f"Cannot write {path} ({error.strerror}); choose a folder you can write to.") from None


def export_labels(project: ProjectHandle, out: str | Path, fmt: str = "csv", reader_id: int | None = None) -> ExportSummary:
    """Write every reader's labels and the consensus to ``out``, as reviewer/admin ``reader_id``."""
    if fmt not in FORMATS:
        raise InvalidRequestError(f"Unknown export format {fmt!r}; use csv or json (or coco, masks).")
    if reader_id is None:
        raise InvalidRequestError("Export shows every reader's labels; run it as a reviewer or admin (--as NAME).")
    out = Path(out).expanduser()
    settings, images, by_image, labels, readers, count = _collect(project, reader_id)
    db = project.database
    if fmt == "masks":
        def presegmented(image_id: int) -> Path | None:
            payload = latest_prediction(db, image_id, PRESEGMENTATION_KIND)
            return project.root / payload["mask_folder"] if payload and payload.get("mask_folder") else None

        files = write_masks(project, out, images, by_image, labels, readers,
                            lambda image_id: latest_model_landmarks(db, image_id), presegmented)
        return ExportSummary(out, len(images), count, files + 1)
    undrawn = 0
    if fmt == "csv":
        def write(handle):
            writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS, restval="")
            writer.writeheader()
            writer.writerows(_csv_rows(project, images, by_image, labels, readers))
    elif fmt == "coco":
        document, undrawn = coco_document(project, images, by_image, labels,
                                          lambda image_id: latest_model_landmarks(db, image_id),
                                          lambda path: _relative(path, project.root))

        def write(handle):
            json.dump(document, handle, ensure_ascii=False)
    else:
        document = dict(
            format=OCTANT_FORMAT, version=OCTANT_VERSION,
            project=settings.name, consensus_k=settings.consensus_k, label_source=settings.label_source,
            findings=[dict(code=f.code, name=f.name) for f in settings.findings],
            regions={str(code): name for code, name in REGION_NAMES.items()},
            images=[_image_json(project, image, by_image.get(image.id, []), labels, readers) for image in images],
        )
        decided: dict[int, list[dict]] = defaultdict(list)
        for entry in list_adjudications(db):   # the reviewers' answers, history included, in order
            reviewer = readers.get(entry.reviewer_id)
            decided[entry.image_id].append(dict(
                finding=entry.finding, present=entry.present, regions=sorted(entry.regions),
                diagnosis=entry.diagnosis, reason=entry.reason, reviewer=reviewer.name if reviewer else None,
                reviewer_role=reviewer.role.value if reviewer else None, decided_at=entry.decided_at.isoformat()))
        for image_entry in document["images"]:
            image_entry["adjudications"] = decided.get(image_entry["id"], [])

        def write(handle):
            json.dump(document, handle, indent=1, ensure_ascii=False)
    _write_atomically(out, write)
    return ExportSummary(out, len(images), count, undrawn=undrawn)
