"""The Score view's results panel: the totals with their units and data, the rank among test images, one
pixel's conditional, and where the image came from."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.core.errors import ImageError
from app.core.images import ConvertedImage
from app.core.scoring import Conditional
from app.core.session import LoadedModel
from app.ui import theme
from app.ui.formatting import loaded_data_description, percentile_text, position_text
from app.ui.qt_distribution_plot import QtDistributionPlot
from app.ui.score_jobs import ImageScore

THUMBNAIL = 120
PLOT_MIN_HEIGHT = 150  # at 100%


class QtPixelChart(QtDistributionPlot):
    """The pixel's conditional, asking for no more height than its minimum: the results scroll only when the
    labels and the chart's least height do not fit, and the chart takes whatever height is left."""

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(super().sizeHint().width(), self.minimumHeight())


class QtScoreResults(QWidget):
    """Labels ``nll``, ``bpd``, ``data``, ``rank``, ``pixel_text``, ``notes``; plot ``pixel_plot``."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.nll = QLabel()
        self.bpd = QLabel()
        self.data = QLabel()
        self.rank = QLabel()
        self.pixel_text = QLabel()
        self.pixel_plot = QtPixelChart()
        self.original = QLabel()
        self.original.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.notes = QLabel()
        for label in (self.nll, self.bpd, self.data, self.rank, self.pixel_text, self.notes):
            label.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in (self.nll, self.bpd, self.data, self.rank, self.pixel_text):
            layout.addWidget(widget)
        layout.addWidget(self.pixel_plot, 1)
        source = QHBoxLayout()
        source.addWidget(self.original)
        source.addWidget(self.notes, 1)
        layout.addLayout(source)

    def set_scale(self, scale: float) -> None:
        self.nll.setStyleSheet(theme.heading_css(scale, 2.0))
        self.bpd.setStyleSheet(theme.heading_css(scale, 1.3))
        self.pixel_plot.set_scale(scale)
        # A chart's title, axis and tick labels grow with the scale: so does the least height that leaves
        # room for its bars.
        self.pixel_plot.setMinimumHeight(theme.scaled(PLOT_MIN_HEIGHT, scale))

    # -- totals --------------------------------------------------------------------------------------------
    def show_no_model(self) -> None:
        self.nll.setText("No model")
        self.data.setText("Open a checkpoint to score images.")

    def show_scoring(self) -> None:
        self.nll.setText("Scoring…")
        for label in (self.bpd, self.data, self.rank, self.pixel_text):
            label.setText("")

    def show_score(self, result: ImageScore, loaded: LoadedModel, source: str, reference: str | None) -> None:
        """Nats per image and bits/dim, of what, under which checkpoint, trained on which data, and the rank."""
        self.nll.setText(f"{result.nll_nats:.1f} nats per image")
        self.bpd.setText(f"{result.bits_per_dim:.3f} bits/dim")
        self.data.setText(f"−log p(x) of {source} under <b>{loaded.name}</b>, trained on "
                          f"{loaded_data_description(loaded)}")
        text = percentile_text(result.percentile, reference or "test images (none scored yet)")
        self.rank.setText(text[:1].upper() + text[1:] + ".")

    # -- one pixel -----------------------------------------------------------------------------------------
    def show_pixel(self, conditional: Conditional, loaded: LoadedModel, hovering: bool) -> None:
        model = loaded.model
        where = position_text(conditional.position, model.shape[0])
        why = "under the mouse" if hovering else "the most surprising"
        if model.num_values == 2:
            p1 = float(conditional.probs[1])
            self.pixel_text.setText(f"Pixel {where} ({why}): p(x = 1 | pixels before it) = {p1:.3f}; "
                                    f"it is {conditional.value}, which costs {conditional.nll_nats:.2f} nats")
            self.pixel_plot.show_categorical(conditional.probs, None, conditional.value, ["0 (black)", "1 (white)"])
        else:
            p = float(conditional.probs[conditional.value])
            self.pixel_text.setText(f"Pixel {where} ({why}): it is {conditional.value}, p = {p:.3f}, "
                                    f"{conditional.nll_nats:.2f} nats")
            self.pixel_plot.show_categorical(conditional.probs, None, conditional.value)
        self.pixel_plot.set_title(f"p(xᵢ | x<ᵢ) at {where}")

    # -- where the image came from -------------------------------------------------------------------------
    def show_source(self, text: str) -> None:
        self.notes.setText(text)
        self.original.setPixmap(QPixmap())

    def show_file(self, path: str | Path, converted: ConvertedImage) -> None:
        """The file, its size and mode, every conversion step, and a thumbnail of the original."""
        width, height = converted.source_size
        self.notes.setText(f"From <b>{Path(path).name}</b> ({width}×{height} {converted.source_mode}): "
                           f"{converted.describe()}.")
        pixmap = QPixmap(str(path))
        if pixmap.isNull():
            self.original.setPixmap(QPixmap())
            return
        self.original.setPixmap(pixmap.scaled(THUMBNAIL, THUMBNAIL, Qt.AspectRatioMode.KeepAspectRatio,
                                              Qt.TransformationMode.SmoothTransformation))

    def show_refused(self, error: ImageError) -> None:
        self.notes.setText(f"<span style='color:{theme.ERROR}'>{error}</span>")


__all__ = ["QtScoreResults"]
