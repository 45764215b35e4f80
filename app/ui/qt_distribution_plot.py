"""The conditional distribution of the pixel being drawn or inspected, as a bar chart or a curve.

Binary models: one bar of p(x_i = 1) per image in the grid (all are drawn at the same step), coloured by the
value that was drawn. More values: p(x_i = k) over k for one image, as bars up to 16 values and as a curve
beyond; the tempered distribution that was actually sampled from is drawn over it when it differs.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGraphicsItem

from app.ui import theme

ONE = "#f5f5f5"
ZERO = "#5c6b82"
FOCUS = theme.ACCENT
TEMPERED = theme.WARN


class QtDistributionPlot(pg.PlotWidget):
    """A plot that shows one conditional (or a batch of binary ones) at a time; ``heights`` keeps what it shows."""

    def __init__(self, parent=None, scale: float = 1.0) -> None:
        super().__init__(parent)
        self.plot_item: pg.PlotItem = self.getPlotItem()
        self.plot_item.setMenuEnabled(False)
        self.plot_item.hideButtons()
        self.plot_item.setMouseEnabled(False, False)
        self.plot_item.showGrid(y=True, alpha=0.25)
        for name in ("left", "bottom"):  # axes change rarely; the bars change every frame
            axis = self.plot_item.getAxis(name)
            axis.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
            axis.enableAutoSIPrefix(False)  # probabilities are plain numbers, never "x0.001"
        self._bars = pg.BarGraphItem(x=[], height=[], width=0.8)
        self._tempered = pg.ScatterPlotItem(symbol="_", size=22, pen=pg.mkPen(TEMPERED, width=3), brush=pg.mkBrush(TEMPERED))
        self._curve = pg.PlotDataItem(pen=pg.mkPen(FOCUS, width=2.5), fillLevel=0, brush=(79, 195, 247, 60))
        self._tempered_curve = pg.PlotDataItem(pen=pg.mkPen(TEMPERED, width=2, style=Qt.PenStyle.DashLine))
        self._value_line = pg.InfiniteLine(angle=90, pen=pg.mkPen(ONE, width=1.5, style=Qt.PenStyle.DotLine))
        self._reference = pg.InfiniteLine(angle=0, pen=pg.mkPen(TEMPERED, width=2, style=Qt.PenStyle.DashLine),
                                          label="", labelOpts={"position": 0.02, "color": TEMPERED, "anchors":
                                                               [(0, 1), (0, 1)]})
        for item in (self._bars, self._tempered, self._curve, self._tempered_curve, self._value_line, self._reference):
            self.plot_item.addItem(item)
        self._value_line.hide()
        self._reference.hide()
        self.heights = np.zeros(0)
        self.tempered_heights: np.ndarray | None = None
        self._labels = ("", "")
        self._scale = scale
        self.plot_item.getAxis("left").geometryChanged.connect(self._fit_left_label)  # the chart's height changed
        self.set_scale(scale)

    # -- appearance ----------------------------------------------------------------------------------------
    def set_scale(self, scale: float) -> None:
        self._scale = scale
        theme.style_plot(self.plot_item, scale, *self._labels)
        self._tempered.setSize(22 * scale)
        self._reference.label.setFont(theme.scaled_font(scale, 0.9))  # "test images: ..." grows with the rest
        self._fit_left_label()

    def _axes(self, left: str, bottom: str) -> None:
        if (left, bottom) != self._labels:
            self._labels = (left, bottom)
            theme.style_plot(self.plot_item, self._scale, left, bottom)
            self._fit_left_label()

    def left_label_fits(self) -> bool:
        """Whether the vertical axis is long enough for its label (the title names the same quantity)."""
        if not self._labels[0]:
            return True
        axis = self.plot_item.getAxis("left")
        return axis.label.boundingRect().width() <= axis.height()  # the label's length, as drawn (rotated)

    def _fit_left_label(self) -> None:
        """Hide the vertical axis's label on a chart too short for it: at a large scale it ran past the
        axis and printed over the tick labels."""
        axis = self.plot_item.getAxis("left")
        fits = self.left_label_fits()
        if fits != axis.label.isVisible():
            axis.showLabel(fits)

    def set_title(self, text: str) -> None:
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        self.plot_item.setTitle(text, size=f"{theme.point_size(self._scale):.0f}pt", color=theme.TEXT)

    def clear_data(self, title: str = "") -> None:
        self._bars.setOpts(x=[], height=[])
        self._tempered.setData([], [])
        self._curve.setData([], [])
        self._tempered_curve.setData([], [])
        self._value_line.hide()
        self._reference.hide()
        self.heights = np.zeros(0)
        self.tempered_heights = None
        self.set_title(title)

    def show_values(self, values: np.ndarray, left: str, focus: int = -1, reference: float | None = None,
                    reference_label: str = "") -> None:
        """One bar per image of any non-negative figure (an NLL in nats, say), with a dashed reference line."""
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        n = len(values)
        x = np.arange(1, n + 1)
        pens = [pg.mkPen(FOCUS, width=3) if i == focus else pg.mkPen(None) for i in range(n)]
        self._curve.setData([], [])
        self._tempered_curve.setData([], [])
        self._tempered.setData([], [])
        self.tempered_heights = None
        self._value_line.hide()
        self._bars.setOpts(x=x, height=values, width=0.8, brushes=[pg.mkBrush(ZERO)] * n, pens=pens)
        self._reference.setVisible(reference is not None)
        top = float(values.max()) if n else 1.0
        if reference is not None:
            self._reference.setValue(reference)
            self._reference.label.setFormat(reference_label)
            top = max(top, reference)
        self.heights = values
        self._axes(left, "image in the grid")
        self.plot_item.setXRange(0.4, n + 0.6, padding=0)
        self.plot_item.setYRange(0, top * 1.12 if top > 0 else 1.0, padding=0)
        self._ticks(x if n <= 8 else x[:: int(np.ceil(n / 8))])

    # -- data ----------------------------------------------------------------------------------------------
    def show_binary_batch(self, p_one: np.ndarray, tempered_one: np.ndarray | None, values: np.ndarray,
                          focus: int = -1) -> None:
        """One bar of p(x_i = 1) per image; bright where a 1 was drawn; ``focus`` outlined."""
        p_one = np.asarray(p_one, dtype=np.float64)
        n = len(p_one)
        x = np.arange(1, n + 1)
        brushes = [pg.mkBrush(ONE if v else ZERO) for v in np.asarray(values).reshape(-1)]
        pens = [pg.mkPen(FOCUS, width=3) if i == focus else pg.mkPen(None) for i in range(n)]
        self._curve.setData([], [])
        self._tempered_curve.setData([], [])
        self._value_line.hide()
        self._reference.hide()
        self._bars.setOpts(x=x, height=p_one, width=0.8, brushes=brushes, pens=pens)
        self._set_tempered(x, p_one, tempered_one)
        self.heights = p_one
        self._axes("p(xᵢ = 1)", "image in the grid")
        self.plot_item.setXRange(0.4, n + 0.6, padding=0)
        self.plot_item.setYRange(0, 1.0, padding=0.02)
        self._ticks(x if n <= 8 else x[:: int(np.ceil(n / 8))])

    def show_categorical(self, probs: np.ndarray, tempered: np.ndarray | None = None, value: int | None = None,
                         value_names: list[str] | None = None) -> None:
        """p(x_i = k) over the K values of one pixel, with the drawn (or actual) value marked."""
        probs = np.asarray(probs, dtype=np.float64).reshape(-1)
        k = len(probs)
        x = np.arange(k)
        self._reference.hide()
        if k <= 16:
            brushes = [pg.mkBrush(FOCUS if value is not None and i == value else ZERO) for i in range(k)]
            self._curve.setData([], [])
            self._tempered_curve.setData([], [])
            self._value_line.hide()
            self._bars.setOpts(x=x, height=probs, width=0.7, brushes=brushes, pens=[pg.mkPen(None)] * k)
            self._set_tempered(x, probs, tempered)
            self.plot_item.setXRange(-0.6, k - 0.4, padding=0)
            self._ticks(x, value_names)
        else:
            self._bars.setOpts(x=[], height=[])
            self._tempered.setData([], [])
            self._curve.setData(x, probs)
            show_tempered = tempered is not None and not np.allclose(tempered, probs, atol=1e-4)
            self._tempered_curve.setData(x, tempered if show_tempered else [])
            self.tempered_heights = np.asarray(tempered) if show_tempered else None
            self._value_line.setVisible(value is not None)
            if value is not None:
                self._value_line.setValue(value + 0.0)
            self.plot_item.setXRange(0, k - 1, padding=0.01)
            self.plot_item.getAxis("bottom").setTicks(None)
        top = float(max(probs.max(), tempered.max() if tempered is not None else 0.0))
        self.plot_item.setYRange(0, 1.0 if k <= 16 else max(top * 1.1, 1e-3), padding=0.02)
        self.heights = probs
        self._axes("p(xᵢ = k | x&lt;ᵢ)", "value k")

    def _set_tempered(self, x: np.ndarray, probs: np.ndarray, tempered: np.ndarray | None) -> None:
        if tempered is None or np.allclose(tempered, probs, atol=1e-4):
            self._tempered.setData([], [])
            self.tempered_heights = None
            return
        self._tempered.setData(x, np.asarray(tempered, dtype=np.float64))
        self.tempered_heights = np.asarray(tempered)

    def _ticks(self, x: np.ndarray, names: list[str] | None = None) -> None:
        labels = names if names is not None and len(names) == len(x) else [str(int(v)) for v in x]
        self.plot_item.getAxis("bottom").setTicks([list(zip(x.tolist(), labels, strict=False))])


__all__ = ["QtDistributionPlot"]
