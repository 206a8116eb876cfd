"""Command line: ``gui`` (the default with no command) and ``screenshot``.

``gui --project DIR --reader NAME`` skips the sign-in dialog (the dialog still asks for the PIN
when that reader has one); ``gui --demo`` opens the demo project as its first reader;
``--review`` also opens the reviewers' screen for a reviewer or admin.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from models.engine.precision import add_precision_argument
from storage.commands import add_project_argument, default_project_folder
from storage.options import window_size


def register(subparsers) -> None:
    gui = subparsers.add_parser(
        "gui", help="open the reading workstation (the default)",
        description="Open the reading workstation on a project: sign in, read your queue (disc and fovea, the "
                    "eight regions, a finding by clicking regions, or normal), every click saved at once. "
                    "Reviewers and admins also reach review, training and the project's administration.")
    add_project_argument(gui)
    gui.add_argument("--reader", metavar="NAME", help="sign in as this reader")
    gui.add_argument("--demo", action="store_true",
                     help="open the demo project (created in $OCTANT_DEMO_DIR, else in the user's "
                          "data folder, e.g. ~/.local/share/octant/demo) as its first reader")
    gui.add_argument("--review", action="store_true",
                     help="also open the reviewers' screen (reviewers and admins only)")
    add_precision_argument(gui)   # remembered as the workstation's setting
    gui.set_defaults(func=run_gui)   # its background worker shares the cores (models.engine.device.configure_threads)
    shot = subparsers.add_parser(
        "screenshot", help="render the workstation's main states to PNG files (offscreen)",
        description="Render the workstation's main states, the review screen, the training panel and the admin's "
                    "readers and sets dialog to "
                    "PNG files, offscreen, on a copy of the project's database; of a project, only the screens "
                    "the reader shown may open (the review screen and training panel for a reviewer or admin, "
                    "the dialog for an admin). Without --project, a pre-segmented demo project in a temporary "
                    "folder.")
    add_project_argument(shot)
    shot.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the PNGs")
    shot.add_argument("--reader", metavar="NAME",
                      help="reader to show (default: the first who reads); their PIN or passphrase, when they "
                           "have one, from $OCTANT_CREDENTIAL, else standard input, else asked")
    shot.add_argument("--size", type=window_size, default="1600x1000", metavar="WxH", help="window size in pixels")
    add_precision_argument(shot)
    shot.set_defaults(func=run_screenshot, thread_role="batch")


def run_gui(args: argparse.Namespace) -> int:
    from models.engine.precision import parse_precision
    from storage.errors import OctantError
    from ui.app import make_app, quit_on_termination_signals, show_message
    from ui.platform_check import check_qt_can_open_windows
    from ui.workstation import open_workstation

    # The options first: a mistyped --precision is said before a display is looked for.
    precision = None if args.precision is None else parse_precision(args.precision)
    if (sys.platform.startswith("linux") and os.environ.get("QT_QPA_PLATFORM") is None
            and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))):
        raise OctantError("No display found; run the workstation on a desktop, or see it with "
                          "`python main.py screenshot --out DIR`.")
    if precision is not None:   # remembered as the workstation's setting (Model menu)
        from ui.precision_setting import remember_precision

        remember_precision(precision)
    check_qt_can_open_windows()
    app = make_app()
    if args.demo:
        from annotate.services.demo import DEMO_ADMIN, DEMO_PASSPHRASE, DEMO_READERS, create_demo_project
        from storage.locations import demo_project_dir

        folder = create_demo_project(demo_project_dir())
        print(f"Demo project in {folder}. Its reviewer ({DEMO_READERS[-1][0]}) and admin ({DEMO_ADMIN}) "
              f"sign in with the public demo passphrase {DEMO_PASSPHRASE!r}.")
        reader = None
        first_reader = True
    else:
        folder = args.project
        if folder is None and (default_project_folder() / "octant.sqlite").is_file():
            folder = default_project_folder()
        reader, first_reader = args.reader, False
    window = open_workstation(folder, reader, database_url=args.database_url,
                              first_reader=first_reader)
    if window is None:
        return 0
    quit_on_termination_signals(app)
    if args.review:
        try:
            window.open_review()
        except OctantError as error:  # a plain reader: told why, the workstation stays open
            show_message(str(error), window)
    return app.exec()


def sign_in_for_screenshot(args: argparse.Namespace) -> None:
    """A real project's screenshot shows one reader's labels: ``--reader`` (else the first reader who
    is neither reviewer nor admin) signs in with their credential (``storage.commands.signed_in_reader``);
    AccessDeniedError otherwise."""
    from storage.commands import open_project_from_args, signed_in_reader
    from storage.readers import REVIEW_ROLES, list_readers

    with open_project_from_args(args) as project:
        name = args.reader or next((r.name for r in list_readers(project.database) if r.role not in REVIEW_ROLES), None)
        if name is not None:
            signed_in_reader(project, name)


def _make_out_folder(out: Path) -> None:
    from storage.errors import OctantError

    if out.exists() and not out.is_dir():
        raise OctantError(f"{out} is a file, not a folder; give --out a folder for the screenshots.")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:   # read-only, no rights, a file on the way: mkdir's traceback before
        raise OctantError(f"Cannot create {out} ({error.strerror}); choose a folder you can write to.") from None


def run_screenshot(args: argparse.Namespace) -> int:
    from ui.app import use_offscreen_without_display

    use_offscreen_without_display()
    if args.precision is not None:
        from models.engine.precision import apply_precision_argument

        apply_precision_argument(args)
    from ui.platform_check import check_qt_can_open_windows

    check_qt_can_open_windows()
    from ui.screenshots.workstation import render_screenshots

    _make_out_folder(Path(args.out))   # before a sign-in and a demo's pre-segmentation, not after
    if args.project is not None:   # a real project: the window shows that reader's labels, so they sign in
        sign_in_for_screenshot(args)
    paths = render_screenshots(args.out, project=args.project, reader=args.reader, size=args.size,
                               database_url=args.database_url)
    for path in paths:
        print(path)
    return 0
