"""File → Back up now…, File → Restore from backup… and the project's automatic daily backup,
run off the GUI thread.

Both are one ``storage.backup`` call on a ``ui.background.Worker`` (a backup is one SQLite
online-backup step: seconds even for a clinic's years of labels, and readers keep saving meanwhile);
the outcome is one sentence in the window's status bar. A cancel (quitting) is seen between the
steps and while the copy's audit chain is checked, within a second; nothing half-made is left. PostgreSQL projects get the sentence that
names pg_dump. The daily backup can be switched off per workstation (setting
``project/daily_backup``), e.g. where the project folder is on a slow network drive.

Restoring is an admin's action: the chosen folder is checked first (``storage.backup.check_backup``:
every file against the manifest, a schema this Octant knows) on a Worker, then the admin confirms
one sentence saying what will happen and types their passphrase (a restore waits for this
workstation's clicks kept for a busy database: saved first, they are in what the restore keeps),
and ``restore_project`` runs on
a Worker (what the project held is kept in ``backups/before-restore-<time>``), its steps shown in a
progress dialog whose Cancel stops it within a second, the project left exactly as it was. The window then
asks to be reopened (``projectRestored``): the restored database may have other readers and
credentials, so the project reopens in the sign-in dialog (ui/workstation.py).
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QProgressDialog

from storage.backup import (
    BACKUPS_FOLDER,
    PG_DUMP_ADVICE,
    BackupNotPossible,
    BackupResult,
    automatic_backup,
    backup_project,
    check_backup,
    restore_project,
)
from storage.errors import OctantError
from storage.project import ProjectHandle
from storage.readers import require_admin
from ui.admin_guard import admin_signs_in
from ui.background import Worker
from ui.keyboard_focus import give_keys_back
from ui.reading_controller import KEPT_CLICKS_HINT
from ui.workstation_settings import workstation_settings

DAILY_SETTING = "project/daily_backup"


def _project(window) -> ProjectHandle:
    return window.controller.project


def back_up_now(window, folder: str | None = None) -> Worker | None:
    """Ask for a folder (unless given) and write a new backup folder inside it, in the background."""
    if folder is None:
        folder = QFileDialog.getExistingDirectory(window, "Back up the project into…", str(Path.home()))
        give_keys_back(window)
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


def restore_from_backup(window, folder: str | None = None) -> Worker | None:
    """File → Restore from backup… (admins): ask for the backup folder (unless given) and check it
    in the background; ``_confirm_and_restore`` goes on when it is sound."""
    project = _project(window)
    try:
        if project.database.engine.dialect.name != "sqlite":
            raise BackupNotPossible(PG_DUMP_ADVICE)
        require_admin(project.database, window.controller.reader.id)
    except OctantError as error:
        window.show_problem(str(error))
        return None
    if any(other is not None and other.isVisible() for other in (window.training_window, window.review_window)):
        # They work on the database the restore replaces (a training run registers its model there).
        window.show_problem("Close the training and review windows first, then restore.")
        return None
    if _kept_clicks_refuse(window):
        return None
    if folder is None:
        backups = project.root / BACKUPS_FOLDER
        folder = QFileDialog.getExistingDirectory(window, "Restore the project from the backup folder…",
                                                  str(backups if backups.is_dir() else Path.home()))
        give_keys_back(window)
    if not folder:
        return None
    source = Path(folder)
    window.show_hint(f"Checking the backup in {source}…")
    worker = Worker(lambda _report, _cancel: check_backup(source), name="Backup check", owner=window)
    worker.returned.connect(lambda manifest: _confirm_and_restore(window, source, manifest))
    worker.errored.connect(window.show_problem)
    window.restore_worker = worker
    return worker.start()


def _taken(manifest: dict) -> str:
    try:
        return datetime.fromisoformat(manifest["created_at"]).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    except (KeyError, TypeError, ValueError):
        return "at an unknown time"


def _confirm_and_restore(window, source: Path, manifest: dict) -> Worker | None:
    project, reader = _project(window), window.controller.reader
    events = manifest.get("audit_events")
    sentence = (f"Replace everything the project {project.root.name} holds (labels, readers, settings) by the "
                f"backup taken {_taken(manifest)}{f' ({events} audit events)' if events is not None else ''}, "
                f"keeping what it holds now in {project.root / BACKUPS_FOLDER} and reopening the project for "
                "you to sign in again?")
    if not window.ask_yes("Restore from backup", sentence):
        window.show_hint("Nothing was restored.")
        return None
    try:
        admin_id = admin_signs_in(project.database, window, "Restoring the backup", reader)
    except OctantError as error:
        window.show_problem(str(error))
        return None
    if admin_id is None:
        window.show_hint("Nothing was restored.")
        return None
    # The open image's done mark goes in now, into what the restore keeps (the window's close after the
    # restore then has none to write from answers the restore replaced).
    window.controller.finish()
    if _kept_clicks_refuse(window):   # kept while the backup was checked, or that done mark
        return None
    if window.ahead is not None:   # nothing of this window writes while the database is replaced
        window.ahead.cancel()
    window.setEnabled(False)       # the progress dialog is a window of its own: it stays enabled
    window.show_hint(f"Restoring {source}…")
    worker = Worker(lambda report, cancel: restore_project(
        project.root, source, admin_id, progress=lambda sentence, fraction: report((sentence, fraction)),
        cancel=cancel), name="Restore", owner=window)
    dialog = _restore_progress(window, worker)
    worker.returned.connect(lambda result: window.projectRestored.emit(_restored(source, manifest, result)))
    worker.errored.connect(lambda text: (window.setEnabled(True), window.show_problem(text)))
    worker.aborted.connect(lambda text: _cancelled(window, text))
    worker.finished.connect(dialog.close)
    window.restore_worker, window.restore_progress = worker, dialog
    return worker.start()


def _kept_clicks_refuse(window) -> bool:
    """A restore waits for this workstation's clicks kept for a busy database: saved first, they are
    in the copy the restore keeps of what the project holds (given later, into the restored database,
    they would change answers they were not given on)."""
    if not window.controller.kept_clicks():
        return False
    window.show_problem(f"{KEPT_CLICKS_HINT}: restore once the status bar says Saved ✓, so that they are in "
                        f"the copy the restore keeps in {_project(window).root / BACKUPS_FOLDER}.")
    return True


def _cancelled(window, sentence: str) -> None:
    window.setEnabled(True)
    window.show_hint(sentence)
    give_keys_back(window)   # the progress dialog had them


def _restore_progress(window, worker: Worker) -> QProgressDialog:
    """The restore's steps and how far it is, with Cancel: the restore stops within a second and
    leaves the project exactly as it was (``storage.backup.restore_project``)."""
    dialog = QProgressDialog("Checking the backup's files…", "Cancel", 0, 100, window)
    dialog.setWindowTitle("Restore from backup")
    dialog.setWindowModality(Qt.WindowModality.WindowModal)
    dialog.setAutoClose(False)
    dialog.setAutoReset(False)
    dialog.setMinimumDuration(0)

    def step(said: tuple[str, float]) -> None:
        sentence, fraction = said
        if not dialog.wasCanceled():
            dialog.setLabelText(sentence)
            dialog.setValue(round(100 * fraction))

    def cancelled() -> None:
        if worker.is_running:   # closing the dialog at the end says "canceled" too
            worker.cancel()
            window.show_hint("Cancelling the restore…")

    worker.yielded.connect(step)
    dialog.canceled.connect(cancelled)
    dialog.show()
    return dialog


def _restored(source: Path, manifest: dict, result: BackupResult) -> str:
    return (f"Restored ✓ the backup taken {_taken(manifest)} from {source} ({result.events} audit events); "
            f"what the project held before is kept in {result.folder}. Sign in again.")
