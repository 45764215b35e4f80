"""The plots of the 1-D / 2-D demos: a density over the data's histogram, two density images, NLL curves."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

from app.ui import theme

DATA_BRUSH = (154, 163, 178, 110)  # theme.MUTED, translucent
BAND_BRUSH = (239, 83, 80, 45)  # theme.ERROR, translucent
BAND_NAME = "test, unseen band"


def _quiet(plot: pg.PlotItem) -> None:
    plot.setMenuEnabled(False)
    plot.hideButtons()
    plot.setMouseEnabled(False, False)
    for name in ("left", "bottom"):  # probabilities and steps, never "x0.001"
        plot.getAxis(name).enableAutoSIPrefix(False)


class QtDensityPlot1D(pg.PlotWidget):
    """The training data's histogram (bars), the test data's (dotted), the model's p(x) (curve), the band of
    values that training never shows (shaded). ``model_heights`` keeps what the curve shows."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.plot_item: pg.PlotItem = self.getPlotItem()
        _quiet(self.plot_item)
        self.plot_item.showGrid(y=True, alpha=0.25)
        self.plot_item.addLegend(offset=(-10, 10))
        self.train_bars = pg.BarGraphItem(x=[], height=[], width=1.0, brush=DATA_BRUSH, pen=pg.mkPen(None),
                                          name="training data")
        self.test_curve = pg.PlotDataItem(pen=pg.mkPen(theme.WARN, width=1.5, style=Qt.PenStyle.DotLine),
                                          name="test data")
        self.model_curve = pg.PlotDataItem(pen=pg.mkPen(theme.ACCENT, width=2.5), name="model p(x)")
        self.band = pg.LinearRegionItem(movable=False, brush=BAND_BRUSH, pen=pg.mkPen(None))
        self.band_label = pg.TextItem("never in the training data", color=theme.ERROR, anchor=(0.5, 1.0))
        for item in (self.band, self.train_bars, self.test_curve, self.model_curve, self.band_label):
            self.plot_item.addItem(item)
        self.model_heights = np.zeros(0)
        self._scale = 1.0

    def set_scale(self, scale: float) -> None:
        self._scale = scale
        theme.style_plot(self.plot_item, scale, "probability", "value x")
        self.band_label.setFont(theme.scaled_font(scale, 0.9))

    def show_data(self, train: np.ndarray, test: np.ndarray, band: tuple[int, int] | None) -> None:
        k = len(train)
        self.train_bars.setOpts(x=np.arange(k), height=train)
        self.test_curve.setData(np.arange(k), test)
        self.model_curve.setData([], [])
        self.model_heights = np.zeros(0)
        visible = band is not None
        self.band.setVisible(visible)
        self.band_label.setVisible(visible)
        top = float(max(train.max(initial=0), test.max(initial=0))) * 1.6 or 1.0
        if visible:
            self.band.setRegion((band[0] - 0.5, band[1] - 0.5))
            self.band_label.setPos((band[0] + band[1] - 1) / 2, top)
        self.plot_item.setRange(xRange=(-0.5, k - 0.5), yRange=(0, top * 1.05), padding=0)

    def show_model(self, density: np.ndarray) -> None:
        self.model_heights = np.asarray(density, dtype=np.float64)
        self.model_curve.setData(np.arange(len(density)), self.model_heights)


class QtDensityImages(pg.GraphicsLayoutWidget):
    """Two K x K images side by side: the training data's histogram and the model's p(x1, x2), same levels.

    x1 runs left to right, x2 bottom to top (the images hold ``table.T``, row-major)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.data_plot = self.addPlot(title="training data")
        self.model_plot = self.addPlot(title="model p(x1, x2)")
        self.data_image, self.model_image = pg.ImageItem(), pg.ImageItem()
        lut = pg.colormap.get("viridis").getLookupTable(nPts=256)
        for plot, image in ((self.data_plot, self.data_image), (self.model_plot, self.model_image)):
            _quiet(plot)
            plot.setAspectLocked(True)
            plot.addItem(image)
            image.setLookupTable(lut)
        self.levels = (0.0, 1.0)
        self.model_table = np.zeros((0, 0))

    def set_scale(self, scale: float) -> None:
        for plot in (self.data_plot, self.model_plot):
            theme.style_plot(plot, scale, "x2", "x1")

    def show_data(self, table: np.ndarray) -> None:
        self.levels = (0.0, float(table.max(initial=0)) * 1.2 or 1.0)
        self.data_image.setImage(np.ascontiguousarray(table.T, dtype=np.float32), levels=self.levels)
        self.model_image.clear()
        self.model_table = np.zeros((0, 0))

    def show_model(self, table: np.ndarray) -> None:
        self.model_table = np.asarray(table, dtype=np.float64)
        self.model_image.setImage(np.ascontiguousarray(table.T, dtype=np.float32), levels=self.levels)


class QtNllCurves(pg.PlotWidget):
    """NLL in nats per example against the training step: train, test and (1-D) the unseen band.

    An infinite NLL (a value of probability zero) cannot be drawn: it leaves a gap, and the status says so."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.plot_item: pg.PlotItem = self.getPlotItem()
        _quiet(self.plot_item)
        self.plot_item.showGrid(x=True, y=True, alpha=0.25)
        self.legend = self.plot_item.addLegend(offset=(-10, 10))
        self.curves = {
            "train": self.plot_item.plot(pen=pg.mkPen(theme.MUTED, width=2), name="train"),
            "test": self.plot_item.plot(pen=pg.mkPen(theme.ACCENT, width=2), name="test"),
            "band": self.plot_item.plot(pen=pg.mkPen(theme.ERROR, width=2), name=BAND_NAME),
        }

    def set_scale(self, scale: float) -> None:
        theme.style_plot(self.plot_item, scale, "nats/example", "training step")

    def show_history(self, steps: list[int], series: dict[str, list[float | None]]) -> None:
        self._legend_band(any(v is not None for v in series.get("band", [])))
        for name, curve in self.curves.items():
            values = series.get(name)
            if not values or all(v is None for v in values):
                curve.setData([], [])
                continue
            y = np.array([v if v is not None and math.isfinite(v) else np.nan for v in values], dtype=np.float64)
            curve.setData(np.asarray(steps, dtype=np.float64), y, connect="finite")

    def _legend_band(self, shown: bool) -> None:
        """List the band's curve in the legend only where there is a band (1-D data)."""
        listed = any(label.text == BAND_NAME for _, label in self.legend.items)
        if shown and not listed:
            self.legend.addItem(self.curves["band"], BAND_NAME)
        elif listed and not shown:
            self.legend.removeItem(self.curves["band"])

    def clear_history(self) -> None:
        for curve in self.curves.values():
            curve.setData([], [])
