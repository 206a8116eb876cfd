"""``python main.py screen IMAGE_OR_FOLDER... --out DIR [--project DIR]``: pre-screen photos.

Runs the active guided finding networks and the attention-mask classifier
(``models/findings/screening.py``) on every photo and writes, per photo, ``DIR/<file stem>/``
with ``result.json`` (probability per finding, regions whose activation passes the finding's
threshold, diagnosis probabilities, model versions) and ``activation_<finding>.png`` (the
paper's Fig. 3 rendering). No project is needed; with ``--project`` the project's active models
are used, each photo already in the project (same SHA-256) gets the result stored as a
prediction for the model queues and the report, and without photos every project image is screened.
A red-free photo gets no finding probability and no diagnosis: its line and result.json say why
(the networks learnt on colour photos); so does a picture with no retina in it ("No fundus found").
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from storage.project import ProjectHandle


def _folder_names(paths: list[Path]) -> list[str]:
    """The file stem per photo, made unique with -2, -3 ... where two photos share a stem."""
    used: dict[str, int] = {}
    names = []
    for path in paths:
        count = used.get(path.stem, 0) + 1
        used[path.stem] = count
        names.append(path.stem if count == 1 else f"{path.stem}-{count}")
    return names


def run_screen(args: argparse.Namespace) -> int:
    import cv2

    from annotate.services.image_files import find_image_files
    from annotate.services.photos import read_photograph, sha256_of_file
    from models.findings.screening import activation_picture, load_screening_models, require_some_model, screen_photo
    from storage.catalogue import DEFAULT_FINDINGS
    from storage.errors import OctantError, about_file

    project = None
    if args.project is None and args.database_url is None and not args.paths:
        from storage.commands import implied_project_folder

        args.project = implied_project_folder()   # `export OCTANT_PROJECT=…` (README) then `screen --out s/`
    if args.project is not None or args.database_url is not None:
        from storage.commands import open_project_from_args

        project = open_project_from_args(args)
    try:
        out = Path(args.out).expanduser()
        if project is not None:
            findings = [f.code for f in project.settings().findings]
        else:
            findings = [f.code for f in DEFAULT_FINDINGS]
        imported: dict[Path, str] = {}   # a project image's SHA-256 from import, by its path
        if args.paths:
            paths = find_image_files(args.paths)
        elif project is not None:
            from storage.images import list_images

            records = list_images(project.database)
            paths = [record.path for record in records]
            imported = {record.path: record.sha256 for record in records}
        else:
            raise OctantError("Name the photos or folders to screen, or a project with --project.")
        if not paths:
            raise OctantError("No photos found there; name JPEG, PNG, TIFF or DICOM files or folders holding them.")
        models = load_screening_models(findings, project.database if project else None, args.device)
        for message in models.messages:
            print(f"note: {message}", file=sys.stderr)
        require_some_model(models)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise OctantError(f"Cannot create {out} ({error.strerror}); choose a folder you can write to.") from None
        failed = stored = red_free = no_fundus = 0
        for number, (path, name) in enumerate(zip(paths, _folder_names(paths)), 1):
            try:
                # a project photo is read where it was imported from, refused if another photo is under its name now
                photo = read_photograph(path, sha256=imported.get(path))
                result = screen_photo(photo, models)
            except OctantError as error:
                failed += 1
                print(about_file(path, str(error)), file=sys.stderr)
                continue
            folder = out / name
            try:
                folder.mkdir(exist_ok=True)
                payload = dict(result.payload(), photo=str(path))
                (folder / "result.json").write_text(json.dumps(payload, indent=1), encoding="utf-8")
                for code in result.findings:
                    picture = activation_picture(result, code)
                    if not cv2.imwrite(str(folder / f"activation_{code}.png"), picture[..., ::-1]):
                        raise OSError(0, "the PNG could not be written")
            except OSError as error:
                raise OctantError(f"Cannot write into {folder} ({error.strerror}); choose a folder you can "
                                  "write to.") from None
            if project is not None:
                # a project image passed read_photograph's check: its import hash is the file's, not read again
                stored += _store(project, path, result, imported.get(path) or sha256_of_file(path))
            red_free += result.red_free
            no_fundus += result.no_fundus is not None
            calls = ", ".join(f"{code} {r.probability:.2f}" for code, r in result.findings.items())
            said = result.note or calls or "no finding networks"
            print(f"[{number}/{len(paths)}] {name}: {said}")
        summary = f"Screened {len(paths) - failed - red_free - no_fundus} of {len(paths)} photos into {out}"
        left_out = [f"{red_free} red-free"] * bool(red_free) + [f"{no_fundus} with no fundus"] * bool(no_fundus)
        if left_out:
            summary += f" ({', '.join(left_out)}, not screened)"
        if project is not None:
            summary += f"; stored {stored} in the project"
        print(summary + ".")
        return 1 if failed else 0
    finally:
        if project is not None:
            project.close()


def _store(project: ProjectHandle, path: Path, result, sha256: str) -> int:
    from storage.images import find_image_by_sha256
    from storage.predictions import FINDINGS_PREDICTION, save_prediction

    record = find_image_by_sha256(project.database, sha256)
    if record is None:
        print(f"{path}: not in the project (import it first to store its result).", file=sys.stderr)
        return 0
    version = "; ".join(f"{network} {version}" for network, version in sorted(result.models.items()))
    save_prediction(project.database, record.id, FINDINGS_PREDICTION, result.payload(), version[:120])
    return 1


def register(subparsers) -> None:
    from storage.commands import add_project_argument
    from storage.options import command_description

    parser = subparsers.add_parser("screen", help="pre-screen photos with the finding networks and the classifier",
                                   description=command_description(__doc__))
    parser.add_argument("paths", nargs="*", type=Path, metavar="IMAGE_OR_FOLDER",
                        help="photos, or folders searched recursively (none: every image of the project, "
                             "--project, else $OCTANT_PROJECT, else the current folder's)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the results (created)")
    parser.add_argument("--device", default=None, help="auto (default), cpu, cuda or mps")
    add_project_argument(parser)
    parser.set_defaults(func=run_screen, thread_role="batch")
