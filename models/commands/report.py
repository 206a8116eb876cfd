"""``python main.py report --out DIR --as NAME``: the project's figures, tables and summary.

Per finding prevalence, the readers' kappa at finding and region level, each reader against the
consensus, the model's ROC and precision–recall curves with AUROC, operating point and AIR, and
the diagnoses' confusion matrices, reading time from the audit and each reader over time with
drift warnings (``--period week|N``): PNG and PDF figures, CSV tables and ``summary.html`` in DIR
(``models/report/``). It shows every reader's answers, so it runs as a reviewer or admin.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def run_report(args: argparse.Namespace) -> int:
    from models.report.project_numbers import project_numbers
    from models.report.writer import write_report
    from storage.commands import open_project_from_args, signed_in_reader
    from storage.project import LABEL_SOURCES

    with open_project_from_args(args) as project:
        reader = signed_in_reader(project, args.as_reader)
        period, block = ("week", 100) if args.period == "week" else ("images", args.period)
        numbers = project_numbers(project.database, reader.id, period, block)
        settings = project.settings()
        written = write_report(numbers, args.out, f"Octant report: {settings.name}",
                               LABEL_SOURCES[settings.label_source])
    print(f"Wrote {len(written.files)} files to {written.folder} ({numbers.images} images, "
          f"{numbers.predicted_images} with model predictions"
          f"{f', {numbers.red_free_images} red-free left out' if numbers.red_free_images else ''}); open {written.folder / 'summary.html'}.")
    return 0


def _period(text: str):
    if text == "week":
        return text
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise argparse.ArgumentTypeError(f"expected week or a number of images (e.g. 100), not {text!r}")


def register(subparsers) -> None:
    from storage.commands import add_project_argument
    from storage.options import command_description

    parser = subparsers.add_parser("report", help="figures, tables and a summary of agreement and the model",
                                   description=command_description(__doc__))
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the report (created)")
    parser.add_argument("--as", dest="as_reader", required=True, metavar="NAME",
                        help="a reviewer or admin, by name or number (asks for the PIN if they have one)")
    parser.add_argument("--period", default="week", type=_period, metavar="week|N",
                        help="readers over time per ISO week (default) or per N images in reading order")
    add_project_argument(parser)
    parser.set_defaults(func=run_report)
