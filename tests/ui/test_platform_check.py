"""Before Qt starts on an X11 desktop, missing system libraries are named with the apt line that
installs them, instead of Qt's abort (exit 134)."""
import pytest

from main import main
from storage.errors import OctantError
from ui import platform_check


@pytest.mark.parametrize("soname, package", [
    ("libxcb-cursor.so.0", "libxcb-cursor0"), ("libxcb-icccm.so.4", "libxcb-icccm4"),
    ("libxcb-keysyms.so.1", "libxcb-keysyms1"), ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0"),
    ("libxcb-render-util.so.0", "libxcb-render-util0"), ("libEGL.so.1", "libegl1"), ("libdbus-1.so.3", "libdbus-1-3")])
def test_a_missing_library_is_named_by_its_debian_package(soname, package):
    assert platform_check.debian_package(soname) == package


@pytest.mark.parametrize("environ, xcb", [
    ({"QT_QPA_PLATFORM": "xcb"}, True), ({"QT_QPA_PLATFORM": "offscreen", "DISPLAY": ":0"}, False),
    ({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"}, False), ({}, False)])
def test_only_an_x11_session_is_checked(environ, xcb, monkeypatch):
    monkeypatch.setattr(platform_check.sys, "platform", "linux")
    assert platform_check.uses_xcb(environ) is xcb


def test_the_gui_says_which_packages_to_install_and_exits_1(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.setenv("OCTANT_DEMO_DIR", str(tmp_path / "demo"))
    monkeypatch.setattr(platform_check, "missing_libraries",
                        lambda plugin: ["libxcb-cursor.so.0", "libxcb-icccm.so.4"])
    assert main(["gui", "--demo"]) == 1
    message = capsys.readouterr().err.strip()
    assert message.count("\n") == 0 and not (tmp_path / "demo").exists()
    assert "`sudo apt-get install libxcb-cursor0 libxcb-icccm4`" in message


def test_the_plugin_of_this_install_is_found_and_checked():
    plugin = platform_check.xcb_plugin()
    if not plugin.is_file():
        pytest.skip("this PySide6 has no X11 plugin (not Linux)")
    assert all(".so" in soname for soname in platform_check.missing_libraries(plugin))


def test_nothing_is_checked_offscreen(monkeypatch):
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    monkeypatch.setattr(platform_check, "missing_libraries", lambda plugin: pytest.fail("checked"))
    platform_check.check_qt_can_open_windows()


def test_one_missing_library_is_one_sentence(monkeypatch):
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.setattr(platform_check, "missing_libraries", lambda plugin: ["libxcb-keysyms.so.1"])
    with pytest.raises(OctantError, match=r"libxcb-keysyms.so.1 is missing.*apt-get install libxcb-keysyms1`"):
        platform_check.check_qt_can_open_windows()


def test_an_x_display_that_cannot_be_reached_is_one_sentence_not_an_abort(monkeypatch, capsys, tmp_path):
    """A stale DISPLAY made Qt abort (exit 134) blaming libxcb-cursor0."""
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("XDG_SESSION_TYPE", raising=False)
    monkeypatch.setenv("DISPLAY", ":7391")   # no X server listens there
    monkeypatch.setenv("OCTANT_DEMO_DIR", str(tmp_path / "demo"))
    monkeypatch.setattr(platform_check, "missing_libraries", lambda plugin: [])
    if platform_check.display_reachable(":7391") is None:
        pytest.skip("no libxcb on this machine to try the display with")
    assert main(["gui", "--demo"]) == 1
    message = capsys.readouterr().err.strip()
    assert message.count("\n") == 0 and "cannot reach the X display ':7391'" in message
    assert not (tmp_path / "demo").exists()
