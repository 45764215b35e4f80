"""The ``ar-explorer`` entry point: the desktop app with no command, the headless CLI otherwise.

This module sits above both layers: :mod:`app.cli` never imports Qt, and only this function reaches for
:mod:`app.ui`, and only when the app is asked for.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys
from collections.abc import Sequence

XCB_CURSOR = "libxcb-cursor.so.0"
XCB_CURSOR_FIX = (
    "error: the desktop app needs the system library libxcb-cursor0, which Qt 6.5 and later load on X11, and "
    "this machine lacks it: sudo apt install libxcb-cursor0 (Fedora: sudo dnf install xcb-util-cursor; Arch: "
    "sudo pacman -S xcb-util-cursor); the headless commands work without it: ar-explorer --help"
)


def missing_system_library() -> str | None:
    """The one-line fix for a system library that Qt needs here and cannot find, or None.

    Without ``libxcb-cursor0``, Qt's X11 platform plugin aborts the process with a page of messages (and a
    core dump) before any of the app's code can say what is wrong. Only the X11 plugin needs it: a Wayland
    session, ``QT_QPA_PLATFORM=offscreen`` or another platform is left alone.
    """
    if not sys.platform.startswith("linux"):
        return None
    platform = os.environ.get("QT_QPA_PLATFORM", "").strip().lower()
    if platform and not platform.startswith("xcb"):
        return None
    wayland = os.environ.get("WAYLAND_DISPLAY") or os.environ.get("XDG_SESSION_TYPE", "").lower() == "wayland"
    if not platform and wayland:
        return None  # Qt picks its Wayland plugin there
    try:
        ctypes.CDLL(XCB_CURSOR)
    except OSError:
        return XCB_CURSOR_FIX
    return None


def launch_gui(args: argparse.Namespace) -> int:
    """Start the desktop app, or explain in one line why it cannot start."""
    try:
        import pyqtgraph  # noqa: F401
        import PySide6  # noqa: F401
    except ImportError:
        print(
            "error: the desktop app needs PySide6 and pyqtgraph (pip install 'ar-explorer[gui]'); "
            "the headless commands work without them: ar-explorer --help",
            file=sys.stderr,
        )
        return 2
    problem = missing_system_library()
    if problem is not None:
        print(problem, file=sys.stderr)
        return 2
    from app.ui.launch import launch

    return int(launch(args) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    from app.cli.main import main as cli_main

    return cli_main(argv, gui=launch_gui)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
