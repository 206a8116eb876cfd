"""Importing fundus photographs into a project.

Folders are searched recursively for JPEG, PNG, TIFF and DICOM files. Each photograph is hashed (SHA-256:
the same photo under two names is imported once), decoded to prove it is whole, and its field of
view is found and stored with the crop box. Each photo and its geometry are saved as one action,
so a crash or a cancel keeps everything imported before it; a bad file is listed in the report
and the import goes on with the next. A known photo whose stored file is gone (moved on disk) is
relinked to where it is imported from: the SHA-256 proves it is the same photograph.

A DICOM file is de-identified first (``annotate.services.deidentify``, docs/dicom.md): the project
keeps only the de-identified copy, under ``<project>/images`` with a name made of its hash (a
file name may hold a patient's name), and the patient's keyed-hash pseudonym; its SHA-256 is that
of the stored copy. A photo of a patient already in the project joins that patient's split, so a
patient is never on both sides of the train/test split (the report names each such photo).
"""
from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from annotate.fov import FieldOfView, crop_box, detect_fov
from annotate.services.deidentify import deidentify_dicom
from annotate.services.dicom import is_dicom
from annotate.services.image_files import find_image_files
from annotate.services.photos import check_photo_size, decode_fundus, read_bytes, size_from_bytes
from storage.catalogue import SPLITS
from storage.errors import BadImageError, CancelledError, InvalidRequestError, OctantError
from storage.images import add_image, find_image_by_sha256, patient_split, set_image_geometry, set_image_path
from storage.patient_key import load_or_create_patient_key

if TYPE_CHECKING:
    from storage.project import ProjectHandle

COPY_FOLDER = "images"   # --copy puts photographs here, inside the project
# Field-of-view detection needs only a ~500-px picture: decode large photos at 1/8, 1/4 or 1/2 size
# inside the JPEG decoder (3–5× faster than full size on a 2-core CPU: 10–28 ms against 53–61 ms).
REDUCE_ABOVE = {8: 2400, 4: 1200, 2: 600}   # reduce factor: shorter side at least this many pixels
_EYE_TOKENS = {"l": "left", "left": "left", "os": "left", "r": "right", "right": "right", "od": "right"}


@dataclass(frozen=True)
class ImportProgress:
    done: int          # files handled so far
    total: int
    path: Path         # the file just handled


@dataclass
class ImportReport:
    added: list[int] = field(default_factory=list)                  # new image ids
    duplicates: list[Path] = field(default_factory=list)            # already in the project or the batch
    relinked: list[Path] = field(default_factory=list)              # known photos found at a new place
    failed: list[tuple[Path, str]] = field(default_factory=list)    # file and why
    deidentified: int = 0                                           # new DICOM photos, stored de-identified
    with_patient: list[tuple[Path, str]] = field(default_factory=list)  # put in their patient's split
    kept_split: list[tuple[Path, str]] = field(default_factory=list)    # known, in another split than asked


@dataclass(frozen=True)
class _Incoming:
    """A file's bytes as the project will store them, and what its header said."""
    data: bytes
    stored_name: str | None = None     # the name to store it under; None: the file's own
    patient: str | None = None
    laterality: str | None = None


def guess_laterality(path: Path) -> str | None:
    """"left"/"right" from tokens of the file name (``_L``, ``right``, ``OS``, ``OD``), else None."""
    tokens = {t.lower() for t in re.split(r"[^A-Za-z]+", path.stem) if t}
    eyes = {_EYE_TOKENS[t] for t in tokens if t in _EYE_TOKENS}
    return eyes.pop() if len(eyes) == 1 else None


def _reduce_for(width: int, height: int) -> int:
    shorter = min(width, height)
    return next((factor for factor, side in REDUCE_ABOVE.items() if shorter >= side), 1)


def inspect_photo(data: bytes, name: str) -> tuple[int, int, FieldOfView]:
    """Full size and field of view of a photograph, proving on the way that it decodes whole and
    has a plausible size (``imagefiles.check_photo_size``)."""
    width, height = size_from_bytes(data, name)
    check_photo_size((width, height), name)
    small = decode_fundus(data, name, _reduce_for(width, height), verify=True)
    found = detect_fov(small)
    sx, sy = width / small.shape[1], height / small.shape[0]
    return width, height, FieldOfView(found.cx * sx, found.cy * sy, found.r * (sx * sy) ** 0.5)


def _copy_into(root: Path, source: Path, data: bytes, sha256: str) -> Path:
    """Write the photo under ``<project>/images`` as ``source``'s name (atomically); a name clash
    gets the hash appended."""
    folder = root / COPY_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / source.name
    if target.exists():
        target = folder / f"{source.stem}-{sha256[:12]}{source.suffix}"
    temporary = target.with_name(target.name + ".part")
    temporary.write_bytes(data)
    os.replace(temporary, target)
    return target


def _incoming(project: ProjectHandle, path: Path, keys: dict) -> _Incoming:
    """The file's bytes, de-identified when it is DICOM (the key is read once per import)."""
    data = read_bytes(path)
    if not is_dicom(data):
        return _Incoming(data)
    if "patient" not in keys:
        keys["patient"] = load_or_create_patient_key(project.root)
    clean = deidentify_dicom(data, keys["patient"], str(path))
    name = f"dicom-{hashlib.sha256(clean.data).hexdigest()[:16]}.dcm"
    return _Incoming(clean.data, name, clean.patient, clean.laterality)


def _stored_copy(project: ProjectHandle, path: Path, photo: _Incoming, sha256: str, copy: bool) -> Path:
    if photo.stored_name is not None:   # de-identified: only the copy may be kept
        return _copy_into(project.root, Path(photo.stored_name), photo.data, sha256)
    return _copy_into(project.root, path, photo.data, sha256) if copy else path


def _store(project: ProjectHandle, path: Path, photo: _Incoming, sha256: str, split: str, laterality: str | None,
           copy: bool) -> int | None:
    data = photo.data
    width, height, fov = inspect_photo(data, str(path))
    stored = _stored_copy(project, path, photo, sha256, copy)
    copy = stored != path
    eye = laterality or photo.laterality or guess_laterality(path)
    try:  # the photo and its geometry in one action: a crash leaves either both or neither
        image_id = add_image(project.database, stored, sha256, width, height, eye, split,
                             fov=fov.as_tuple(), crop=crop_box(fov, (height, width)), patient=photo.patient)
    except BaseException:
        if copy:
            stored.unlink(missing_ok=True)
        raise
    if image_id is None and copy:
        stored.unlink(missing_ok=True)
    return image_id


def import_images(
    project: ProjectHandle,
    paths: Iterable[str | Path],
    split: str = "train",
    laterality: str | None = None,
    progress: Callable[[ImportProgress], None] | None = None,
    cancel: threading.Event | None = None,
    copy: bool = False,
) -> ImportReport:
    """Import every photograph under ``paths`` into ``project`` (a ``storage.project.ProjectHandle``).

    ``laterality`` forces the eye for all files; None takes it from a DICOM header, else guesses it
    from each file name.
    Raises CancelledError when ``cancel`` is set (the photos imported so far stay imported).
    """
    if split not in SPLITS:
        raise InvalidRequestError(f"Unknown split {split!r}; use train or test.")
    if laterality not in (None, "left", "right"):
        raise InvalidRequestError(f"Unknown eye {laterality!r}; use left or right.")
    files = find_image_files(paths)
    report = ImportReport()
    seen: set[str] = set()
    keys: dict[str, bytes] = {}
    for done, path in enumerate(files, start=1):
        if cancel is not None and cancel.is_set():
            raise CancelledError(f"Import cancelled after {len(report.added)} new photographs; run it again to continue.")
        try:
            photo = _incoming(project, path, keys)
            data = photo.data
            sha256 = hashlib.sha256(data).hexdigest()
            if sha256 in seen:
                report.duplicates.append(path)
            else:
                seen.add(sha256)
                known = find_image_by_sha256(project.database, sha256)
                if known is not None and not known.path.is_file():   # moved on disk: follow it
                    stored = _stored_copy(project, path, photo, sha256, copy)
                    set_image_path(project.database, known.id, stored)
                    report.relinked.append(path)
                elif known is not None:
                    if known.fov is None:  # added by other means without its field of view
                        _repair_geometry(project, known.id, data, str(path))
                    report.duplicates.append(path)
                    if known.split != split:   # --split never moves a known photo: said, not done
                        report.kept_split.append((path, known.split))
                else:
                    # A patient's photos stay on one side of the train/test split (no leakage).
                    kept = patient_split(project.database, photo.patient) if photo.patient else None
                    if kept is not None and kept != split:
                        report.with_patient.append((path, kept))
                    image_id = _store(project, path, photo, sha256, kept or split, laterality, copy)
                    (report.added.append(image_id) if image_id is not None else report.duplicates.append(path))
                    report.deidentified += image_id is not None and photo.stored_name is not None
        except BadImageError as error:
            report.failed.append((path, str(error)))
        except OctantError:
            raise   # database trouble or a bad argument: stop, nothing saved is lost
        if progress is not None:
            progress(ImportProgress(done, len(files), path))
    return report


def _repair_geometry(project: ProjectHandle, image_id: int, data: bytes, name: str) -> None:
    width, height, fov = inspect_photo(data, name)
    set_image_geometry(project.database, image_id, fov=fov.as_tuple(), crop=crop_box(fov, (height, width)))


def iter_report_lines(report: ImportReport) -> Iterator[str]:
    """The end-of-import summary, one line each, for the command line."""
    yield (f"Imported {len(report.added)} new photograph{'s' if len(report.added) != 1 else ''}; "
           f"{len(report.duplicates)} already known; {len(report.failed)} could not be read.")
    if report.deidentified:
        yield (f"{report.deidentified} DICOM file{'s were' if report.deidentified != 1 else ' was'} stored "
               "de-identified (patient identity replaced by a pseudonym; docs/dicom.md).")
    for path, kept in report.with_patient:
        yield f"  {path.name} went to the {kept} split, where its patient's other photos are."
    for kept in sorted({kept for _path, kept in report.kept_split}):
        count = sum(1 for _path, other in report.kept_split if other == kept)
        yield (f"{count} of the already known photograph{'s' if count != 1 else ''} stay{'s' if count == 1 else ''} "
               f"in the {kept} set: --split does not move known photos; an admin moves them with "
               f"`split IMAGE ... --to SET` (File → Readers and sets… at the workstation).")
    if report.relinked:
        yield (f"Found {len(report.relinked)} known photograph{'s' if len(report.relinked) != 1 else ''} "
               "at a new place (same SHA-256); the project now uses the new place.")
    for _path, reason in report.failed:
        yield f"  skipped: {reason}"
