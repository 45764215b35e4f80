"""A pixel-exact image display: an RGB array shown big, with click / hover on pixels and square markers.

One ``ImageItem`` (row-major, uint8 RGB, no autolevels) in a locked-aspect ``ViewBox`` with panning and zoom
off, so a stray drag in front of a class never moves the picture.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QSizePolicy

from app.ui import theme


class QtPixelItem(pg.ImageItem):
    """An ``ImageItem`` that reports the pixel under the mouse (row, col) on click and hover."""

    def __init__(self, view: QtPixelView) -> None:
        super().__init__(axisOrder="row-major")
        self._view = view
        self.setAcceptHoverEvents(True)

    def _pixel(self, pos: QPointF) -> tuple[int, int] | None:
        if self.image is None:
            return None
        row, col = int(np.floor(pos.y())), int(np.floor(pos.x()))
        h, w = self.image.shape[:2]
        return (row, col) if 0 <= row < h and 0 <= col < w else None

    def mouseClickEvent(self, ev) -> None:  # noqa: N802 - Qt's name
        pixel = self._pixel(ev.pos())
        if pixel is None:
            return
        ev.accept()
        self._view.pixel_clicked.emit(pixel[0], pixel[1], int(ev.button().value))

    def hoverEvent(self, ev) -> None:  # noqa: N802
        if ev.isExit():
            self._view.pixel_hovered.emit(-1, -1)
            return
        pixel = self._pixel(ev.pos())
        self._view.pixel_hovered.emit(*(pixel or (-1, -1)))


class QtPixelView(pg.GraphicsLayoutWidget):
    """Shows an ``(H, W, 3)`` uint8 array; emits ``pixel_clicked(row, col, button)`` and ``pixel_hovered``."""

    pixel_clicked = Signal(int, int, int)
    pixel_hovered = Signal(int, int)  # (-1, -1) when the mouse leaves the image

    def __init__(self, parent=None, item_class: type[QtPixelItem] = QtPixelItem, min_size: int = 160) -> None:
        super().__init__(parent)
        self.ci.setContentsMargins(2, 2, 2, 2)
        self.view_box: pg.ViewBox = self.addViewBox(lockAspect=True, invertY=True, enableMouse=False,
                                                    enableMenu=False)
        self.view_box.setDefaultPadding(0.01)
        self.item = item_class(self)
        self.view_box.addItem(self.item)
        self._markers: dict[str, pg.PlotCurveItem] = {}
        self._shape: tuple[int, int] | None = None
        self.base_min_size = min_size
        self._scale = 1.0
        self._lines: dict[str, tuple[np.ndarray, str, float]] = {}
        self._labels: dict[str, list[tuple[pg.TextItem, str]]] = {}
        self.set_scale(theme.current_scale())
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_scale(self, scale: float) -> None:
        """Grow the least size and the marker lines with the projector scale, as the text beside them grows:
        at 200% a digit grid is never squeezed to the size that suits 100%. Called by itself when the
        application font changes (which is how the scale reaches every widget)."""
        self._scale = float(scale)
        size = theme.scaled(self.base_min_size, scale)
        self.setMinimumSize(size, size)
        for name, (boxes, colour, line) in list(self._lines.items()):
            self.set_boxes(name, boxes, colour, line)
        for items in self._labels.values():
            for item, _ in items:
                item.setFont(self._label_font())

    def set_base_min_size(self, size: int) -> None:
        """The least size at 100% (it grows with the scale)."""
        self.base_min_size = int(size)
        self.set_scale(self._scale)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        super().changeEvent(event)
        if event.type() == QEvent.Type.FontChange and theme.current_scale() != self._scale:
            self.set_scale(theme.current_scale())

    def set_rgb(self, rgb: np.ndarray) -> None:
        """Show an ``(H, W, 3)`` uint8 array (fixed levels: no flicker while it fills)."""
        rgb = np.ascontiguousarray(rgb)
        self.item.setImage(rgb, autoLevels=False, levels=(0, 255))
        shape = rgb.shape[:2]
        if shape != self._shape:
            self._shape = shape
            self.view_box.setRange(xRange=(0, shape[1]), yRange=(0, shape[0]), padding=0.01)

    @property
    def image(self) -> np.ndarray | None:
        return self.item.image

    def set_markers(self, name: str, pixels: list[tuple[int, int]] | np.ndarray, colour: str = "#4fc3f7",
                    width: float = 2.0) -> None:
        """Outline the given (row, col) pixels with squares (``name`` keeps several sets apart)."""
        pixels = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)
        ones = np.ones((len(pixels), 2))
        self.set_boxes(name, np.concatenate([pixels, ones], axis=1), colour, width)

    def set_outline(self, name: str, top: int, left: int, height: int, width: int, colour: str,
                    line: float = 2.0) -> None:
        """One rectangle around the pixels [top, top+height) x [left, left+width)."""
        self.set_boxes(name, np.array([[top, left, height, width]]), colour, line)

    def set_boxes(self, name: str, boxes: np.ndarray, colour: str, line: float = 2.0) -> None:
        """Rectangles ``(top, left, height, width)`` in pixels, drawn as one line item."""
        marker = self._marker(name)
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        self._lines[name] = (boxes, colour, line)
        dx = np.array([0, 1, 1, 0, 0, np.nan])
        dy = np.array([0, 0, 1, 1, 0, np.nan])
        x = (boxes[:, 1:2] + boxes[:, 3:4] * dx).reshape(-1)
        y = (boxes[:, 0:1] + boxes[:, 2:3] * dy).reshape(-1)
        marker.setData(x=x, y=y, pen=pg.mkPen(colour, width=line * self._scale))

    def _marker(self, name: str) -> pg.PlotCurveItem:
        marker = self._markers.get(name)
        if marker is None:
            marker = pg.PlotCurveItem(connect="finite")
            marker.setZValue(10)
            self.view_box.addItem(marker)
            self._markers[name] = marker
        return marker

    def clear_markers(self, name: str | None = None) -> None:
        for key, marker in self._markers.items():
            if name is None or key == name:
                marker.setData(x=np.zeros(0), y=np.zeros(0))
                self._lines.pop(key, None)

    def set_labels(self, name: str, labels: list[tuple[float, float, str, str]]) -> None:
        """Small text ``(row, col, text, colour)`` on a dark ground, its top-left corner at pixel (row, col);
        its size follows the projector scale, not the zoom (``name`` keeps several sets apart)."""
        self.clear_labels(name)
        items = []
        for row, col, text, colour in labels:
            item = pg.TextItem(text, color=colour, anchor=(0, 0), fill=pg.mkBrush(0, 0, 0, 170))
            item.setFont(self._label_font())
            item.setPos(col, row)
            item.setZValue(11)
            self.view_box.addItem(item)
            items.append((item, text))
        self._labels[name] = items

    def clear_labels(self, name: str | None = None) -> None:
        for key in [k for k in self._labels if name is None or k == name]:
            for item, _ in self._labels.pop(key):
                self.view_box.removeItem(item)

    def label_texts(self, name: str) -> list[str]:
        """The texts of the labels ``name`` on screen, in the order given."""
        return [text for _, text in self._labels.get(name, [])]

    def _label_font(self) -> QFont:
        font = QFont(self.font())  # the application font, which carries the projector scale
        font.setPointSizeF(max(6.0, 0.8 * font.pointSizeF()))
        font.setBold(True)
        return font

    def scene_point(self, row: float, col: float) -> QPoint:
        """Viewport coordinates of the centre of pixel (row, col), for tests that click like a user."""
        scene = self.item.mapToScene(QPointF(col + 0.5, row + 0.5))
        return self.mapFromScene(scene)

    def click_pixel(self, row: int, col: int, button: Qt.MouseButton = Qt.MouseButton.LeftButton) -> None:
        """Act as if the user clicked pixel (row, col)."""
        self.pixel_clicked.emit(row, col, int(button.value))


__all__ = ["QtPixelView", "QtPixelItem"]
