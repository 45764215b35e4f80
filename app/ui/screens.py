"""Sizes that follow the screen the window opens on."""

from __future__ import annotations

from PySide6.QtCore import QSize

PREFERRED_SIZE = (1400, 900)


def initial_window_size(available: QSize, preferred: tuple[int, int] = PREFERRED_SIZE) -> tuple[int, int]:
    """The first size of the window: ``preferred``, or the screen's available area where that is smaller
    (a 1280x720 laptop opens a window that fits it, not one that hangs off its edges)."""
    width, height = preferred
    if available.width() > 0:
        width = min(width, available.width())
    if available.height() > 0:
        height = min(height, available.height())
    return width, height


__all__ = ["initial_window_size", "PREFERRED_SIZE"]
