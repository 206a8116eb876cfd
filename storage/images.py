"""Fundus photographs known to a project: where they are, their hash, eye, split and geometry.

Paths inside the project folder are stored relative to it (the folder can move); images outside
it keep their absolute path. The SHA-256 identifies a photograph: importing it twice is a no-op.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Row, insert, select, update
from sqlalchemy.orm import Session

from storage.audit import record
from storage.catalogue import SPLITS
from storage.database import Database
from storage.errors import InvalidRequestError, NotFoundError
from storage.readers import check_admin
from storage.schema import Image

LATERALITIES = ("left", "right")


@dataclass(frozen=True)
class ImageRecord:
    id: int
    path: Path  # absolute
    sha256: str
    width: int
    height: int
    laterality: str | None  # "left" | "right" | None when unknown
    split: str  # "train" | "test"
    fov: tuple[float, float, float] | None  # field-of-view circle (cx, cy, r), original pixels
    crop: tuple[int, int, int, int] | None  # crop box (x0, y0, x1, y1), original pixels
    patient: str | None = None  # keyed-hash pseudonym (storage/patient_key.py); None when unknown


@dataclass(frozen=True)
class NewImage:
    path: str | Path
    sha256: str
    width: int
    height: int
    laterality: str | None = None
    split: str = "train"
    fov: tuple[float, float, float] | None = None  # field-of-view circle (cx, cy, r)
    crop: tuple[int, int, int, int] | None = None  # crop box (x0, y0, x1, y1)
    patient: str | None = None  # keyed-hash pseudonym, never a name or an ID


def _geometry_values(
    fov: tuple[float, float, float] | None, crop: tuple[int, int, int, int] | None
) -> dict:
    values: dict = {}
    if fov is not None:
        values.update(fov_cx=float(fov[0]), fov_cy=float(fov[1]), fov_r=float(fov[2]))
    if crop is not None:
        values.update(crop_x0=int(crop[0]), crop_y0=int(crop[1]), crop_x1=int(crop[2]), crop_y1=int(crop[3]))
    return values


IMAGE = Image.__table__
IMAGE_COLUMNS = tuple(IMAGE.c[name] for name in (
    "id", "path", "sha256", "width", "height", "laterality", "split",
    "fov_cx", "fov_cy", "fov_r", "crop_x0", "crop_y0", "crop_x1", "crop_y1", "patient",
))


def image_record(row: Row, root: Path | None) -> ImageRecord:
    """Build a record from a row selected with IMAGE_COLUMNS."""
    path = Path(row.path)
    if not path.is_absolute() and root is not None:
        path = root / path
    fov = None if row.fov_r is None else (row.fov_cx, row.fov_cy, row.fov_r)
    crop = None if row.crop_x0 is None else (row.crop_x0, row.crop_y0, row.crop_x1, row.crop_y1)
    return ImageRecord(row.id, path, row.sha256, row.width, row.height, row.laterality, row.split, fov, crop,
                       row.patient)


def load_image(session: Session, image_id: int, root: Path | None) -> ImageRecord:
    row = session.execute(select(*IMAGE_COLUMNS).where(Image.id == image_id)).first()
    if row is None:
        raise NotFoundError(f"There is no image number {image_id} in this project; import it first.")
    return image_record(row, root)


def stored_path(path: str | Path, root: Path | None) -> str:
    path = Path(path).expanduser()
    if root is not None:
        absolute = path if path.is_absolute() else root / path
        try:
            return absolute.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            return str(absolute.resolve())
    return str(path.resolve())


def _check(image: NewImage) -> None:
    if image.split not in SPLITS:
        raise InvalidRequestError(f"Unknown split {image.split!r}; use train or test.")
    if image.laterality not in (None, *LATERALITIES):
        raise InvalidRequestError(f"Unknown eye {image.laterality!r}; use left or right.")
    if len(image.sha256) != 64:
        raise InvalidRequestError("An image hash must be a 64-character SHA-256 hex digest.")


def add_images(
    db: Database, images: Iterable[NewImage], reader_id: int | None = None
) -> list[int | None]:
    """Add several images in one action; None for each whose hash or path is known already."""
    images = list(images)
    for image in images:
        _check(image)
    ids: list[int | None] = []
    with db.transaction(lock="images") as session:
        for image in images:
            path = stored_path(image.path, db.root)
            duplicate = session.scalar(
                select(Image.id).where((Image.sha256 == image.sha256) | (Image.path == path))
            )
            if duplicate is not None:
                ids.append(None)
                continue
            values = dict(path=path, sha256=image.sha256, width=image.width, height=image.height,
                          laterality=image.laterality, split=image.split, patient=image.patient,
                          **_geometry_values(image.fov, image.crop))
            image_id = session.scalar(insert(Image).returning(Image.id), values)
            record(session, "image", image_id, "create", None, values, reader_id)
            ids.append(image_id)
    return ids


def add_image(
    db: Database, path: str | Path, sha256: str, width: int, height: int,
    laterality: str | None = None, split: str = "train",
    fov: tuple[float, float, float] | None = None, crop: tuple[int, int, int, int] | None = None,
    reader_id: int | None = None, patient: str | None = None,
) -> int | None:
    """Add one image (with its geometry, if known, in the same action); returns its id, or None
    when the same photograph is already in the project."""
    return add_images(db, [NewImage(path, sha256, width, height, laterality, split, fov, crop, patient)],
                      reader_id)[0]


def find_image_by_sha256(db: Database, sha256: str) -> ImageRecord | None:
    with db.reading() as session:
        row = session.execute(select(*IMAGE_COLUMNS).where(Image.sha256 == sha256)).first()
        return None if row is None else image_record(row, db.root)


def get_image(db: Database, image_id: int) -> ImageRecord:
    with db.reading() as session:
        return load_image(session, image_id, db.root)


def list_images(db: Database, split: str | None = None) -> list[ImageRecord]:
    query = select(*IMAGE_COLUMNS).order_by(Image.id)
    if split is not None:
        query = query.where(Image.split == split)
    with db.reading() as session:
        return [image_record(row, db.root) for row in session.execute(query)]


def _update_image(db: Database, image_id: int, action: str, values: dict, reader_id: int | None,
                  admin_only: bool = False) -> None:
    with db.transaction(lock="images") as session:
        if admin_only:
            check_admin(session, reader_id)
        row = session.execute(select(*(getattr(Image, k) for k in values)).where(Image.id == image_id)).first()
        if row is None:
            raise NotFoundError(f"There is no image number {image_id} in this project; import it first.")
        session.execute(update(Image).where(Image.id == image_id).values(**values))
        record(session, "image", image_id, action, dict(row._mapping), values, reader_id)


def set_image_geometry(
    db: Database, image_id: int,
    fov: tuple[float, float, float] | None = None,
    crop: tuple[int, int, int, int] | None = None,
    reader_id: int | None = None,
) -> None:
    """Store the field-of-view circle and/or crop box (a None argument leaves that part as it is)."""
    values = _geometry_values(fov, crop)
    if values:
        _update_image(db, image_id, "set_geometry", values, reader_id)


def set_image_path(db: Database, image_id: int, path: str | Path, reader_id: int | None = None) -> None:
    """Point an image at its photograph's new place (the same file, moved: same SHA-256)."""
    _update_image(db, image_id, "relink", dict(path=stored_path(path, db.root)), reader_id)


def patient_split(db: Database, patient: str) -> str | None:
    """The split holding a patient's photos (by pseudonym), or None when the patient is new."""
    with db.reading() as session:
        return session.scalar(select(Image.split).where(Image.patient == patient).order_by(Image.id).limit(1))


def set_image_split(db: Database, image_id: int, split: str, *, acting_reader_id: int | None) -> None:
    """Move a photo between the training and test sets: an admin's action (the test set is the
    gold standard, read by the roles the project gives it)."""
    if split not in SPLITS:
        raise InvalidRequestError(f"Unknown split {split!r}; use train or test.")
    _update_image(db, image_id, "set_split", dict(split=split), acting_reader_id, admin_only=True)


def move_images_to_split(db: Database, image_ids: list[int], split: str, *, acting_reader_id: int | None) -> int:
    """Move several photos to ``split`` (``split`` on the command line, File → Readers and sets…
    at the workstation): every number is checked before any photo moves; each move is audited.
    Returns how many photos were moved."""
    if split not in SPLITS:
        raise InvalidRequestError(f"Unknown split {split!r}; use train or test.")
    for image_id in image_ids:
        get_image(db, image_id)
    for image_id in image_ids:
        set_image_split(db, image_id, split, acting_reader_id=acting_reader_id)
    return len(image_ids)


def set_image_laterality(db: Database, image_id: int, laterality: str | None, reader_id: int | None = None) -> None:
    if laterality not in (None, *LATERALITIES):
        raise InvalidRequestError(f"Unknown eye {laterality!r}; use left or right.")
    _update_image(db, image_id, "set_laterality", dict(laterality=laterality), reader_id)
