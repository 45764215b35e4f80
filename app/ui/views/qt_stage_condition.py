"""The condition of an image-conditioned model, as an input the user can see and change.

For a super-resolution model: the low-resolution image (7x7 block counts) shown big; a click adds a quarter of a
block's pixels (left) or empties the block (right), and "New test image" takes it from another test image.
For the colour stage of the grayscale hierarchy: which grey-stage checkpoint draws the grey image first.
"""

from __future__ import annotations

import numpy as np
import torch
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.core.session import LoadedModel
from app.ui import theme
from app.ui.example_images import example_images
from app.ui.qt_pixel_view import QtPixelView
from app.ui.rendering import values_to_rgb


class QtLowResolutionInput(QWidget):
    """A low-resolution condition image ``(C, h, w)`` of values ``0 .. V-1``, editable by clicking."""

    changed = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.values: np.ndarray | None = None
        self.num_values = 2
        self.source = ""
        self._seed = 0
        self.view = QtPixelView(min_size=100)
        self.view.setAccessibleName("7x7 input")
        self.view.pixel_clicked.connect(self._on_click)
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        self.new_button = QPushButton("New test image")
        self.new_button.setToolTip("Take the low-resolution image of another test image")
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("An empty low-resolution image: draw your own by clicking")
        buttons = QHBoxLayout()
        buttons.addWidget(self.new_button)
        buttons.addWidget(self.clear_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.caption)
        self.clear_button.clicked.connect(self.clear)

    def set_values(self, values: np.ndarray, num_values: int, source: str) -> None:
        self.values = np.asarray(values, dtype=np.uint8).copy()
        self.num_values = num_values
        self.source = source
        self._show()
        self.changed.emit()

    def clear(self) -> None:
        if self.values is not None:
            self.set_values(np.zeros_like(self.values), self.num_values, "drawn by hand")

    def _on_click(self, row: int, col: int, button: int) -> None:
        if self.values is None:
            return
        top = self.num_values - 1
        if button == Qt.MouseButton.RightButton.value:
            self.values[:, row, col] = 0
        else:
            step = max(top // 4, 1)
            current = int(self.values[0, row, col])
            self.values[:, row, col] = 0 if current >= top else min(current + step, top)
        self.source = "drawn by hand"
        self._show()
        self.changed.emit()

    def _show(self) -> None:
        self.view.set_rgb(values_to_rgb(self.values, self.num_values))
        self.caption.setText(
            f"{self.source}. Click a block to add a quarter of its pixels (after full: empty); right-click to empty it."
        )

    def tensor(self) -> torch.Tensor:
        """``(1, C, h, w)`` float values, as the model's condition."""
        return torch.as_tensor(self.values, dtype=torch.float32).unsqueeze(0)


class QtStageCondition(QWidget):
    """Shows the condition a stages run uses: a low-resolution image to edit, or the grey-stage checkpoint."""

    changed = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.title = QLabel()
        self.low = QtLowResolutionInput()
        self.low.changed.connect(self.changed.emit)
        self.low.new_button.clicked.connect(self.new_test_image)
        self.note = QLabel()
        self.note.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.low, 1)
        layout.addWidget(self.note)
        self._session = None
        self._loaded: LoadedModel | None = None
        self._seed = 0
        self.editing = False  # a low-resolution image is the condition

    def set_scale(self, scale: float) -> None:
        self.title.setStyleSheet(theme.heading_css(scale, 1.0))
        self.note.setStyleSheet(theme.muted_css(scale, 0.9))
        self.low.caption.setStyleSheet(theme.muted_css(scale, 0.9))

    def show_low_resolution(self, session, loaded: LoadedModel) -> None:
        """Edit the low-resolution image of a super-resolution model, starting from a test image."""
        self._session, self._loaded = session, loaded
        spec = loaded.model.config.condition
        c, h, w = spec.shape if len(spec.shape) == 3 else (1, *spec.shape)
        self.title.setText(f"Condition: {spec.description or f'a {h}x{w} image'}")
        self.title.setWordWrap(True)
        self.note.setText("")
        self.low.setVisible(True)
        self.editing = True
        self.setVisible(True)
        self._seed = 0
        self.new_test_image(advance=False)

    def show_text(self, title: str, note: str) -> None:
        self._loaded = None
        self.editing = False
        self.title.setText(title)
        self.note.setText(note)
        self.low.setVisible(False)
        self.setVisible(bool(title))

    def new_test_image(self, advance: bool = True) -> None:
        if self._loaded is None:
            return
        if advance:
            self._seed += 1
        model = self._loaded.model
        examples = example_images(self._session, self._loaded, 1, self._seed)
        spec = model.config.condition
        cond = self._session.condition(model, 1, image=examples.images[0])
        self.low.set_values(cond[0].cpu().numpy().round(), spec.num_values,
                            f"From {examples.source} (seed {self._seed})")

    def tensor(self) -> torch.Tensor | None:
        return self.low.tensor() if self.editing and self.low.values is not None else None


__all__ = ["QtLowResolutionInput", "QtStageCondition"]
