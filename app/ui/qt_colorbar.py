"""A vertical colour bar with its unit: what the colours of a heat map mean, in nats."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget

from app.ui import theme


class QtColorBar(QWidget):
    """Shows a colour table from ``vmin`` (bottom) to ``vmax`` (top) with tick labels and a caption."""

    def __init__(self, table: np.ndarray, caption: str, parent=None) -> None:
        super().__init__(parent)
        self.table = np.ascontiguousarray(table[::-1])  # top row = vmax
        self.caption = caption
        self.vmin, self.vmax = 0.0, 1.0
        self.open_top = False  # values above vmax are clipped: label the top "≥"
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Expanding)

    def set_range(self, vmin: float, vmax: float, open_top: bool = False) -> None:
        self.vmin, self.vmax, self.open_top = float(vmin), float(vmax), open_top
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802
        width = self.fontMetrics().horizontalAdvance("≥ 10.0") + 30
        return QSize(width, 200)

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(self.sizeHint().width(), 80)

    def paintEvent(self, event) -> None:  # noqa: N802
        painter = QPainter(self)
        metrics = self.fontMetrics()
        line = metrics.height()
        top, bottom = line * 2, self.height() - line
        bar = QRectF(4, top, 16, max(bottom - top, 10))
        rgb = np.repeat(self.table[:, None, :], 4, axis=1)
        rgba = np.ascontiguousarray(np.concatenate([rgb, np.full((*rgb.shape[:2], 1), 255, np.uint8)], axis=2))
        image = QImage(rgba.data, rgba.shape[1], rgba.shape[0], rgba.shape[1] * 4, QImage.Format.Format_RGBA8888)
        painter.drawImage(bar, image)
        painter.setPen(QColor(theme.TEXT))
        painter.drawText(0, 0, self.width(), line, Qt.AlignmentFlag.AlignLeft, self.caption)
        for fraction in (0.0, 0.5, 1.0):
            value = self.vmin + fraction * (self.vmax - self.vmin)
            y = bar.bottom() - fraction * bar.height()
            text = f"{'≥ ' if fraction == 1.0 and self.open_top else ''}{value:.1f}"
            painter.drawText(int(bar.right()) + 4, int(y - line / 2), self.width(), line,
                             Qt.AlignmentFlag.AlignVCenter, text)
        painter.end()


__all__ = ["QtColorBar"]
