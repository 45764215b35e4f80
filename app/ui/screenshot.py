"""``--screenshot PATH``: open a view, run its default action for a while, save a PNG of the window, exit."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from app.ui.qt_main_window import QtMainWindow

WINDOW_SIZE = (1440, 900)


def take_screenshot(app: QApplication, window: QtMainWindow, path: str, view: str, after_s: float,
                    run_default: bool = True) -> int:
    """Show ``view``, call its ``default_action()`` (unless ``run_default`` is False: a session was opened),
    wait ``after_s`` seconds, save ``path``; 0 on success."""
    if view not in window.views:
        print(f"error: no view named {view!r}; views: {', '.join(window.views)}", file=sys.stderr)
        return 2
    target = Path(path)
    window.resize(*WINDOW_SIZE)
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
        else:
            print(f"error: could not write {target}", file=sys.stderr)
        window.close()
        app.quit()

    QTimer.singleShot(int(max(after_s, 0.0) * 1000), grab)
    app.exec()
    return result["code"]


__all__ = ["take_screenshot", "WINDOW_SIZE"]
