"""Completion: draw or load an image, mark what is known, and watch several completions fill in side by side.

The known region is painted with a brush on a second canvas (or set by "top half", "left half", ...); the
unknown part shows tinted. With "live" on, every stroke restarts the completions (same seed, so the effect of
the edit is what changes). The core keeps the known pixels exactly; an any-order model conditions every
sampled pixel on all of them (:mod:`app.core.completion`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QDoubleSpinBox,
    QFileDialog,
    QGridLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.core.completion import (
    MASK_PRESETS,
    CompletionError,
    complete_steps,
    completion_notes,
    mask_preset,
    masked_preview,
    validate_mask,
)
from app.core.errors import ImageError
from app.core.images import load_image
from app.core.session import LoadedModel
from app.ui import theme
from app.ui.context import AppContext, SentImage
from app.ui.example_images import example_images
from app.ui.qt_canvas import QtDrawingCanvas
from app.ui.qt_flow_layout import QtFlowLayout
from app.ui.qt_pixel_view import QtPixelView
from app.ui.rendering import grid_layout, tile_rgb
from app.ui.views.qt_score_tools import QtScoreTools
from app.ui.workers import SamplingWorker

REPAINT_MS = 30
LIVE_DELAY_MS = 250


class QtMaskCanvas(QtDrawingCanvas):
    """Paint the known region (``values`` 1 = known) over the image, whose unknown part shows tinted."""

    def __init__(self, parent=None) -> None:
        self.background = np.zeros((1, 28, 28), dtype=np.uint8)
        self.background_values = 2
        super().__init__(parent)

    def set_image(self, image: np.ndarray, num_values: int) -> None:
        self.background, self.background_values = np.asarray(image), int(num_values)
        self._redraw()

    @property
    def known(self) -> np.ndarray:
        return self.values[0].astype(bool)

    def _redraw(self) -> None:
        if self.background.shape[1:] != self.values.shape[1:]:
            return
        self.set_rgb(masked_preview(self.background, self.values[0].astype(bool), self.background_values))


class QtCompletionView(QWidget):
    """The Complete tab. ``worker`` runs the completions; ``frame`` is the one on screen."""

    def __init__(self, context: AppContext, parent=None) -> None:
        super().__init__(parent)
        self.context = context
        self.worker: SamplingWorker | None = None
        self.layout_grid = None
        self.source = "a blank canvas"
        self._rng = np.random.default_rng()
        self._build()
        self._connect()
        self.timer = QTimer(self)
        self.timer.setInterval(REPAINT_MS)
        self.timer.timeout.connect(self._repaint)
        self.live_timer = QTimer(self)
        self.live_timer.setSingleShot(True)
        self.live_timer.setInterval(LIVE_DELAY_MS)
        self.live_timer.timeout.connect(self.complete)
        context.register_quiescer(self.stop)
        context.model_changed.connect(self._on_model_changed)
        self._on_model_changed(context.loaded)

    # -- building ------------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.tools = QtScoreTools()
        self.tools.sample_button.hide()
        self.canvas = QtDrawingCanvas()
        self.mask = QtMaskCanvas()
        self.mask.brush_size = 3
        self.results = QtPixelView(min_size=150)
        self.canvas.setAccessibleName("image to complete")
        self.mask.setAccessibleName("known pixels")
        self.results.setAccessibleName("completions")
        self.notes = QLabel()
        self.status = QLabel()
        for label in (self.notes, self.status):
            label.setWordWrap(True)
        grid = QGridLayout(self)
        grid.addWidget(self.tools, 0, 0, 1, 3)
        for column, text in enumerate(("Your image (draw, load or pick one)",
                                       "Known region: paint it; the blue part is left to the model",
                                       "Completions (the known pixels are kept exactly)")):
            caption = QLabel(text)
            caption.setWordWrap(True)
            grid.addWidget(caption, 1, column)
        grid.addWidget(self.canvas, 2, 0)
        grid.addWidget(self.mask, 2, 1)
        grid.addWidget(self.results, 2, 2)
        grid.addWidget(self._build_mask_tools(), 3, 1)
        grid.addWidget(self._build_run_tools(), 3, 2)
        grid.addWidget(self.notes, 4, 0, 1, 3)
        grid.addWidget(self.status, 5, 0, 1, 3)
        grid.setColumnStretch(0, 2)
        grid.setColumnStretch(1, 2)
        grid.setColumnStretch(2, 3)
        grid.setRowStretch(2, 1)
        self.setAcceptDrops(True)

    def _build_mask_tools(self) -> QWidget:
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        brush = QtFlowLayout()
        self.mark = QPushButton("Mark known")
        self.unmark = QPushButton("Mark unknown")
        group = QButtonGroup(box)
        for button in (self.mark, self.unmark):
            button.setCheckable(True)
            group.addButton(button)
            brush.addWidget(button)
        self.mark.setChecked(True)
        self.unmark.toggled.connect(lambda on: setattr(self.mask, "erasing", on))
        invert = QPushButton("Invert")
        invert.clicked.connect(self.mask.invert)
        brush.addWidget(invert)
        presets = QtFlowLayout()
        self.preset_buttons: dict[str, QPushButton] = {}
        for name in MASK_PRESETS:
            button = QPushButton(name.replace("-", " "))
            button.clicked.connect(lambda _=False, n=name: self.set_preset(n))
            presets.addWidget(button)
            self.preset_buttons[name] = button
        layout.addLayout(brush)
        layout.addLayout(presets)
        return box

    def _build_run_tools(self) -> QWidget:
        box = QWidget()
        layout = QtFlowLayout(box)
        self.count = QSpinBox()
        self.count.setRange(1, 16)
        self.count.setValue(8)
        self.count.setSuffix(" completions")
        self.seed = QSpinBox()
        self.seed.setRange(0, 999999)
        self.seed.setPrefix("seed ")
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(0.0, 3.0)
        self.temperature.setSingleStep(0.1)
        self.temperature.setValue(1.0)
        self.temperature.setPrefix("T = ")
        self.live = QCheckBox("live")
        self.live.setChecked(True)
        self.live.setToolTip("Complete again after every stroke")
        self.run_button = QPushButton("Complete")
        self.run_button.clicked.connect(self.complete)
        new_seed = QPushButton("New seed")
        new_seed.clicked.connect(lambda: self.seed.setValue(int(self._rng.integers(1000000))))
        for widget in (self.count, self.seed, new_seed, self.temperature, self.live, self.run_button):
            layout.addWidget(widget)
        return box

    def _connect(self) -> None:
        t = self.tools
        t.tool_changed.connect(lambda erasing: setattr(self.canvas, "erasing", erasing))
        t.size_changed.connect(lambda size: setattr(self.canvas, "brush_size", size))
        t.clear.connect(self.canvas.erase_all)
        t.invert.connect(self.canvas.invert)
        t.load_file.connect(self.choose_file)
        t.test_image.connect(self.load_test_image)
        t.label_changed.connect(self._edited)
        self.canvas.changed.connect(lambda: self.mask.set_image(self.canvas.values, self.canvas.num_values))
        self.canvas.stroke_finished.connect(self._edited)
        self.mask.stroke_finished.connect(self._edited)
        for spin in (self.count, self.seed, self.temperature):
            spin.valueChanged.connect(self._edited)

    def set_scale(self, scale: float) -> None:
        self.status.setStyleSheet(theme.heading_css(scale, 1.0))

    # -- the model -----------------------------------------------------------------------------------------
    @property
    def loaded(self) -> LoadedModel | None:
        return self.context.loaded

    def _on_model_changed(self, loaded: LoadedModel | None) -> None:
        self.stop()
        self.setEnabled(loaded is not None)
        if loaded is None:
            self.notes.setText("Open a checkpoint to complete images with it.")
            return
        model = loaded.model
        shape = tuple(model.shape)
        if (tuple(self.canvas.values.shape), self.canvas.num_values) != (shape, model.num_values):
            self.canvas.set_format(shape, model.num_values)
            self.mask.set_format((1, *shape[1:]), 2)
            self.mask.set_values(mask_preset("top-half", *shape[1:])[None].astype(np.uint8))
            self.source = "a blank canvas"
        self.mask.set_image(self.canvas.values, model.num_values)
        condition = model.config.condition
        self.tools.set_classes(condition.num_classes if condition is not None and condition.kind == "class" else 0)
        capability = model.capability
        self.notes.setText(
            f"{model.spec.title} takes any ordering: every sampled pixel sees all the known ones."
            if capability == "any" else
            f"{model.spec.title} generates in the {model.ordering.name} ordering: a sampled pixel sees only the "
            "known pixels before it (a top half suits raster order).")
        self.results.set_rgb(np.zeros((*shape[1:], 3), dtype=np.uint8))

    # -- images in -----------------------------------------------------------------------------------------
    def set_image(self, values: np.ndarray, source: str) -> None:
        self.source = source
        self.canvas.set_values(values)

    def load_file(self, path: str | Path) -> bool:
        model = self.loaded.model if self.loaded is not None else None
        if model is None:
            return False
        try:
            converted = load_image(path, tuple(model.shape), model.num_values)
        except ImageError as exc:
            self.status.setText(f"<span style='color:{theme.ERROR}'>{exc}</span>")
            return False
        self.set_image(converted.values, Path(path).name)
        return True

    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Complete an image", "",
                                              "Images (*.png *.jpg *.jpeg *.bmp *.gif *.tif *.tiff *.webp);;All (*)")
        if path:
            self.load_file(path)

    def load_test_image(self) -> None:
        if self.loaded is None:
            return
        seed = int(self._rng.integers(100000))
        examples = example_images(self.context.session, self.loaded, 1, seed)
        self.set_image(examples.images[0], f"an image of {examples.source}")

    def receive_image(self, sent: SentImage) -> None:
        if self.loaded is None or tuple(sent.values.shape) != tuple(self.canvas.values.shape):
            self.context.notify("that image does not fit the current model", "warning")
            return
        self.set_image(sent.values, sent.label)

    def set_preset(self, name: str) -> None:
        h, w = self.mask.values.shape[1:]
        self.mask.set_values(mask_preset(name, h, w)[None].astype(np.uint8))

    # -- running -------------------------------------------------------------------------------------------
    def _edited(self) -> None:
        if self.live.isChecked() and self.loaded is not None:
            self.live_timer.start()

    def complete(self) -> bool:
        """Start the completions of the current image and known region (stopping any running ones)."""
        loaded = self.loaded
        if loaded is None:
            return False
        self.stop()
        model = loaded.model
        try:
            known = validate_mask(self.mask.known, *model.shape[1:])
        except CompletionError as exc:
            self.status.setText(f"<span style='color:{theme.WARN}'>{exc}</span>")
            return False
        image, n = self.canvas.values.copy(), self.count.value()
        try:
            cond = self._condition(loaded, n)
        except Exception as exc:  # noqa: BLE001 - a bad label or an image condition: said, not raised
            self.context.report(exc, "cannot complete")
            return False
        kwargs = {"seed": self.seed.value(), "temperature": self.temperature.value(), "cond": cond}
        worker = SamplingWorker(lambda: complete_steps(model, image, known, n, **kwargs), tuple(model.shape))
        worker.failed.connect(lambda message, details: self.context.notify(message, "error", details))
        self.worker, self.layout_grid = worker, grid_layout(n, *model.shape[1:])
        extra = completion_notes(model, known)
        self.status.setText(f"completing {self.source}: {int(known.sum())} of {known.size} pixels known"
                            + (f" · {extra[0]}" if extra else ""))
        worker.start()
        self.timer.start()
        return True

    def _condition(self, loaded: LoadedModel, n: int):
        spec = loaded.model.config.condition
        if spec is None:
            return None
        if spec.kind == "class":
            return self.context.session.condition(loaded.model, n, label=self.tools.label_value or 0)
        return self.context.session.condition(loaded.model, n, image=self.canvas.values)

    def _repaint(self) -> None:
        frame = self.worker.latest if self.worker is not None else None
        if frame is None or self.loaded is None:
            return
        step = frame.step
        drawn = frame.drawn | self.mask.known
        self.results.set_rgb(tile_rgb(step.image, self.loaded.model.num_values, self.layout_grid, drawn))
        if step.done:
            self.timer.stop()
            self.status.setText(self.status.text().split(" · done")[0] + f" · done in {step.elapsed_s:.1f} s")

    @property
    def completions(self) -> np.ndarray | None:
        """``(N, C, H, W)``: the completions on screen once finished, else None."""
        frame = self.worker.latest if self.worker is not None else None
        return frame.step.image if frame is not None and frame.step.done else None

    def stop(self) -> None:
        self.live_timer.stop()
        if self.worker is not None and self.worker.isRunning():
            self.worker.stop_and_wait()
        self.timer.stop()

    # -- drag and drop, lifecycle -----------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        for url in event.mimeData().urls():
            if url.isLocalFile() and self.load_file(url.toLocalFile()):
                event.acceptProposedAction()
                return

    def default_action(self) -> None:
        """What ``--screenshot --view complete`` shows: a test digit's top half, completed."""
        self.load_test_image()
        self.set_preset("top-half")
        self.complete()

    def shutdown(self) -> None:
        self.stop()


__all__ = ["QtCompletionView", "QtMaskCanvas"]
