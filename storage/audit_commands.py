"""Command line: ``audit verify`` (is the hash chain intact?) and ``audit export`` (CSV or JSON;
the format follows the file's suffix, and an existing file is replaced only with ``--force``).

The export holds every label before and after each change, so it is for reviewers and admins
(``--as NAME``, docs/roles.md); verify shows counts and hashes only.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from storage.audit import EXPORT_FORMATS, export, verify
from storage.commands import add_as_argument, add_project_argument, open_project_from_args, signed_in_reader
from storage.errors import AccessDeniedError, InvalidRequestError
from storage.options import head_hash
from storage.readers import REVIEW_ROLES


def run_verify(args: argparse.Namespace) -> int:
    with open_project_from_args(args) as project:
        report = verify(project.database, expect_head=args.expect_head)
    for problem in report.problems:
        print(problem)
    if not report.intact:
        print(f"The audit trail has been tampered with: {len(report.problems)} problem(s) in {report.events} events.")
        return 1
    print(f"The audit trail is intact: {report.events} events, head {report.head} "
          "(note it, and check later with --expect-head).")
    return 0


def export_format(out: Path, chosen: str | None) -> str:
    """The format from --format, else from the file's suffix; a mismatch is refused, never a CSV named .json."""
    by_suffix = {f".{name}": name for name in EXPORT_FORMATS}.get(out.suffix.lower())
    if chosen is None and by_suffix is None:
        raise InvalidRequestError(f"Cannot tell the format from {out.name}; name the file .csv or .json, "
                                  "or add --format csv or json.")
    if chosen is not None and by_suffix not in (None, chosen):
        raise InvalidRequestError(f"--format {chosen} does not match the file name {out.name}; "
                                  f"name the file .{chosen} or leave out --format.")
    return chosen or by_suffix  # type: ignore[return-value]


def run_export(args: argparse.Namespace) -> int:
    fmt = export_format(args.out, args.format)
    if args.out.exists() and not args.force:
        raise InvalidRequestError(f"{args.out} already exists; add --force to replace it, or choose another name.")
    if not args.as_reader:
        raise InvalidRequestError("The audit export holds every reader's labels; add --as NAME of a reviewer or admin.")
    with open_project_from_args(args) as project:
        if signed_in_reader(project, args.as_reader).role not in REVIEW_ROLES:
            raise AccessDeniedError("The audit export holds every reader's labels: reviewers and admins only.")
        try:
            count = export(project.database, args.out, fmt)
        except OSError as error:
            raise InvalidRequestError(f"Cannot write {args.out} ({error.strerror or error}); choose a folder "
                                      "you may write to.") from error
    print(f"Wrote {count} audit events to {args.out}.")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    audit = subparsers.add_parser("audit", help="check or export the tamper-evident audit trail",
                                  description="Check the audit trail's hash chain, or export it (docs/audit.md).")
    actions = audit.add_subparsers(dest="audit_command", metavar="<action>", required=True)
    check = actions.add_parser("verify", help="find any edited, deleted or inserted audit event",
                               description="Recompute the audit hash chain; exit 1 when it is broken.")
    check.add_argument("--expect-head", metavar="HASH", type=head_hash,
                       help="the head hash noted at an earlier verify: also finds events removed from the end")
    add_project_argument(check)
    check.set_defaults(func=run_verify)
    out = actions.add_parser("export", help="write the audit trail as CSV or JSON",
                             description="Write every audit event (UTC times) to a CSV or JSON file.")
    out.add_argument("--format", choices=EXPORT_FORMATS, help="file format (default: from the file's suffix)")
    out.add_argument("--out", type=Path, required=True, metavar="FILE", help="file to write (.csv or .json)")
    out.add_argument("--force", action="store_true", help="replace FILE when it exists")
    add_as_argument(out, "a reviewer or admin")
    add_project_argument(out)
    out.set_defaults(func=run_export)
