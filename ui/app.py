"""The Qt application: HiDPI, style, the exception guard, and opening the workstation."""
from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import traceback
from pathlib import Path

from PySide6.QtCore import QSocketNotifier, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from storage.errors import OctantError
from storage.locations import user_data_folder

log = logging.getLogger("octant.ui")

STYLE = """
QFrame#findingRow { border-radius: 5px; }
QFrame#findingRow:hover { background: rgba(127, 127, 127, 40); }
QFrame#findingRow[current="true"] { background: palette(highlight); }
QFrame#findingRow[current="true"] QLabel { color: palette(highlighted-text); }
QLabel#keycap { border: 1px solid rgba(127, 127, 127, 150); border-radius: 4px;
                font-family: monospace; font-weight: 600; padding: 0px 2px; }
QLabel#regions { font-family: monospace; font-weight: 600; }
QLabel#suggested { font-family: monospace; color: #8a8f98; }
QFrame#findingRow[current="true"] QLabel#suggested { color: palette(highlighted-text); }   /* grey vanished on it */
QLabel#savedLabel { padding: 0 8px; }
"""


def data_dir() -> Path:
    """Where the workstation keeps its log: the user's data folder (``storage.locations``)."""
    return user_data_folder()


def use_offscreen_without_display() -> None:
    """Headless machines (CI, screenshots): render offscreen instead of failing to connect."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                 or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def make_app() -> QApplication:
    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        app = existing
    else:
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
            Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        app = QApplication([sys.argv[0]])
    app.setApplicationName("Octant")
    app.setOrganizationName("Octant")
    app.setStyle("Fusion")
    app.setStyleSheet(STYLE)
    install_exception_guard()
    if not app.property("octant_stops_work_at_quit"):
        app.aboutToQuit.connect(stop_work_before_teardown)
        app.setProperty("octant_stops_work_at_quit", True)
    return app


def stop_work_before_teardown() -> None:
    """The application is about to quit: every background job is cancelled and joined before
    Qt is torn down; the log says how long that took (support's first question on a slow quit)."""
    from ui.background import stop_all_background_work

    seconds = stop_all_background_work()
    note_in_log(f"Quit: background work stopped and joined in {seconds:.2f} s.")


def note_in_log(line: str) -> None:
    log_file = data_dir() / "octant.log"
    try:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(log_file, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
    except OSError:   # a read-only home must not stop the quit
        pass


# The wake-up socket pair and its notifier: closed sockets would stop the signals from waking Qt.
_termination_wakeup: tuple[socket.socket, socket.socket, QSocketNotifier] | None = None
_ending_on_signal = False


def ending_on_signal() -> bool:
    """The application is ending on SIGTERM or SIGINT (a logout, ``kill``): nobody is there to
    answer a question, so a window closes without asking (``MainWindow.closeEvent``)."""
    return _ending_on_signal


def end_on_signal(app: QApplication) -> None:
    """What SIGTERM and SIGINT do: every window closes as on File → Quit, without asking, then
    the application quits."""
    global _ending_on_signal
    _ending_on_signal = True
    app.closeAllWindows()
    app.quit()


def quit_on_termination_signals(app: QApplication) -> None:
    """SIGTERM (a logout, ``kill``) and SIGINT (Ctrl+C in the terminal) quit like File → Quit:
    windows close, background work is cancelled and joined, the exit status is 0.

    Python runs signal handlers only between bytecodes, which an idle Qt event loop never
    reaches; the wake-up socket makes Qt's loop run Python as soon as a signal arrives."""
    receive, send = socket.socketpair()
    for end in (receive, send):
        end.setblocking(False)
    signal.set_wakeup_fd(send.fileno())
    notifier = QSocketNotifier(receive.fileno(), QSocketNotifier.Type.Read, app)
    notifier.activated.connect(lambda *_: receive.recv(64))
    global _termination_wakeup
    _termination_wakeup = (receive, send, notifier)   # kept as long as the application

    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: end_on_signal(app))


def install_exception_guard() -> None:
    """Log any uncaught error and show it; the window stays open and nothing saved is lost.

    Every action is saved in its own transaction before the window changes, so an error in
    drawing or in a slot cannot lose work; the reader is told and can go on.
    """
    log_file = data_dir() / "octant.log"

    def guard(kind, error, tb) -> None:
        text = "".join(traceback.format_exception(kind, error, tb))
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            with open(log_file, "a", encoding="utf-8") as handle:
                handle.write(text + "\n")
        except OSError:
            pass
        log.error("%s", text)
        if isinstance(error, KeyboardInterrupt):
            QApplication.quit()
            return
        message = (str(error) if isinstance(error, OctantError) else
                   f"Something went wrong ({kind.__name__}: {error}). Everything saved so far "
                   f"is kept; details are in {log_file}.")
        show_message(message)

    sys.excepthook = guard


def show_message(message: str, parent: QWidget | None = None, warning: bool = True) -> None:
    """A non-blocking warning box, or with ``warning=False`` a plain notice (never exec(): a modal
    loop would stall tests and workers)."""
    parent = parent or QApplication.activeWindow()
    icon = QMessageBox.Icon.Warning if warning else QMessageBox.Icon.Information
    box = QMessageBox(icon, "Octant", message, QMessageBox.StandardButton.Ok, parent)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    if parent is not None:   # Enter/Esc, then the keys go back to the window, also without a window manager
        box.finished.connect(lambda _result: parent.activateWindow())
    box.open()
