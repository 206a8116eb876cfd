"""Command line: ``init``, ``readers``, ``assign``, ``status``, ``label-source``.

Also the project arguments every command module shares: ``add_project_argument(parser)`` and
``open_project_from_args(args)`` (``--project DIR``, default ``$OCTANT_PROJECT`` else the current
folder; ``--database-url`` for PostgreSQL).
"""
from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from sqlalchemy import func, select

from storage.assignment import assign_readers
from storage.errors import InvalidRequestError
from storage.images import list_images
from storage.project import LABEL_SOURCES, ProjectHandle, create_project, open_project, update_settings
from storage.readers import Role, add_reader, list_readers
from storage.schema import Image, Read, Reader


def default_project_folder() -> Path:
    return Path(os.environ.get("OCTANT_PROJECT") or Path.cwd())


def add_project_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--project", type=Path, default=None, metavar="DIR",
        help="project folder (default: $OCTANT_PROJECT, else the current folder)",
    )
    parser.add_argument(
        "--database-url", default=None, metavar="URL",
        help="use this database instead of DIR/octant.sqlite (e.g. postgresql+psycopg://host/octant)",
    )


def open_project_from_args(args: argparse.Namespace) -> ProjectHandle:
    folder = args.project if args.project is not None else default_project_folder()
    return open_project(folder, database_url=args.database_url)


def _roles(text: str) -> list[str]:
    return [Role.parse(part).value for part in text.split(",") if part.strip()]


def _read_pin() -> str:
    if not sys.stdin.isatty():  # scripted use: the PIN is the first line of standard input
        pin = sys.stdin.readline().rstrip("\n")
    else:
        pin = getpass.getpass("PIN: ")
        if getpass.getpass("PIN again: ") != pin:
            raise InvalidRequestError("The two PINs differ; run the command again.")
    if not pin:
        raise InvalidRequestError("A PIN cannot be empty; leave out --pin for no PIN.")
    return pin


def run_init(args: argparse.Namespace) -> int:
    with create_project(args.dir, name=args.name, consensus_k=args.consensus_k,
                        database_url=args.database_url) as project:
        settings = project.settings()
        print(f"Created project {settings.name!r} in {project.root} "
              f"({len(settings.findings)} findings, consensus {settings.consensus_k} of 3).")
    return 0


def run_readers_add(args: argparse.Namespace) -> int:
    pin = _read_pin() if args.pin else None
    with open_project_from_args(args) as project:
        reader = add_reader(project.database, args.name, Role.parse(args.role), pin)
    print(f"Added reader {reader.id}: {reader.name} ({reader.role.value}{', PIN' if reader.has_pin else ''}).")
    return 0


def run_readers_list(args: argparse.Namespace) -> int:
    with open_project_from_args(args) as project:
        readers = list_readers(project.database, include_inactive=args.all)
    if not readers:
        print("No readers yet; add one with `readers add NAME --role ROLE`.")
    for reader in readers:
        flags = ", ".join(f for f, on in (("PIN", reader.has_pin), ("retired", not reader.active)) if on)
        print(f"{reader.id:>4}  {reader.name:<24} {reader.role.value:<20} {flags}")
    return 0


def run_assign(args: argparse.Namespace) -> int:
    with open_project_from_args(args) as project:
        roles = {split: _roles(text) for split, text in (("train", args.train_roles), ("test", args.test_roles)) if text}
        if roles:
            current = project.settings().split_roles
            update_settings(project.database, split_roles={**current, **roles})
        summary = assign_readers(project.database, readers_per_image=args.readers_per_image, seed=args.seed)
        names = {r.id: r.name for r in list_readers(project.database, include_inactive=True)}
    if not summary.reads_added:
        print("Every image already has its readers; nothing to assign.")
        return 0
    print(f"Assigned {summary.reads_added} reads over {summary.images} images "
          f"({', '.join(f'{n} {s}' for s, n in sorted(summary.per_split.items()))}).")
    for reader_id, count in sorted(summary.per_reader.items()):
        print(f"  {names.get(reader_id, reader_id)}: +{count}")
    return 0


def run_status(args: argparse.Namespace) -> int:
    with open_project_from_args(args) as project:
        settings = project.settings()
        with project.database.reading() as session:
            images = dict(session.execute(select(Image.split, func.count()).group_by(Image.split)).all())
            rows = session.execute(
                select(Reader.name, Reader.role, Image.split, func.count(), func.count().filter(Read.done == True))  # noqa: E712
                .join(Read, Read.reader_id == Reader.id).join(Image, Image.id == Read.image_id)
                .group_by(Reader.id, Image.split).order_by(Reader.id, Image.split)
            ).all()
            reader_count = session.scalar(select(func.count()).select_from(Reader).where(Reader.active))
            reads_per_image = select(Read.image_id).group_by(Read.image_id).having(func.count() >= 3)
            waiting = session.scalar(select(func.count()).select_from(Image).where(Image.id.not_in(reads_per_image)))
        missing = sum(not image.path.is_file() for image in list_images(project.database))
    print(f"Project {settings.name!r} in {project.root}")
    print(f"Images: {sum(images.values())} ({', '.join(f'{n} {s}' for s, n in sorted(images.items())) or 'none'}); "
          f"readers: {reader_count}; consensus {settings.consensus_k} of 3")
    if missing:
        print(f"{missing} photograph{'s are' if missing != 1 else ' is'} missing from {'their' if missing != 1 else 'its'} "
              "stored place; import them from where they are now to relink them (labels are kept).")
    if waiting:
        print(f"{waiting} images still need readers; run `assign`.")
    if not rows:
        print("No reads assigned yet; run `assign` after adding images and readers.")
    for name, role, split, total, done in rows:
        print(f"  {name:<24} {role:<20} {split:<5} {int(done or 0):>7} / {total:<7} done")
    return 0


def run_label_source(args: argparse.Namespace) -> int:
    with open_project_from_args(args) as project:
        if args.source is None:
            source = project.settings().label_source
        else:
            source = update_settings(project.database, label_source=args.source).label_source
    verb = "use" if args.source is None else "now use"
    print(f"Training and export {verb} {LABEL_SOURCES[source]} labels.")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    init = subparsers.add_parser("init", help="create a project folder with an empty database",
                                 description="Create a project: DIR/octant.sqlite with the default findings.")
    init.add_argument("dir", type=Path, metavar="DIR", help="project folder (created if missing)")
    init.add_argument("--name", help="project name (default: the folder's name)")
    init.add_argument("--consensus-k", type=int, choices=(2, 3), default=2,
                      help="readers (of 3) who must mark a finding for it to count (default 2)")
    init.add_argument("--database-url", default=None, metavar="URL",
                      help="create the project in this database (e.g. PostgreSQL) instead of DIR/octant.sqlite")
    init.set_defaults(func=run_init)

    readers = subparsers.add_parser("readers", help="add or list readers",
                                    description="Manage the people who read images.")
    actions = readers.add_subparsers(dest="readers_command", metavar="<action>", required=True)
    add = actions.add_parser("add", help="add a reader")
    add.add_argument("name", metavar="NAME", help="the reader's name as shown when signing in")
    add.add_argument("--role", required=True, choices=[r.value for r in Role],
                     help="ophthalmologists read training images, specialists the test set")
    add.add_argument("--pin", action="store_true",
                     help="ask for a PIN (stored only as a salted scrypt hash; read from stdin when piped)")
    add_project_argument(add)
    add.set_defaults(func=run_readers_add)
    listing = actions.add_parser("list", help="list readers")
    listing.add_argument("--all", action="store_true", help="include retired readers")
    add_project_argument(listing)
    listing.set_defaults(func=run_readers_list)

    assign = subparsers.add_parser(
        "assign", help="give every image three distinct readers",
        description="Give every image without its readers three distinct eligible readers, "
                    "balanced across readers. Images already assigned are left alone.")
    assign.add_argument("--seed", type=int, default=0, help="tie-break seed (default 0)")
    assign.add_argument("--readers-per-image", type=int, default=3, help=argparse.SUPPRESS)
    assign.add_argument("--train-roles", metavar="ROLES",
                        help="comma-separated roles allowed to read training images (saved in the project)")
    assign.add_argument("--test-roles", metavar="ROLES",
                        help="comma-separated roles allowed to read test images (saved in the project)")
    add_project_argument(assign)
    assign.set_defaults(func=run_assign)

    status = subparsers.add_parser("status", help="images, readers and reading progress",
                                   description="Show images per split and each reader's progress per split.")
    add_project_argument(status)
    status.set_defaults(func=run_status)

    source = subparsers.add_parser(
        "label-source", help="show or set where training and export take their labels from",
        description="Show or set the project's label source: the readers' consensus, or a reviewer's "
                    "adjudicated answer where one exists, else the consensus.")
    source.add_argument("source", nargs="?", choices=sorted(LABEL_SOURCES), metavar="SOURCE",
                        help="consensus, or adjudicated (adjudicated, else consensus); leave out to show it")
    add_project_argument(source)
    source.set_defaults(func=run_label_source)
