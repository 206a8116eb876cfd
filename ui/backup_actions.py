"""File → Back up now…, and the project's automatic daily backup, run off the GUI thread.

Both are one ``storage.backup`` call on a ``ui.background.Worker`` (a backup is one SQLite
online-backup step: seconds even for a clinic's years of labels, and readers keep saving meanwhile);
the outcome is one sentence in the window's status bar. A cancel (quitting) is seen between the
steps and while the copy's audit chain is checked, within a second; nothing half-made is left. PostgreSQL projects get the sentence that
names pg_dump. The daily backup can be switched off per workstation (setting
``project/daily_backup``), e.g. where the project folder is on a slow network drive.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from PySide6.QtWidgets import QFileDialog

from storage.backup import BackupResult, automatic_backup, backup_project
from ui.background import Worker
from ui.workstation_settings import workstation_settings

DAILY_SETTING = "project/daily_backup"


def _project(window):
    return window.controller.project


def back_up_now(window, folder: str | None = None) -> Worker | None:
    """Ask for a folder (unless given) and write a new backup folder inside it, in the background."""
    if folder is None:
        folder = QFileDialog.getExistingDirectory(window, "Back up the project into…", str(Path.home()))
    if not folder:
        return None
    project = _project(window)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d-%H%M%S")
    destination = Path(folder) / f"octant-backup-{project.root.name}-{stamp}"
    window.show_hint(f"Backing up to {destination}…")
    worker = Worker(lambda _report, cancel: backup_project(project.database, project.root, destination, cancel),
                    name="Backup", owner=window)
    worker.returned.connect(lambda result: window.show_hint(_done(result)))
    worker.errored.connect(window.show_problem)
    window.backup_worker = worker  # kept with the window; the registry joins it at quit
    return worker.start()


def _done(result: BackupResult) -> str:
    return (f"Backed up ✓ to {result.folder} ({result.events} audit events; photos are not in it: "
            "see docs/backup.md).")


def start_daily_backup(window) -> Worker | None:
    """Today's automatic backup in <project>/backups (keeps 7), unless switched off or done."""
    if str(workstation_settings().value(DAILY_SETTING, True)).lower() in ("false", "0"):
        return None
    project = _project(window)
    if project.database.engine.dialect.name != "sqlite":
        return None
    worker = Worker(lambda _report, cancel: automatic_backup(project.database, project.root, cancel=cancel),
                    name="Daily backup", owner=window)
    worker.returned.connect(lambda made: made and window.ahead_label.setToolTip(f"Today's backup: {made}"))
    # A failed daily backup must be seen (it is the clinic's safety net), but need not stop reading.
    worker.errored.connect(lambda text: window.show_problem(f"Today's automatic backup failed: {text}", box=False))
    window.daily_backup_worker = worker
    return worker.start()
