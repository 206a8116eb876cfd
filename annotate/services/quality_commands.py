"""Command line: ``gold`` — quality control with gold-standard images (admins).

``gold add IMAGE --as ADMIN [--finding CODE:REGIONS]... [--diagnosis NAME]``: the expert's answer
for a project image (findings not named are absent), entered once.
``gold mix --as ADMIN [--seed N]``: every eligible reader gets a read of every gold image, at a
random place among their unfinished reads; readers are not told which images these are.
``gold list --as REVIEWER_OR_ADMIN``: the gold images and their answers.
``repeats --share S --as ADMIN [--seed N]``: reopen share S of each reader's finished reads for a
blind repeat read (their first answer is kept for intra-reader agreement).
"""
from __future__ import annotations

import argparse

from storage.errors import AccessDeniedError


def _finding(text: str) -> tuple[str, list[int]]:
    code, _, regions = text.partition(":")
    try:
        codes = [int(part) for part in regions.split(",") if part.strip()]
    except ValueError:
        codes = []
    if not code.strip() or not codes:
        raise argparse.ArgumentTypeError(f"expected CODE:REGIONS such as haemorrhage:1,5, not {text!r}")
    return code.strip(), codes


def _mixed_sentence(added: int, gold_images: int | None) -> str:
    """What ``gold mix`` did; ``gold_images`` (counted only when nothing was added) says why nothing was."""
    if added:
        return f"Mixed {added} gold-standard read{'s' if added != 1 else ''} into the readers' queues."
    if not gold_images:
        return "No gold-standard images yet, so nothing was mixed in; add one with `gold add IMAGE --as ADMIN`."
    images = "the gold-standard image" if gold_images == 1 else f"each of the {gold_images} gold-standard images"
    return f"Nothing to mix in: every reader already has a read of {images}."


def run_gold(args: argparse.Namespace) -> int:
    from storage.commands import open_project_from_args, signed_in_reader
    from storage.quality import gold_answers, mark_gold, mix_gold_into_queues
    from storage.readers import REVIEW_ROLES

    with open_project_from_args(args) as project:
        reader = signed_in_reader(project, args.as_reader)
        db = project.database
        if args.gold_command == "add":
            answer = mark_gold(db, reader.id, args.image, dict(args.finding or []), args.diagnosis)
            shown = ", ".join(f"{c} in {sorted(r)}" for c, r in answer.findings.items()) or "no findings"
            print(f"Gold answer for image {args.image}: {shown}; diagnosis {answer.diagnosis or 'not given'}.")
        elif args.gold_command == "mix":
            added = mix_gold_into_queues(db, reader.id, seed=args.seed)
            print(_mixed_sentence(added, len(gold_answers(db)) if not added else None))
        else:
            if reader.role not in REVIEW_ROLES:
                raise AccessDeniedError("Only reviewers and admins may see which images are gold; sign in as one.")
            answers = gold_answers(db)
            if not answers:
                print("No gold-standard images yet; add one with `gold add IMAGE --as ADMIN`.")
            for image_id, answer in answers.items():
                findings = "; ".join(f"{c} {','.join(map(str, sorted(r)))}" for c, r in answer.findings.items())
                print(f"{image_id:>6}  {findings or 'no findings':<40} {answer.diagnosis or ''}")
    return 0


def run_repeats(args: argparse.Namespace) -> int:
    from storage.commands import open_project_from_args, signed_in_reader
    from storage.quality import schedule_repeats

    with open_project_from_args(args) as project:
        reader = signed_in_reader(project, args.as_reader)
        reopened = schedule_repeats(project.database, reader.id, args.share, args.seed)
    print(f"Reopened {reopened} finished reads for blind repeat reading.")
    return 0


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a fraction above 0 and at most 1 (e.g. 0.05), not {text!r}")
    return value


def register(subparsers) -> None:
    from storage.commands import add_project_argument
    from storage.options import command_description

    gold = subparsers.add_parser("gold", help="gold-standard images for quality control (admins)",
                                 description=command_description(__doc__))
    actions = gold.add_subparsers(dest="gold_command", metavar="<action>", required=True)
    add = actions.add_parser("add", help="enter the expert's answer for an image (once)")
    add.add_argument("image", type=int, metavar="IMAGE", help="project image number")
    add.add_argument("--finding", action="append", type=_finding, metavar="CODE:REGIONS",
                     help="a present finding and its regions, e.g. haemorrhage:1,5 (repeat for more)")
    add.add_argument("--diagnosis", default=None, help="the expert's diagnosis")
    mix = actions.add_parser("mix", help="mix gold images unannounced into every eligible reader's queue")
    mix.add_argument("--seed", type=int, default=0, help="placement seed (default 0)")
    listing = actions.add_parser("list", help="the gold images and their answers")
    for parser in (add, mix, listing):
        parser.add_argument("--as", dest="as_reader", required=True, metavar="NAME",
                            help="an admin (list: a reviewer or admin), by name or number")
        add_project_argument(parser)
        parser.set_defaults(func=run_gold)

    repeats = subparsers.add_parser("repeats", help="reopen a share of finished reads for blind repeat reading (admins)",
                                    description="Reopen a share of each reader's finished reads, blank and unannounced, "
                                                "at a random place among their unfinished reads; the first answers are "
                                                "kept for intra-reader agreement in the report.")
    repeats.add_argument("--share", type=_share, default=0.05, help="fraction of each reader's finished reads (default 0.05)")
    repeats.add_argument("--seed", type=int, default=0, help="selection and placement seed (default 0)")
    repeats.add_argument("--as", dest="as_reader", required=True, metavar="NAME", help="an admin, by name or number")
    add_project_argument(repeats)
    repeats.set_defaults(func=run_repeats)
