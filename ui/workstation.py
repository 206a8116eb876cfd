"""Signing in and opening the workstation window (also after "Sign in as another reader…", and
after File → Restore from backup…, when the project reopens in the sign-in dialog)."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QApplication, QDialog

from storage.click_recovery import recover_unsaved_clicks, recovery_folder
from storage.errors import OctantError
from storage.network_folder import network_filesystem, several_workstations_warning
from storage.project import ProjectHandle, open_project
from storage.readers import REVIEW_ROLES, find_reader, list_readers, sign_in
from ui.app import show_message
from ui.main_window import MainWindow
from ui.reading_controller import KEPT_CLICKS_HINT, ReadingController
from ui.sign_in import SignInDialog, remember_project
from ui.workstation_settings import workstation_settings

_open_windows: list[MainWindow] = []  # keep windows alive while they are shown
_reopening: list[SignInDialog] = []   # sign-in dialogs shown after a restore, until answered


def build_window(project: ProjectHandle, reader_id: int, run_ahead: bool = False) -> MainWindow:
    """The window for one signed-in reader, queue loaded and the first unfinished image open;
    with ``run_ahead`` its queue is pre-segmented in the background."""
    controller = ReadingController(project, reader_id)
    window = MainWindow(controller)
    controller.setParent(window)
    window.projectRestored.connect(lambda note: reopen_after_restore(window, note))
    recovered, all_saved = _recover_clicks(project, reader_id)   # before the queue: it shows what they saved
    window.start()
    if recovered:
        window.show_hint(recovered)
        show_message(recovered, window, warning=not all_saved)
    elif (shared := _sqlite_in_a_network_folder(project)) is not None:
        window.show_problem(shared)
    from ui.backup_actions import start_daily_backup

    start_daily_backup(window)
    if run_ahead:
        window.run_ahead(True, remember=False)
    return window


def _recover_clicks(project: ProjectHandle, reader_id: int) -> tuple[str, bool]:
    """The reader's clicks that a quit (a logout) left in the project's recovery file, saved now:
    what happened in one sentence ("" when there were none), and whether every one went in."""
    try:
        outcome = recover_unsaved_clicks(project.database, project.root, reader_id)
    except OctantError as error:
        return f"Clicks not saved when Octant was stopped could not be saved now: {error}", False
    except OSError as error:   # the recovery folder cannot be changed (permissions, a full disk)
        return (f"Clicks not saved when Octant was stopped could not be saved now ({error.strerror or error}); "
                f"they are kept in {recovery_folder(project.root)}."), False
    return outcome.sentence(), outcome.saved > 0 and not (outcome.refused or outcome.waiting or outcome.unreadable)


def _sqlite_in_a_network_folder(project: ProjectHandle) -> str | None:
    """The warning for a SQLite database in a network folder (storage/network_folder.py), else None."""
    engine_url = project.database.engine.url
    if engine_url.get_backend_name() != "sqlite" or not engine_url.database:
        return None
    kind = network_filesystem(Path(engine_url.database))
    return None if kind is None else several_workstations_warning(kind)


def _direct_sign_in(folder: Path, reader: str | None, database_url: str | None,
                    first_reader: bool) -> tuple[ProjectHandle, int] | None:
    """Project and reader from the command line; None when a PIN must be typed."""
    project = open_project(folder, database_url=database_url)
    try:
        if first_reader:
            readers = [r for r in list_readers(project.database) if r.role not in REVIEW_ROLES]
            info = readers[0] if readers else None   # the demo's admin and reviewer sign in themselves
        elif reader is not None:
            info = find_reader(project.database, reader)
        else:   # nobody named: the dialog asks
            info = None
        if info is None or info.has_pin:
            project.close()
            return None
        sign_in(project.database, info.id, None)   # no PIN to type, but a retired reader stays out
    except BaseException:
        project.close()
        raise
    remember_project(project.root)
    return project, info.id


def open_workstation(folder: Path | None, reader: str | None = None,
                     database_url: str | None = None,
                     first_reader: bool = False) -> MainWindow | None:
    """Sign in (directly when the command line says who, else with the dialog) and show."""
    signed_in, problem = None, ""
    if folder is not None and (reader or first_reader):
        try:
            signed_in = _direct_sign_in(Path(folder), reader, database_url, first_reader)
        except OctantError as error:
            # Said in the dialog's own message line: a separate box opened before the modal dialog
            # lay hidden behind it (and could not be dismissed) while the dialog asked for a PIN.
            problem = str(error)
    if signed_in is None:
        signed_in = _ask_sign_in(Path(folder) if folder else None, reader, problem, database_url)
        if signed_in is None:
            return None
    return _show_window(*signed_in)


def _ask_sign_in(folder: Path | None, reader: str | None = None, problem: str = "",
                 database_url: str | None = None) -> tuple[ProjectHandle, int] | None:
    """The sign-in dialog, modal; the project and reader signed in, None when cancelled."""
    dialog = SignInDialog(folder, reader=reader, database_url=database_url)
    if problem:
        dialog.show_problem(problem)
    if dialog.exec() != QDialog.DialogCode.Accepted:
        return None
    return dialog.signed_in()   # accepted only after a sign-in


def _show_window(project: ProjectHandle, reader_id: int) -> MainWindow:
    # On unless the reader switched it off (Model menu); remembered per user.
    ahead = bool(workstation_settings().value("model/presegment_ahead", True, type=bool))
    window = build_window(project, reader_id, run_ahead=ahead)
    _open_windows.append(window)
    window.signOutRequested.connect(lambda: _sign_out(window))
    window.show()
    window.activateWindow()  # the keys go to it: without a window manager nobody else moves the focus from the dialog
    return window


def open_windows() -> list[MainWindow]:
    """The workstation windows open in this process, oldest first."""
    return list(_open_windows)


def release_window(window: MainWindow) -> None:
    """Stop keeping ``window`` alive (its owner closes it: a test, a script)."""
    _open_windows.remove(window)


def _sign_out(window: MainWindow) -> None:
    """File → Sign in as another reader / open a project…: the window is hidden (nobody else sees its
    labels) while the dialog asks; Cancel brings it back as it was, where it used to quit Octant."""
    if window.controller.kept_clicks():   # this reader's clicks wait for the database: they stay signed in
        window.show_problem(f"{KEPT_CLICKS_HINT}; sign out once the status bar says Saved ✓.")
        return
    window.close_side_windows()   # the review screen and training panel: every reader's labels
    window.hide()
    app = QApplication.instance()
    quits = isinstance(app, QApplication) and app.quitOnLastWindowClosed()
    if isinstance(app, QApplication):   # the dialog, cancelled, is the last window closed for a moment
        app.setQuitOnLastWindowClosed(False)
    try:
        project = window.controller.project
        signed_in = _ask_sign_in(project.root, database_url=project.database_url())
    finally:
        if isinstance(app, QApplication):
            app.setQuitOnLastWindowClosed(quits)
    if signed_in is None:
        window.show()
        window.activateWindow()   # the keys go back to it, also without a window manager
        return
    if not window.close():   # its done mark found the database busy meanwhile: it asks, and stays
        window.show()
        signed_in[0].close()
        return
    window.controller.project.close()
    _open_windows.remove(window)
    _show_window(*signed_in)


def reopen_after_restore(window: MainWindow, note: str) -> SignInDialog:
    """After a restore the window closes and the project reopens in the sign-in dialog (shown
    without blocking, its reader preselected, ``note`` saying what was restored): the restored
    database may have other readers and credentials, so whoever goes on signs in against it."""
    project, name = window.controller.project, window.controller.reader.name
    dialog = SignInDialog(project.root, reader=name, database_url=project.database_url())
    dialog.show_note(note)
    _reopening.append(dialog)

    def answered(result: int) -> None:
        _reopening.remove(dialog)
        signed_in = dialog.signed_in()
        if result == QDialog.DialogCode.Accepted and signed_in is not None:
            _show_window(*signed_in)
        dialog.deleteLater()

    dialog.finished.connect(answered)
    dialog.open()   # before the window closes, so the application does not quit meanwhile
    window.close_keeping_clicks_for_next_sign_in()   # a restore starts with none kept; any since: the recovery file
    project.close()
    if window in _open_windows:
        _open_windows.remove(window)
    return dialog


def reopening_dialogs() -> list[SignInDialog]:
    """The sign-in dialogs waiting after a restore (tests, scripts)."""
    return list(_reopening)
