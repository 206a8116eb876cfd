"""Command line: ``backup DEST`` (a consistent copy while readers save) and ``restore BACKUP``."""
from __future__ import annotations

import argparse
from pathlib import Path

from storage.backup import PG_DUMP_ADVICE, BackupNotPossible, backup_project, restore_project
from storage.command_progress import CommandProgress
from storage.commands import add_project_argument, default_project_folder, open_project_from_args


def run_backup(args: argparse.Namespace) -> int:
    with open_project_from_args(args) as project:
        result = backup_project(project.database, project.root, args.dest)
    others = [name for name in result.files[1:]]
    print(f"Backed up the project to {result.folder}: the database ({result.events} audit events, head "
          f"{result.audit_head}){' and ' + ', '.join(others) if others else ''}. Photos and other sub-folders "
          "are not in it (docs/backup.md).")
    return 0


def run_restore(args: argparse.Namespace) -> int:
    if args.database_url:
        raise BackupNotPossible(PG_DUMP_ADVICE)
    root = args.project if args.project is not None else default_project_folder()
    # On stderr, as it goes; Ctrl+C stops it and leaves the project as it was (restore_project).
    with CommandProgress(100, description="Restoring", unit="%") as progress:
        result = restore_project(root, args.backup, progress=lambda sentence, fraction: progress.update(
            round(100 * fraction), sentence.rstrip("….")))
    print(f"Restored {args.backup} into {root} ({result.events} audit events, chain "
          f"head {result.audit_head}); what the project held before is kept in {result.folder}.")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    backup = subparsers.add_parser(
        "backup", help="copy the project's database and files to a new folder (safe while readers save)",
        description="Write a backup of the project (SQLite online backup, WAL included, plus the project "
                    "folder's own files such as patient.key) into the new folder DEST. PostgreSQL: use pg_dump.")
    backup.add_argument("dest", type=Path, metavar="DEST", help="new (or empty) folder for the backup")
    add_project_argument(backup)
    backup.set_defaults(func=run_backup)
    restore = subparsers.add_parser(
        "restore", help="put a backup back into the project folder",
        description="Check a backup made by `backup` (or the daily ones in DIR/backups) and restore it into the "
                    "project folder; what the folder held is kept in DIR/backups/before-restore-<time> first.")
    restore.add_argument("backup", type=Path, metavar="BACKUP", help="the backup folder")
    add_project_argument(restore)
    restore.set_defaults(func=run_restore)
