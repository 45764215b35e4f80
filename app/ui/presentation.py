"""Presentation mode (F11): the window full screen, with nothing on it but the view.

The menu bar, the toolbar, the model card, the tab bar, the status bar and the notices dock are hidden and
come back as they were when the mode ends. The keyboard keeps working: the window holds every menu action
itself, so their shortcuts (Ctrl+1, 2, 3… to switch views, Ctrl++ / Ctrl+- for the scale, F11 to leave)
do not depend on a visible menu bar.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMainWindow, QWidget


class PresentationMode:
    """Toggles ``window`` between its normal look and full screen with only the view.

    Parameters
    ----------
    window
        The main window.
    chrome
        Returns the widgets to hide (called on entering, so that widgets made later are included).
    """

    def __init__(self, window: QMainWindow, chrome: Callable[[], list[QWidget]]) -> None:
        self.window = window
        self._chrome = chrome
        self._shown: list[tuple[QWidget, bool]] = []
        self._state = Qt.WindowState.WindowNoState
        self.active = False

    def toggle(self) -> bool:
        """Enter or leave presentation mode; returns whether it is on now."""
        if self.active:
            self.leave()
        else:
            self.enter()
        return self.active

    def enter(self) -> None:
        if self.active:
            return
        self._shown = [(widget, widget.isVisible()) for widget in self._chrome()]
        self._state = self.window.windowState()
        for widget, _ in self._shown:
            widget.hide()
        self.window.showFullScreen()
        self.active = True

    def leave(self) -> None:
        if not self.active:
            return
        for widget, visible in self._shown:
            widget.setVisible(visible)
        self._shown = []
        self.window.setWindowState(self._state & ~Qt.WindowState.WindowFullScreen)
        self.window.show()
        self.active = False


__all__ = ["PresentationMode"]
