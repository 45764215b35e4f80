"""The Fisher view's strips: one row per space, each with the mean NLL of its interior points beside it, and
the nearest reference images below with their digits."""

from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import QGridLayout, QLabel, QWidget

from app.core.fisher import ROWS, Interpolation
from app.ui import theme
from app.ui.formatting import format_nll
from app.ui.qt_pixel_view import QtPixelView
from app.ui.views.fisher_jobs import digit_text, strip_rgb

TITLES = {
    "pixel": ("Pixels", "a cross-fade"),
    "activation": ("Mean activations", "decoded from the line between"),
    "fisher": ("Fisher scores", "decoded from the line between"),
    "nearest": ("Nearest test image", "to each point, in Fisher space"),
}
BEST = "#81c784"


class QtFisherStrips(QWidget):
    """Rows ``pixel``, ``activation``, ``fisher`` and ``nearest``; ``nll_labels[row]`` holds each row's figure."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        self.views: dict[str, QtPixelView] = {}
        self.titles: dict[str, QLabel] = {}
        self.nll_labels: dict[str, QLabel] = {}
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(self.caption, 0, 0, 1, 3)
        for r, row in enumerate((*ROWS, "nearest"), start=1):
            title = QLabel()
            title.setWordWrap(True)
            view = QtPixelView(min_size=40)
            view.setAccessibleName(f"{TITLES[row][0].lower()} strip")
            note = QLabel()
            note.setWordWrap(True)
            grid.addWidget(title, r, 0)
            grid.addWidget(view, r, 1)
            grid.addWidget(note, r, 2)
            grid.setRowStretch(r, 1)
            self.titles[row], self.views[row], self.nll_labels[row] = title, view, note
        self.nearest_digits = QLabel()
        self.nearest_digits.setWordWrap(True)
        grid.addWidget(self.nearest_digits, 5, 1)
        grid.setColumnStretch(1, 1)
        self.scale = 1.0
        self.result: Interpolation | None = None
        self._set_titles()
        self.reset("")

    def _set_titles(self) -> None:
        for row, (title, subtitle) in TITLES.items():
            self.titles[row].setText(f"<b>{title}</b><br><span style='{theme.muted_css(self.scale, 0.9)}'>"
                                     f"{subtitle}</span>")
            self.titles[row].setMinimumWidth(int(130 * self.scale))
            self.nll_labels[row].setMinimumWidth(int(150 * self.scale))

    def set_scale(self, scale: float) -> None:
        self.scale = scale
        self._set_titles()
        if self.result is not None:
            self._notes(self.result)

    def reset(self, message: str) -> None:
        """Show no strips, and ``message`` (why) in their place."""
        self.result = None
        blank = np.full((28, 28 * 10, 3), 40, np.uint8)
        for view in self.views.values():
            view.set_rgb(blank)
        for label in self.nll_labels.values():
            label.setText("")
        self.nearest_digits.setText("")
        self.caption.setText(message)

    @property
    def empty(self) -> bool:
        return self.result is None

    def show_result(self, result: Interpolation, num_values: int, judge: str) -> None:
        """Draw the strips of ``result``; ``judge`` names the model and its data, for the caption."""
        self.result = result
        ends = np.stack([result.image_a, result.image_b]) / (num_values - 1)
        for row in ROWS:
            tiles = result.row(row).copy()
            tiles[0], tiles[-1] = ends
            self.views[row].set_rgb(strip_rgb(tiles))
        if result.nearest.size:
            nearest = result.nearest_images[:, 0].astype(np.float32) / (num_values - 1)
            blank = np.full((1, *nearest.shape[1:]), np.nan, np.float32)
            self.views["nearest"].set_rgb(strip_rgb(np.concatenate([blank, nearest[1:-1], blank])))
            digits = [digit_text(int(label)) for label in result.nearest_labels[1:-1, 0]]
            known = [d for d in digits if d]
            self.nearest_digits.setText(f"<span style='{theme.muted_css(self.scale, 0.9)}'>read as: "
                                        f"{', '.join(known)}</span>" if known else "")
        else:
            self.views["nearest"].set_rgb(np.full((28, 28 * 10, 3), 40, np.uint8))
            self.nearest_digits.setText("")
        interior = len(result.alphas) - 2
        self.caption.setText(f"Beside each row: the mean NLL of its {interior} interior points, each binarized "
                             f"at 0.5, under {judge}. Lower is likelier: the model itself judges whether each "
                             f"intermediate is a digit.")
        self._notes(result)

    def _notes(self, result: Interpolation) -> None:
        means = {row: float(np.mean(v)) for row, v in result.interior_nll.items() if len(v)}
        best = min(means, key=means.get) if means else None
        num_dims = int(np.prod(result.image_a.shape))
        for row in ROWS:
            if row not in means:
                self.nll_labels[row].setText("")
                continue
            colour = BEST if row == best else theme.TEXT
            nats, rest = format_nll(means[row], num_dims).split(" nats per image ")
            self.nll_labels[row].setText(
                f"<span style='color:{colour}; {theme.heading_css(self.scale, 1.15)}'>{nats}</span><br>"
                f"<span style='{theme.muted_css(self.scale, 0.9)}'>nats per image {rest}"
                f"{'<br>likeliest' if row == best else ''}</span>")


__all__ = ["QtFisherStrips"]
