"""Command line: ``init``, ``readers``, ``split``, ``assign``, ``status``, ``label-source``,
``reading-order``.

Also what every command module shares: the project arguments (``add_project_argument(parser)``,
``open_project_from_args(args)``: ``--project DIR``, default ``$OCTANT_PROJECT`` else the current
folder; ``--database-url`` for PostgreSQL) and signing a reader in (``add_as_argument``,
``signed_in_reader``: ``--as NAME``, their PIN or passphrase from ``$OCTANT_CREDENTIAL``, else the
first line of standard input when piped, else asked without echo). Credentials are never options:
command lines are visible to every user of the machine.
"""
from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from sqlalchemy import func, select

from storage import credentials
from storage.assignment import assign_readers
from storage.errors import InvalidRequestError
from storage.images import list_images, move_images_to_split
from storage.options import positive_int
from storage.progress_table import ReaderSplitProgress, ordered_splits, progress_table
from storage.project import (
    LABEL_SOURCES,
    ProjectHandle,
    check_new_project_folder,
    create_project,
    open_project,
    update_settings,
)
from storage.readers import (
    REVIEW_ROLES,
    ReaderInfo,
    Role,
    add_reader,
    change_own_pin,
    create_first_admin,
    find_reader,
    get_reader,
    has_admin,
    list_readers,
    require_admin,
    reset_pin,
    set_reader_active,
    set_role,
    sign_in,
)
from storage.reading_order import READING_ORDERS
from storage.schema import Image, Read, Reader


def default_project_folder() -> Path:
    return Path(os.environ.get("OCTANT_PROJECT") or Path.cwd())


def implied_project_folder() -> Path | None:
    """The project a command names without --project: $OCTANT_PROJECT, else the current folder when
    it holds a project's database; None where neither names one."""
    from storage.database import DATABASE_FILENAME

    folder = default_project_folder()
    return folder if os.environ.get("OCTANT_PROJECT") or (folder / DATABASE_FILENAME).is_file() else None


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


CREDENTIAL_ENV = "OCTANT_CREDENTIAL"   # the --as reader's PIN or passphrase, and `init`'s first admin's
# `init`'s older name for it, still read (first: it names only that passphrase, so an exported
# OCTANT_CREDENTIAL of someone else's never becomes the new admin's)
OLDER_ADMIN_PASSPHRASE_ENV = "OCTANT_ADMIN_PASSPHRASE"
DB_PASSWORD_ENV = "OCTANT_DB_PASSWORD"            # a reader's own database login, `readers db-login`


def read_secret(prompt: str, env: str | None = None, confirm: bool = False, older_env: str | None = None) -> str:
    """A PIN or passphrase: from ``older_env`` (an older name for ``env`` that scripts may still set)
    or ``env`` when set, else the next line of standard input when it is piped (scripts), else
    typed without echo (twice when ``confirm``)."""
    for name in (older_env, env):
        if name and os.environ.get(name):
            return os.environ[name]
    if not sys.stdin.isatty():
        line = sys.stdin.readline()
        if not line.strip("\n"):
            raise InvalidRequestError(f"{prompt} is needed: pipe it as a line of standard input"
                                      f"{f' or set {env}' if env else ''}.")
        return line.rstrip("\n")
    secret = getpass.getpass(f"{prompt}: ")
    if confirm and getpass.getpass(f"{prompt} again: ") != secret:
        raise InvalidRequestError("The two entries differ; run the command again.")
    if not secret:
        raise InvalidRequestError(f"{prompt} cannot be empty.")
    return secret


def reader_by_name_or_number(project: ProjectHandle, who: str) -> ReaderInfo:
    who = who.strip()
    return get_reader(project.database, int(who)) if who.isdigit() else find_reader(project.database, who)


def signed_in_reader(project: ProjectHandle, who: str) -> ReaderInfo:
    """The ``--as`` reader, signed in: their PIN or passphrase is asked when they have one, and a
    wrong one counts like a wrong try at the workstation (storage.readers.sign_in)."""
    reader = reader_by_name_or_number(project, who)
    secret = read_secret(f"PIN or passphrase for {reader.name}", CREDENTIAL_ENV) if reader.has_pin else None
    return sign_in(project.database, reader.id, secret)


def signed_in_admin(project: ProjectHandle, args: argparse.Namespace) -> ReaderInfo:
    if not args.as_reader:
        raise InvalidRequestError("That is an admin's action; add --as NAME of an admin.")
    return require_admin(project.database, signed_in_reader(project, args.as_reader).id)


def add_as_argument(parser: argparse.ArgumentParser, who: str = "an admin") -> None:
    parser.add_argument("--as", dest="as_reader", metavar="NAME",
                        help=f"act as this reader ({who}; name or number); their PIN or passphrase "
                             f"is read from ${CREDENTIAL_ENV}, else standard input, else asked")


def run_init(args: argparse.Namespace) -> int:
    check_new_project_folder(args.dir, args.database_url)   # before the passphrase is asked, twice
    passphrase = read_secret(f"Passphrase for the admin {args.admin}", CREDENTIAL_ENV, confirm=True,
                             older_env=OLDER_ADMIN_PASSPHRASE_ENV)
    credentials.check_new_secret(passphrase, needs_passphrase=True)   # before anything is created
    with create_project(args.dir, name=args.name, consensus_k=args.consensus_k,
                        database_url=args.database_url) as project:
        admin = create_first_admin(project.database, args.admin, passphrase)
        settings = project.settings()
        print(f"Created project {settings.name!r} in {project.root} "
              f"({len(settings.findings)} findings, consensus {settings.consensus_k} of 3); "
              f"admin: {admin.name}.")
    return 0


def _new_secret_for(name: str, role: Role) -> str:
    kind = "Passphrase" if role is Role.ADMIN else "PIN or passphrase"
    return read_secret(f"{kind} for {name}", confirm=True)


def run_readers_add(args: argparse.Namespace) -> int:
    role = Role.parse(args.role)
    with open_project_from_args(args) as project:
        if role is Role.ADMIN and not args.as_reader and not has_admin(project.database):   # a project from before admins
            reader = create_first_admin(project.database, args.name, _new_secret_for(args.name, role))
        else:
            admin = signed_in_admin(project, args)
            pin = _new_secret_for(args.name, role) if args.pin or role in REVIEW_ROLES else None
            reader = add_reader(project.database, args.name, role, pin, acting_reader_id=admin.id)
    print(f"Added reader {reader.id}: {reader.name} ({reader.role.value}"
          f"{', ' + reader.credential_name if reader.has_pin else ''}).")
    return 0


def run_readers_role(args: argparse.Namespace) -> int:
    role = Role.parse(args.role)
    with open_project_from_args(args) as project:
        admin = signed_in_admin(project, args)
        reader = reader_by_name_or_number(project, args.name)
        new_pin = None
        if role is Role.ADMIN or (role in REVIEW_ROLES and not reader.has_pin):
            new_pin = _new_secret_for(reader.name, role)
        set_role(project.database, reader.id, role, acting_reader_id=admin.id, new_pin=new_pin)
    print(f"{reader.name} is now {role.value}.")
    return 0


def _run_set_active(args: argparse.Namespace, active: bool) -> int:
    with open_project_from_args(args) as project:
        admin = signed_in_admin(project, args)
        reader = reader_by_name_or_number(project, args.name)
        set_reader_active(project.database, reader.id, active, acting_reader_id=admin.id)
    print(f"{reader.name} is {'back' if active else 'retired: their labels stay, they can no longer sign in or save'}.")
    return 0


def run_readers_reset_pin(args: argparse.Namespace) -> int:
    with open_project_from_args(args) as project:
        admin = signed_in_admin(project, args)
        reader = reader_by_name_or_number(project, args.name)
        new = None if args.remove else _new_secret_for(reader.name, reader.role)
        reset_pin(project.database, reader.id, new, acting_reader_id=admin.id)
    print(f"{reader.name}'s {'PIN is removed' if args.remove else 'new PIN is set'}; their wrong tries are cleared.")
    return 0


def run_readers_pin(args: argparse.Namespace) -> int:
    with open_project_from_args(args) as project:
        reader = reader_by_name_or_number(project, args.name)
        old = read_secret(f"Current PIN or passphrase for {reader.name}") if reader.has_pin else None
        new = None if args.remove else _new_secret_for(reader.name, reader.role)
        change_own_pin(project.database, reader.id, old, new)
    print(f"{reader.name}'s {'PIN is removed' if args.remove else 'PIN is changed'}.")
    return 0


def run_readers_db_login(args: argparse.Namespace) -> int:
    from storage.database_roles import grant_reader_login

    with open_project_from_args(args) as project:
        admin = signed_in_admin(project, args)
        reader = reader_by_name_or_number(project, args.name)
        password = read_secret(f"Database password for {reader.name}", DB_PASSWORD_ENV, confirm=True)
        role = grant_reader_login(project.database, reader.id, password, acting_reader_id=admin.id)
    print(f"{reader.name} may now connect to the database as {role!r}, and sees only their own answers there.")
    return 0


def run_split(args: argparse.Namespace) -> int:
    with open_project_from_args(args) as project:
        admin = signed_in_admin(project, args)
        count = move_images_to_split(project.database, args.images, args.to, acting_reader_id=admin.id)
    print(f"Moved {count} image{'s' if count != 1 else ''} to the {args.to} set.")
    return 0


def run_readers_list(args: argparse.Namespace) -> int:
    with open_project_from_args(args) as project:
        readers = list_readers(project.database, include_inactive=args.all)
    if not readers:
        print("No readers yet; add one with `readers add NAME --role ROLE`.")
    for reader in readers:
        flags = ", ".join(f for f, on in ((reader.credential_name, reader.has_pin), ("retired", not reader.active)) if on)
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
                select(Reader.id, Reader.name, Reader.role, Image.split, func.count(),
                       func.count().filter(Read.done == True))  # noqa: E712
                .join(Read, Read.reader_id == Reader.id).join(Image, Image.id == Read.image_id)
                .group_by(Reader.id, Image.split).order_by(Reader.id, Image.split)
            ).all()
            reader_count = session.scalar(select(func.count()).select_from(Reader).where(Reader.active))
            reads_per_image = select(Read.image_id).group_by(Read.image_id).having(func.count() >= 3)
            waiting = session.scalar(select(func.count()).select_from(Image).where(Image.id.not_in(reads_per_image)))
        missing = sum(not image.path.is_file() for image in list_images(project.database))
    print(f"Project {settings.name!r} in {project.root}")
    per_split = ", ".join(f"{images[split]} {split}" for split in ordered_splits(images))
    print(f"Images: {sum(images.values())} ({per_split or 'none'}); "
          f"readers: {reader_count}; consensus {settings.consensus_k} of 3")
    if missing:
        print(f"{missing} photograph{'s are' if missing != 1 else ' is'} missing from {'their' if missing != 1 else 'its'} "
              "stored place; import them from where they are now to relink them (labels are kept).")
    if waiting:
        print(f"{waiting} images still need readers; run `assign`.")
    if not rows:
        print("No reads assigned yet; run `assign` after adding images and readers.")
        return 0
    print("\nReads done / assigned:")
    for line in progress_table(ReaderSplitProgress(reader_id, name, role, split, assigned, int(done or 0))
                               for reader_id, name, role, split, assigned, done in rows):
        print(line)
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


def run_reading_order(args: argparse.Namespace) -> int:
    with open_project_from_args(args) as project:
        if args.order is None:
            order = project.settings().reading_order
        else:
            admin = signed_in_admin(project, args)
            order = update_settings(project.database, reading_order=args.order, reader_id=admin.id).reading_order
    verb = "read" if args.order is None else "now read"
    print(f"Readers {verb} {READING_ORDERS[order]}.")
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

    init.add_argument("--admin", required=True, metavar="NAME",
                      help=f"the first admin; their passphrase (at least {credentials.MIN_PASSPHRASE_CHARS} "
                           f"characters) is read from ${CREDENTIAL_ENV} (or its older name "
                           f"${OLDER_ADMIN_PASSPHRASE_ENV}), else standard input, else asked")

    readers = subparsers.add_parser(
        "readers", help="add, list and manage readers",
        description="Manage the people who read images. Everything but `list` and `pin` is an admin's "
                    "action (--as NAME). Roles: docs/roles.md.")
    actions = readers.add_subparsers(dest="readers_command", metavar="<action>", required=True)
    add = actions.add_parser("add", help="add a reader (admin)")
    add.add_argument("name", metavar="NAME", help="the reader's name as shown when signing in")
    add.add_argument("--role", required=True, choices=[r.value for r in Role],
                     help="ophthalmologists read training images, specialists the test set")
    add.add_argument("--pin", action="store_true",
                     help=f"ask for a PIN (at least {credentials.MIN_PIN_DIGITS} digits) or passphrase; "
                          "always asked for reviewers and admins (admins: a passphrase); read from stdin when "
                          "piped, after the --as reader's")
    listing = actions.add_parser("list", help="list readers")
    listing.add_argument("--all", action="store_true", help="include retired readers")
    role = actions.add_parser("role", help="change a reader's role (admin)")
    role.add_argument("name", metavar="NAME", help="reader's name or number")
    role.add_argument("role", metavar="ROLE", choices=[r.value for r in Role], help="the new role")
    retire = actions.add_parser("retire", help="retire a reader: labels stay, no sign-in or saving (admin)")
    reinstate = actions.add_parser("reinstate", help="bring back a retired reader (admin)")
    reset = actions.add_parser("reset-pin", help="set a reader's PIN without the old one (admin)")
    reset.add_argument("--remove", action="store_true", help="remove it (not for reviewers and admins)")
    pin = actions.add_parser("pin", help="change your own PIN or passphrase (the old one is asked first)")
    pin.add_argument("--remove", action="store_true", help="remove it (not for reviewers and admins)")
    login = actions.add_parser(
        "db-login", help="PostgreSQL: give a reader a database login that sees only their answers (admin)",
        description=f"Create or update the reader's own PostgreSQL role (row-level security: only their answers); "
                    f"its password from ${DB_PASSWORD_ENV}, else standard input, else asked.")
    for action in (retire, reinstate, reset, pin, login):
        action.add_argument("name", metavar="NAME", help="reader's name or number")
    for action, run in ((add, run_readers_add), (listing, run_readers_list), (role, run_readers_role),
                        (retire, lambda a: _run_set_active(a, False)),
                        (reinstate, lambda a: _run_set_active(a, True)),
                        (reset, run_readers_reset_pin), (pin, run_readers_pin), (login, run_readers_db_login)):
        if action not in (listing, pin):
            add_as_argument(action)
        add_project_argument(action)
        action.set_defaults(func=run)

    split = subparsers.add_parser(
        "split", help="move photos to the training or test set (admin)",
        description="Move photos between the training and the test set (an admin's action, audited).")
    split.add_argument("images", nargs="+", type=int, metavar="IMAGE", help="image numbers")
    split.add_argument("--to", required=True, choices=("train", "test"), help="the set to move them to")
    add_as_argument(split)
    add_project_argument(split)
    split.set_defaults(func=run_split)

    assign = subparsers.add_parser(
        "assign", help="give every image three distinct readers",
        description="Give every image without its readers three distinct eligible readers, "
                    "balanced across readers. Images already assigned are left alone.")
    assign.add_argument("--seed", type=int, default=0, help="tie-break seed (default 0)")
    assign.add_argument("--readers-per-image", type=positive_int, default=3, help=argparse.SUPPRESS)
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

    order = subparsers.add_parser(
        "reading-order", help="show or set the order of readers' queues (setting it: admin)",
        description="Show or set the order in which readers get their images: default (assignment "
                    "order), or model-uncertainty (the images where the active guided networks are least "
                    "certain, or disagree most with earlier reads, first; docs/review-and-quality.md). "
                    "Readers are never shown why; gold and repeat reads stay mixed in as before.")
    order.add_argument("order", nargs="?", choices=("default", "model-uncertainty"), metavar="ORDER",
                       help="default or model-uncertainty; leave out to show it")
    add_as_argument(order)
    add_project_argument(order)
    order.set_defaults(func=run_reading_order)
