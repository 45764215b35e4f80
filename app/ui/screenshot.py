"""``--screenshot PATH``: open a view, run its default action for a while, save a PNG of the window, exit.

``--size WxH`` asks for a window of that size. Qt never makes a window smaller than its layout's minimum, so a
PNG of exactly that size shows that the view fits; a larger one is reported, with the size it needed.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from app.core.errors import ARExplorerError
from app.ui.qt_main_window import QtMainWindow

WINDOW_SIZE = (1440, 900)


def parse_size(text: str | None) -> tuple[int, int]:
    """``"1280x720"`` as ``(1280, 720)``; ``None`` is :data:`WINDOW_SIZE`.

    Raises
    ------
    ARExplorerError
        When ``text`` is not two whole numbers between 200 and 10000 joined by ``x``.
    """
    if text is None:
        return WINDOW_SIZE
    match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text)
    if match is None:
        raise ARExplorerError(f"--size takes WIDTHxHEIGHT in pixels, such as 1280x720, not {text!r}")
    width, height = int(match.group(1)), int(match.group(2))
    if not (200 <= width <= 10000 and 200 <= height <= 10000):
        raise ARExplorerError(f"--size {width}x{height}: each side must be between 200 and 10000 pixels")
    return width, height


def take_screenshot(app: QApplication, window: QtMainWindow, path: str, view: str, after_s: float,
                    size: tuple[int, int] = WINDOW_SIZE, run_default: bool = True) -> int:
    """Show ``view``, call its ``default_action()`` (unless ``run_default`` is False: a session was opened),
    wait ``after_s`` seconds, save ``path``; 0 on success."""
    if view not in window.views:
        print(f"error: no view named {view!r}; views: {', '.join(window.views)}", file=sys.stderr)
        return 2
    target = Path(path)
    window.resize(*size)
    window.show()
    widget = window.show_view(view)
    app.processEvents()
    action = getattr(widget, "default_action", None)
    if action is not None and run_default and window.context.loaded is not None:
        action()
    result = {"code": 1}

    def grab() -> None:
        app.processEvents()
        ready = getattr(widget, "screenshot_ready", None)
        if ready is not None:
            ready()
        app.processEvents()
        target.parent.mkdir(parents=True, exist_ok=True)
        ok = window.grab().save(str(target), "PNG")
        if ok:
            result["code"] = 0
            got = (window.width(), window.height())
            if got != tuple(size):
                print(f"note: the {view} view needed a {got[0]}x{got[1]} window, not {size[0]}x{size[1]}",
                      file=sys.stderr)
        else:
            print(f"error: could not write {target}", file=sys.stderr)
        window.close()
        app.quit()

    QTimer.singleShot(int(max(after_s, 0.0) * 1000), grab)
    app.exec()
    return result["code"]


__all__ = ["take_screenshot", "parse_size", "WINDOW_SIZE"]
