"""The workstation on a real X server (Xvfb) through Qt's xcb plugin, not only offscreen: start
on the demo, label with the keyboard as a reader does (xdotool's XTEST key presses), quit with
Ctrl+Q while the queue is being pre-segmented; exit 0, the labels saved. Skipped where Xvfb or
xdotool is not installed (.ci/run installs them when it can)."""
from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.ui.test_quit import REPOSITORY, wait_for, workstation_environment

pytestmark = pytest.mark.skipif(not (sys.platform.startswith("linux") and shutil.which("Xvfb")
                                     and shutil.which("xdotool")),
                                reason="needs Xvfb and xdotool (apt-get install xvfb xdotool)")


@pytest.fixture
def x_server():
    from ui.platform_check import missing_libraries, xcb_plugin

    if missing_libraries(xcb_plugin()):
        pytest.skip("Qt's xcb plugin lacks system libraries (README, \"System packages\")")
    display = f":{90 + int(time.time() * 1000) % 400}"
    server = subprocess.Popen(["Xvfb", display, "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    if server.poll() is not None:
        pytest.skip(f"Xvfb could not start on {display}")
    yield display
    server.terminate()
    server.wait(10)


@pytest.fixture
def reading_project(tmp_path):
    """A closed project of three photos and readers (tests/ui/conftest.make_reading_project)."""
    from tests.ui.conftest import make_reading_project

    made = make_reading_project(tmp_path / "clinic")
    made.project.close()
    return made


def xdotool(display: str, *args: str) -> str:
    return subprocess.run(["xdotool", *args], env={"DISPLAY": display, "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120).stdout.strip()


@contextmanager
def running_workstation(x_server: str, tmp_path, folder, *gui_options: str) -> Iterator[subprocess.Popen]:
    """``main.py gui --project FOLDER …`` on the X server, without pre-segmenting ahead (no
    networks: only the windows and keys matter in these tests); killed on the way out if a test
    left it running."""
    environment = {**workstation_environment(tmp_path, platform="xcb"), "DISPLAY": x_server}
    settings = tmp_path / "config" / "Octant" / "workstation.ini"
    settings.parent.mkdir(parents=True)
    settings.write_text("[model]\npresegment_ahead=false\n")
    process = subprocess.Popen([sys.executable, "main.py", "gui", "--project", str(folder), *gui_options],
                               cwd=REPOSITORY, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()


def quit_with_ctrl_q(x_server: str, process: subprocess.Popen) -> str:
    """Ctrl+Q, then the process's standard error once it has ended."""
    xdotool(x_server, "key", "ctrl+q")
    return process.communicate(timeout=60)[1]


def test_start_label_and_quit_on_a_real_x_server(x_server, tmp_path):
    from storage.project import open_project
    from storage.readers import list_readers
    from storage.reading import ReaderSession
    environment = {**workstation_environment(tmp_path, platform="xcb"), "DISPLAY": x_server}
    process = subprocess.Popen([sys.executable, "main.py", "gui", "--demo"], cwd=REPOSITORY, env=environment,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        window = xdotool(x_server, "search", "--sync", "--name", "^Octant").splitlines()[0]
        title = lambda: xdotool(x_server, "getwindowname", window)
        wait_for(lambda: "(1 of 6)" in title(), 120, process)
        xdotool(x_server, "windowfocus", "--sync", window)
        xdotool(x_server, "key", "n")                    # normal: saved, the next image opens
        wait_for(lambda: "(2 of 6)" in title(), 30, process)
        errors = quit_with_ctrl_q(x_server, process)              # pre-segmentation ahead is still running
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, errors
    assert "QThread" not in errors
    with open_project(tmp_path / "demo") as project:
        reader = [r for r in list_readers(project.database) if r.role.value == "ophthalmologist"][0]
        assert ReaderSession(project.database, reader.id).progress().done == 1


def test_after_signing_in_the_keys_go_to_the_workstation_without_a_window_manager(x_server, tmp_path):
    # Xvfb has no window manager: nobody moved the keyboard focus from the closed sign-in dialog to
    # the workstation, so a reader's keys (→, N, H…) did nothing until they clicked into it.
    from storage.readers import change_own_pin
    from tests.ui.conftest import make_reading_project

    made = make_reading_project(tmp_path / "clinic")
    change_own_pin(made.project.database, made.readers["Ana"].id, None, "246810")   # the dialog asks for it
    made.project.close()
    with running_workstation(x_server, tmp_path, made.folder, "--reader", "Ana") as process:
        dialog = xdotool(x_server, "search", "--sync", "--name", "sign in$").splitlines()[0]
        wait_for(lambda: xdotool(x_server, "getwindowfocus") == dialog, 30, process)   # its only window
        xdotool(x_server, "type", "246810")
        xdotool(x_server, "key", "Return")
        window = xdotool(x_server, "search", "--sync", "--name", r"\(1 of 3\)").splitlines()[0]
        title = lambda: xdotool(x_server, "getwindowname", window)
        focused = lambda: xdotool(x_server, "getwindowfocus") == window
        wait_for(focused, 15, process)        # no windowfocus, no click: the workstation takes it
        xdotool(x_server, "key", "Right")
        wait_for(lambda: "(2 of 3)" in title(), 15, process)
        xdotool(x_server, "key", "F1")        # the key sheet, closed: the keys come back too
        xdotool(x_server, "search", "--sync", "--onlyvisible", "--name", "Keyboard shortcuts")
        xdotool(x_server, "key", "Escape")
        wait_for(focused, 15, process)
        xdotool(x_server, "key", "Right")
        wait_for(lambda: "(3 of 3)" in title(), 15, process)
        errors = quit_with_ctrl_q(x_server, process)
    assert process.returncode == 0, errors


def test_the_review_screen_opened_with_review_has_the_keyboard(x_server, reading_project, tmp_path):
    # It opened over the workstation, but the keys (1, 2, 3, C, M, ←/→) still went to the workstation
    # behind it where no window manager moves the focus.
    from tests.conftest import ADMIN_NAME, ADMIN_PASSPHRASE

    with running_workstation(x_server, tmp_path, reading_project.folder, "--reader", ADMIN_NAME, "--review") as process:
        dialog = xdotool(x_server, "search", "--sync", "--name", "sign in$").splitlines()[0]
        wait_for(lambda: xdotool(x_server, "getwindowfocus") == dialog, 30, process)
        xdotool(x_server, "type", ADMIN_PASSPHRASE)
        xdotool(x_server, "key", "Return")
        review = xdotool(x_server, "search", "--sync", "--name", "^Review — ").splitlines()[0]
        wait_for(lambda: xdotool(x_server, "getwindowfocus") == review, 15, process)
        errors = quit_with_ctrl_q(x_server, process)    # in the review screen: the whole application quits
    assert process.returncode == 0, errors


def test_a_message_box_gives_the_keys_back_to_the_window_without_a_window_manager(x_server, reading_project,
                                                                                   tmp_path):
    # `gui --review` as a plain reader says why not in a box; once it was closed (Enter) the
    # workstation's keys went nowhere.
    with running_workstation(x_server, tmp_path, reading_project.folder, "--reader", "Ana", "--review") as process:
        window = xdotool(x_server, "search", "--sync", "--name", r"\(1 of 3\)").splitlines()[0]
        box = xdotool(x_server, "search", "--sync", "--onlyvisible", "--name", "^Octant$").splitlines()[0]
        focused = lambda which: xdotool(x_server, "getwindowfocus") == which
        wait_for(lambda: focused(box), 15, process)
        xdotool(x_server, "key", "Return")
        wait_for(lambda: focused(window), 15, process)
        xdotool(x_server, "key", "Right")
        wait_for(lambda: "(2 of 3)" in xdotool(x_server, "getwindowname", window), 15, process)
        errors = quit_with_ctrl_q(x_server, process)
    assert process.returncode == 0, errors


def test_the_files_dialogs_and_windows_give_the_keys_back_without_a_window_manager(x_server, reading_project,
                                                                                     tmp_path):
    # Each got the keys while open, but once closed (Esc, or Ctrl+W for the review screen) nobody gave
    # them back: the admin's keys went nowhere until they clicked into the workstation. (Esc in "Sign in
    # as another reader" quit Octant.)
    from tests.conftest import ADMIN_NAME, ADMIN_PASSPHRASE

    with running_workstation(x_server, tmp_path, reading_project.folder, "--reader", ADMIN_NAME) as process:
        dialog = xdotool(x_server, "search", "--sync", "--name", "sign in$").splitlines()[0]
        wait_for(lambda: xdotool(x_server, "getwindowfocus") == dialog, 30, process)
        xdotool(x_server, "key", "alt+o")      # its folder chooser, closed: the keys come back to the dialog
        wait_for(lambda: xdotool(x_server, "getwindowfocus") not in ("", dialog), 30, process)
        xdotool(x_server, "key", "Escape")
        wait_for(lambda: xdotool(x_server, "getwindowfocus") == dialog, 15, process)
        xdotool(x_server, "type", ADMIN_PASSPHRASE)
        xdotool(x_server, "key", "Return")
        window = xdotool(x_server, "search", "--sync", "--name", f"— {ADMIN_NAME}$").splitlines()[0]
        focused = lambda: xdotool(x_server, "getwindowname", xdotool(x_server, "getwindowfocus"))
        wait_for(lambda: focused().endswith(f"— {ADMIN_NAME}"), 15, process)
        # File: Sign in as another…, Change my PIN…, Train models…, Review…, Back up now…, Readers and sets…
        for downs, title, close in ((1, "Change my PIN", "Escape"), (2, "Training — ", "Escape"),
                                    (3, "Review — ", "ctrl+w"), (5, "Readers and sets", "Escape"),
                                    (0, "Octant — sign in", "Escape")):   # Sign in as another…, cancelled
            xdotool(x_server, "key", "alt+f", *["Down"] * downs, "Return")
            wait_for(lambda title=title: focused().startswith(title), 30, process)
            xdotool(x_server, "key", close)
            wait_for(lambda: xdotool(x_server, "getwindowfocus") == window, 15, process)
        errors = quit_with_ctrl_q(x_server, process)
    assert process.returncode == 0, errors
