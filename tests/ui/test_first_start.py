"""First start on a machine without the system library libxcb-cursor0: one line that says how to install it,
instead of Qt's abort."""

from __future__ import annotations

import ctypes

import pytest

pytest.importorskip("PySide6")

import app.main  # noqa: E402


@pytest.fixture
def x11(monkeypatch):
    """An X11 session (no Wayland) with no platform chosen: Qt would load its xcb plugin."""
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("XDG_SESSION_TYPE", "x11")
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(app.main.sys, "platform", "linux")


@pytest.fixture
def no_xcb_cursor(monkeypatch):
    real = ctypes.CDLL

    def cdll(name, *args, **kwargs):
        if "xcb-cursor" in str(name):
            raise OSError(f"{name}: cannot open shared object file: No such file or directory")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(app.main.ctypes, "CDLL", cdll)


def test_a_missing_libxcb_cursor_is_one_line_with_the_fix(x11, no_xcb_cursor, monkeypatch, capsys):
    import app.ui.launch

    def never(args):
        raise AssertionError("the window must not be built: Qt would abort")

    monkeypatch.setattr(app.ui.launch, "launch", never)
    assert app.main.main([]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "libxcb-cursor0" in err and "sudo apt install libxcb-cursor0" in err


@pytest.mark.parametrize(("variable", "value"), [("QT_QPA_PLATFORM", "offscreen"), ("QT_QPA_PLATFORM", "wayland"),
                                                 ("WAYLAND_DISPLAY", "wayland-0")])
def test_other_platforms_do_not_need_it(x11, no_xcb_cursor, monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    assert app.main.missing_system_library() is None


def test_a_machine_that_has_it_starts(x11, monkeypatch):
    monkeypatch.setattr(app.main.ctypes, "CDLL", lambda name, *a, **k: object())
    assert app.main.missing_system_library() is None
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    assert app.main.missing_system_library() is None
