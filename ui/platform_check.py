"""Before Qt starts: can its X11 platform plugin load on this Linux desktop?

Without some system libraries Qt prints "could not load the Qt platform plugin xcb" and aborts
the process (exit 134). Checked here first, so the user gets one sentence naming the Debian/Ubuntu
packages to install. The plugin's own dependencies are listed by ``ldd``; ``libxcb-cursor`` is
opened by Qt at run time (Qt ≥ 6.5), so it is looked for separately. An X display that cannot be
reached (a stale ``DISPLAY``, an X server that has gone) makes Qt abort the same way, blaming
libxcb-cursor0; it is tried with libxcb itself first. Imports no Qt module.
"""
from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from storage.errors import OctantError

# What a minimal Debian/Ubuntu desktop lacks most often (README, "System packages").
APT_PACKAGES = ("libxcb-cursor0", "libxcb-icccm4", "libxcb-keysyms1", "libxcb-image0", "libxcb-render-util0",
                "libxcb-xkb1", "libxkbcommon-x11-0", "libegl1", "libfontconfig1", "libdbus-1-3")
LOADED_AT_RUN_TIME = ("libxcb-cursor.so.0",)


def uses_xcb(environ=os.environ) -> bool:
    """Whether Qt will pick its X11 plugin: asked for, or the default on an X11 Linux session."""
    platform = environ.get("QT_QPA_PLATFORM", "")
    if platform:
        return platform.split(":")[0].split(";")[0] == "xcb"
    return (sys.platform.startswith("linux") and bool(environ.get("DISPLAY"))
            and not (environ.get("WAYLAND_DISPLAY") or environ.get("XDG_SESSION_TYPE") == "wayland"))


def xcb_plugin() -> Path:
    import PySide6  # the package only: loads no Qt library

    return Path(PySide6.__file__).parent / "Qt" / "plugins" / "platforms" / "libqxcb.so"


def missing_libraries(plugin: Path) -> list[str]:
    """Shared libraries the plugin needs that the system cannot find (sonames, sorted)."""
    missing = set()
    if shutil.which("ldd"):
        listing = subprocess.run(["ldd", str(plugin)], capture_output=True, text=True, timeout=30).stdout
        missing.update(re.findall(r"^\s*(\S+) => not found", listing, re.MULTILINE))
    for soname in LOADED_AT_RUN_TIME:
        try:
            ctypes.CDLL(soname)
        except OSError:
            missing.add(soname)
    return sorted(missing)


def debian_package(soname: str) -> str:
    """The Debian/Ubuntu package that ships a library: ``libxcb-icccm.so.4`` -> ``libxcb-icccm4``."""
    name, _, version = soname.partition(".so.")
    name = name.lower()
    return f"{name}{'-' if name[-1].isdigit() else ''}{version.split('.')[0]}"


def check_qt_can_open_windows() -> None:
    """Raise ``OctantError`` (one sentence with the apt line) when Qt's X11 plugin cannot load."""
    if not uses_xcb():
        return
    plugin = xcb_plugin()
    if not plugin.is_file():
        return   # another PySide6 layout: Qt says what it lacks itself
    missing = missing_libraries(plugin)
    if missing:
        packages = " ".join(dict.fromkeys(debian_package(soname) for soname in missing))
        raise OctantError(f"Qt cannot open a window on this X11 desktop because {', '.join(missing)} "
                          f"{'is' if len(missing) == 1 else 'are'} missing; on Debian or Ubuntu install "
                          f"them with `sudo apt-get install {packages}` (README, \"System packages\").")
    check_display_reachable()


def display_reachable(display: str | None) -> bool | None:
    """Whether libxcb connects to the X display (None: libxcb itself is not there to ask)."""
    try:
        xcb = ctypes.CDLL("libxcb.so.1")
    except OSError:
        return None
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    connection = xcb.xcb_connect(display.encode() if display else None, None)
    try:
        return xcb.xcb_connection_has_error(connection) == 0
    finally:
        xcb.xcb_disconnect(connection)   # also safe on libxcb's error connection


def check_display_reachable(environ=os.environ) -> None:
    """Raise ``OctantError`` (one sentence) when Qt's X11 plugin would find no display to connect to."""
    display = environ.get("DISPLAY")
    if display_reachable(display) is False:
        where = f"the X display {display!r} ($DISPLAY)" if display else "an X display ($DISPLAY is not set)"
        raise OctantError(f"Qt cannot reach {where}; start the desktop session or set DISPLAY to a running "
                          "X server, or see the workstation with `python main.py screenshot --out DIR`.")
