"""A drawing canvas in the model's own pixels: pen, eraser, brush size, clear, invert.

The canvas holds ``values`` ``(C, H, W)`` uint8 in ``0 .. K-1`` — exactly what the model is given — and shows
them big. A binary model gets a hard brush; a grey one a soft-edged brush, as a pen on paper would make.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal

from app.ui.qt_pixel_view import QtPixelItem, QtPixelView
from app.ui.rendering import values_to_rgb


def brush_kernel(size: int, soft: bool) -> list[tuple[int, int, float]]:
    """Offsets (drow, dcol) and weights of a round brush ``size`` pixels across."""
    radius = size / 2  # 1: one pixel, 2: a plus, 3: a 3x3 square, 4: a disc of radius 2
    reach = int(np.ceil(radius + (1 if soft else 0)))
    kernel = []
    for dr in range(-reach, reach + 1):
        for dc in range(-reach, reach + 1):
            d = float(np.hypot(dr, dc))
            if d <= radius + 1e-9:
                kernel.append((dr, dc, 1.0))
            elif soft and d <= radius + 0.8:
                kernel.append((dr, dc, 0.45))
    return kernel


def line_pixels(start: tuple[int, int], end: tuple[int, int]) -> list[tuple[int, int]]:
    """The pixels on a straight line from ``start`` to ``end`` (both included), so fast strokes have no gaps."""
    (r0, c0), (r1, c1) = start, end
    steps = max(abs(r1 - r0), abs(c1 - c0), 1)
    rows = np.rint(np.linspace(r0, r1, steps + 1)).astype(int)
    cols = np.rint(np.linspace(c0, c1, steps + 1)).astype(int)
    return list(dict.fromkeys(zip(rows.tolist(), cols.tolist(), strict=True)))


class QtCanvasItem(QtPixelItem):
    """Turns mouse drags on the image into strokes on the canvas."""

    def __init__(self, view: QtDrawingCanvas) -> None:
        super().__init__(view)
        self._canvas = view
        self._last: tuple[int, int] | None = None

    def mouseDragEvent(self, ev) -> None:  # noqa: N802 - Qt's name
        if ev.button() != Qt.MouseButton.LeftButton:
            ev.ignore()
            return
        ev.accept()
        pixel = self._pixel(ev.pos())
        if ev.isStart():
            # The drag starts once the mouse has moved a little: the stroke starts where the button went down.
            self._last = self._pixel(ev.buttonDownPos()) or pixel
        if pixel is not None:
            points = line_pixels(self._last, pixel) if self._last is not None else [pixel]
            self._canvas.stroke(points, finished=False)
            self._last = pixel
        if ev.isFinish():
            self._last = None
            self._canvas.stroke([], finished=True)

    def mouseClickEvent(self, ev) -> None:  # noqa: N802
        if ev.button() != Qt.MouseButton.LeftButton:
            super().mouseClickEvent(ev)  # other buttons report the pixel (right: inspect it)
            return
        pixel = self._pixel(ev.pos())
        if pixel is not None:
            ev.accept()
            self._canvas.stroke([pixel], finished=True)


class QtDrawingCanvas(QtPixelView):
    """``changed`` fires while the pen moves, ``stroke_finished`` when it lifts (or after a new image, clear or
    invert), ``stroked`` when the pen or the eraser changed pixels."""

    changed = Signal()
    stroke_finished = Signal()
    stroked = Signal()  # the pen or eraser changed pixels (not a whole new image)

    def __init__(self, parent=None) -> None:
        super().__init__(parent, item_class=QtCanvasItem, min_size=150)
        self.values = np.zeros((1, 28, 28), dtype=np.uint8)
        self.num_values = 2
        self.erasing = False
        self.brush_size = 2
        self.stroke_count = 0
        self._redraw()

    def set_format(self, shape: tuple[int, int, int], num_values: int) -> None:
        """A blank canvas for a model of this shape and number of values."""
        self.values = np.zeros(shape, dtype=np.uint8)
        self.num_values = int(num_values)
        self._redraw()

    def set_values(self, values: np.ndarray) -> None:
        values = np.asarray(values)
        if values.shape != self.values.shape:
            raise ValueError(f"the image is {values.shape}, the canvas {self.values.shape}")
        self.values = np.clip(values, 0, self.num_values - 1).astype(np.uint8)
        self._redraw()
        self.changed.emit()
        self.stroke_finished.emit()

    def stroke(self, pixels: list[tuple[int, int]], finished: bool) -> None:
        """Paint (or erase) along ``pixels`` with the current brush."""
        top = self.num_values - 1
        _, h, w = self.values.shape
        for r, c in pixels:
            for dr, dc, weight in brush_kernel(self.brush_size, soft=self.num_values > 2):
                rr, cc = r + dr, c + dc
                if 0 <= rr < h and 0 <= cc < w:
                    level = int(round(weight * top))
                    if self.erasing:
                        self.values[:, rr, cc] = np.minimum(self.values[:, rr, cc], top - level)
                    else:
                        self.values[:, rr, cc] = np.maximum(self.values[:, rr, cc], level)
        if pixels:
            self._redraw()
            self.stroked.emit()
            self.changed.emit()
        if finished:
            self.stroke_count += 1
            self.stroke_finished.emit()

    def erase_all(self) -> None:
        """A blank canvas (not ``clear``: pyqtgraph's layout widget uses that name for its own layout)."""
        self.set_values(np.zeros_like(self.values))

    def invert(self) -> None:
        self.set_values((self.num_values - 1) - self.values)

    def _redraw(self) -> None:
        self.set_rgb(values_to_rgb(self.values, self.num_values))


__all__ = ["QtDrawingCanvas", "brush_kernel", "line_pixels"]
