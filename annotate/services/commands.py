"""Command line: ``import``, ``export``, ``regions``.

``import PATH... [--split train|test] [--eye left|right] [--copy]``: photographs from files or
folders (recursive), with a progress bar; bad files are listed at the end and give exit status 1.
``export --out FILE [--format csv|json|coco|masks] [--force] --as READER``: every reader's labels and
the consensus (docs/labels.md; masks: FILE is a folder; an existing FILE is replaced only with ``--force``).
``import-labels FILE --as ADMIN [--reader NAME]``: every reader's answers and the adjudications from
Octant's JSON export, matched to the project's photos by SHA-256, or a COCO file as one reader's
answers (docs/labels.md).
``regions IMAGE --out PNG [--disc X,Y --fovea X,Y] [--as READER]``: the eight regions drawn over a
photo; IMAGE is a file, or a project image number whose stored landmarks are used when none are given
(a reader's with ``--as``, else the model's from pre-segmentation).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

import cv2

from annotate.fov import FieldOfView, detect_fov
from annotate.overlay import render_region_overlay
from annotate.services.export import FILE_SUFFIX, FORMATS, export_labels
from annotate.services.image_files import IMAGE_SUFFIXES, other_file_kinds
from annotate.services.importer import import_images, iter_report_lines
from annotate.services.photos import read_fundus
from storage.command_progress import CommandProgress
from storage.commands import add_project_argument, open_project_from_args, signed_in_reader
from storage.errors import AccessDeniedError, InvalidRequestError, NotFoundError, OctantError
from storage.images import get_image
from storage.reading import ReaderSession

if TYPE_CHECKING:
    from storage.project import ProjectHandle

_SUFFIXES = ", ".join(IMAGE_SUFFIXES)


def _point(text: str) -> tuple[float, float]:
    try:
        x, y = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected X,Y in pixels (e.g. 1520,980), not {text!r}") from None
    return x, y


def run_import(args: argparse.Namespace) -> int:
    with open_project_from_args(args) as project:
        with CommandProgress(unit="photo", quiet=args.quiet) as bar:
            report = import_images(project, args.paths, split=args.split, laterality=args.eye, copy=args.copy,
                                   progress=None if args.quiet else lambda step: bar.update(
                                       step.done, step.path.name[-30:], total=step.total))
    others = other_file_kinds(args.paths)
    if not (report.added or report.duplicates or report.relinked or report.failed):
        raise InvalidRequestError(_nothing_found(args.paths, others))
    for line in iter_report_lines(report):
        print(line)
    if others:   # a folder of photos with some .bmp or .webp among them: said, not passed over in silence
        count, folders = sum(others.values()), sum(Path(path).is_dir() for path in args.paths)
        print(f"{count} other file{'s' if count != 1 else ''} in the folder{'s' if folders > 1 else ''} "
              f"{'were' if count != 1 else 'was'} "
              f"not imported ({_kinds_held(others)}): Octant reads {_SUFFIXES}; save photos in another format "
              "as PNG and import those.")
    return 1 if report.failed else 0


def _nothing_found(paths, kinds) -> str:
    """The sentence for an import that found no photo (it said "Imported 0 new photographs" and
    exited 0 for a folder of .bmp or .webp files)."""
    where = ", ".join(map(str, paths))
    if not kinds:
        return f"No photographs found in {where} (no files there); check the path."
    return (f"No photographs found in {where} (files there: {_kinds_held(kinds)}); Octant "
            f"reads {_SUFFIXES}: save the photos as PNG and import those.")


def _kinds_held(kinds) -> str:
    """"2 .bmp, 1 .webp": the three most common suffixes of the files that are not photographs by name."""
    held = ", ".join(f"{count} {suffix or 'without a suffix'}" for suffix, count in kinds.most_common(3))
    return held + (", …" if len(kinds) > 3 else "")


def run_export(args: argparse.Namespace) -> int:
    suffix = args.out.suffix.lower()
    fmt = args.format or {".csv": "csv", ".json": "json"}.get(suffix)
    if fmt not in FORMATS:
        raise InvalidRequestError(f"Cannot tell the format from {args.out.name}; add --format "
                                  f"{' or '.join(FORMATS)}.")
    if suffix in (".csv", ".json") and suffix != FILE_SUFFIX[fmt]:
        wanted = f"name the file {FILE_SUFFIX[fmt]}" if FILE_SUFFIX[fmt] else "give a folder"
        raise InvalidRequestError(f"--format {fmt} does not match the file name {args.out.name}; "
                                  f"{wanted} or leave out --format.")
    if args.out.exists() and not args.force:
        raise InvalidRequestError(f"{args.out} already exists; add --force to replace it, or choose another name.")
    if args.as_reader is None:
        raise InvalidRequestError("Export shows every reader's labels; add --as NAME of a reviewer or admin.")
    with open_project_from_args(args) as project:
        reader = signed_in_reader(project, args.as_reader)
        summary = export_labels(project, args.out, fmt, reader.id)
    files = f" ({summary.files} files)" if fmt == "masks" else ""
    print(f"Exported {summary.reads} reads of {summary.images} images to {summary.path}{files}.")
    if summary.undrawn:
        print(f"{summary.undrawn} present finding{'s' if summary.undrawn != 1 else ''} could not be drawn: "
              "their photos have no landmarks yet (place disc and fovea, or pre-segment).")
    return 0


def run_import_labels(args: argparse.Namespace) -> int:
    from annotate.services.label_import import import_labels, iter_import_lines

    if args.as_reader is None:
        raise InvalidRequestError("Importing labels writes every reader's answers; add --as NAME of an admin.")
    with open_project_from_args(args) as project:
        admin = signed_in_reader(project, args.as_reader)
        report = import_labels(project, args.file, admin.id, args.reader)
    for line in iter_import_lines(report):
        print(line)
    return 1 if report.missing else 0


def _stored_landmarks(project: ProjectHandle, image_id: int, who: str | None):
    """Landmarks of ``who`` (or, for a reviewer, any reader's), else the model's (pre-segmentation),
    else None. Without a reader only the model's: readers' landmarks are theirs to show."""
    if who is None:
        from storage.predictions import latest_model_landmarks

        return latest_model_landmarks(project.database, image_id)
    session = ReaderSession(project.database, signed_in_reader(project, who).id)
    try:
        own = session.read(image_id).landmarks
    except (AccessDeniedError, NotFoundError):
        own = None
    if own is not None:
        return own
    if session.can_review:
        from storage.review import ReviewSession

        for state in ReviewSession(project.database, session.reader.id).reads_for(image_id).values():
            if state.landmarks is not None:
                return state.landmarks
    try:
        return session.model_landmarks(image_id)
    except AccessDeniedError:
        return None


def run_regions(args: argparse.Namespace) -> int:
    if (args.disc is None) != (args.fovea is None):
        raise InvalidRequestError("Give both --disc and --fovea, or neither to use stored landmarks.")
    disc, fovea = args.disc, args.fovea
    source = Path(args.image)
    if source.is_file():
        if disc is None:
            raise InvalidRequestError(f"{source} is not in a project; give --disc X,Y and --fovea X,Y.")
        image = read_fundus(source)
        fov = detect_fov(image)
    elif args.image.isdigit():
        with open_project_from_args(args) as project:
            record = get_image(project.database, int(args.image))
            if disc is None:
                landmarks = _stored_landmarks(project, record.id, args.as_reader)
                if landmarks is None:
                    raise NotFoundError(f"Image {record.id} has no landmarks yet; give --disc X,Y and --fovea X,Y, "
                                        f"--as READER, or pre-segment it first (`python main.py presegment`).")
                disc, fovea = landmarks.disc, landmarks.fovea
        image = read_fundus(record.path)
        fov = FieldOfView(*record.fov) if record.fov else detect_fov(image)
    else:
        raise NotFoundError(f"{args.image} is neither a photograph nor an image number; check the name.")
    overlay = render_region_overlay(image, disc, fovea, fov)
    ok = cv2.imwrite(str(args.out), overlay) if args.out.suffix.lower() == ".png" else False
    if not ok:
        raise OctantError(f"Cannot write {args.out}; give a .png file in a folder you can write to.")
    print(f"Wrote the region map of {args.image} to {args.out}.")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    imp = subparsers.add_parser(
        "import", help="add fundus photographs to the project",
        description="Add JPEG, PNG and TIFF photographs (folders are searched recursively). The same photo "
                    "is added once (by SHA-256); damaged files are listed at the end and give exit status 1.")
    imp.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="photo files or folders")
    imp.add_argument("--split", choices=("train", "test"), default="train", help="set of the new photos (default train)")
    imp.add_argument("--eye", choices=("left", "right"), default=None,
                     help="eye of all photos (default: guessed from names such as _L, _R, OS, OD)")
    imp.add_argument("--copy", action="store_true", help="copy the photos into the project's images/ folder")
    imp.add_argument("--quiet", action="store_true", help="no progress bar")
    add_project_argument(imp)
    imp.set_defaults(func=run_import)

    exp = subparsers.add_parser(
        "export", help="write all readers' labels and the consensus (CSV, JSON, COCO or PNG masks)",
        description="Write per-reader labels (regions as codes and names) and the consensus per image and finding: "
                    "csv and json (which import-labels reads back), coco (final labels as polygons) or "
                    "masks (a folder of PNG masks per photo). Formats: docs/labels.md.")
    exp.add_argument("--out", type=Path, required=True, metavar="FILE",
                     help="file to write (.csv or .json; coco: .json; masks: a folder)")
    exp.add_argument("--format", choices=FORMATS, default=None, help="default: from the file's suffix")
    exp.add_argument("--force", action="store_true", help="replace FILE when it exists")
    exp.add_argument("--as", dest="as_reader", metavar="READER",
                     help="reviewer or admin (name or number); their PIN or passphrase is read from "
                          "$OCTANT_CREDENTIAL, else standard input, else asked")
    add_project_argument(exp)
    exp.set_defaults(func=run_export)

    labels_in = subparsers.add_parser(
        "import-labels", help="read labels (Octant JSON, or COCO as one reader's) into a project (admin)",
        description="Write every reader's answers (regions, normal, ungradable, diagnosis, comment, landmarks, done) "
                    "and the reviewers' adjudications from a file written by `export --format json`, through the "
                    "readers' own audited save. Photos are matched by SHA-256 (import them first); readers by name "
                    "(added when missing). A COCO file is imported as the answers of --reader NAME. The whole file is "
                    "checked before anything is written (docs/labels.md).")
    labels_in.add_argument("file", type=Path, metavar="FILE", help="a .json file written by export --format json")
    labels_in.add_argument("--as", dest="as_reader", metavar="ADMIN", help="an admin (name or number)")
    labels_in.add_argument("--reader", metavar="NAME", default=None,
                           help="for a COCO file: the reader whose answers it holds (added when missing)")
    add_project_argument(labels_in)
    labels_in.set_defaults(func=run_import_labels)

    reg = subparsers.add_parser(
        "regions", help="draw the eight disc-fovea regions over a photo as a PNG",
        description="Draw the eight disc-fovea regions (docs/geometry.md) over a photo. IMAGE is a file or a project image number.")
    reg.add_argument("image", metavar="IMAGE", help="photo file, or image number in the project")
    reg.add_argument("--disc", type=_point, metavar="X,Y", help="optic disc centre in original pixels")
    reg.add_argument("--fovea", type=_point, metavar="X,Y", help="fovea centre in original pixels")
    reg.add_argument("--out", type=Path, required=True, metavar="PNG", help="picture to write")
    reg.add_argument("--as", dest="as_reader", metavar="READER",
                     help="use this reader's stored landmarks (reviewers: any reader's; else the model's); "
                          "without it, the model's (from presegment)")
    add_project_argument(reg)
    reg.set_defaults(func=run_regions)
