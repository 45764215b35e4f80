"""Click any pixel of an image: its conditional p(x_i | x_<i) and its receptive field.

The receptive field is the gradient of the pixel's head parameters with respect to the input: exactly zero
where the conditional cannot see. Red marks the earlier pixels it cannot see — PixelCNN's blind spot to the
upper right shows at once, and its absence in Gated PixelCNN.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QWidget,
)

from app.core.errors import ImageError
from app.core.images import load_image
from app.core.sampling import sample
from app.core.session import LoadedModel
from app.ui import theme
from app.ui.context import AppContext, SentImage
from app.ui.example_images import synthetic_images, test_images
from app.ui.formatting import position_text
from app.ui.inspect_jobs import PixelInspection, inspect_pixel, summary_text
from app.ui.qt_distribution_plot import QtDistributionPlot
from app.ui.qt_pixel_view import QtPixelView
from app.ui.rendering import HIDDEN, LATER, OUT_OF_REACH, TARGET, receptive_field_rgb, values_to_rgb
from app.ui.score_jobs import condition_for
from app.ui.views.worker_owner import WorkerOwner
from app.ui.workers import JobResult, JobWorker

HOVER_MS = 50

LEGEND = (
    f"<span style='color:rgb{TARGET}'>■</span> the pixel &nbsp; "
    "<span style='color:#fca636'>■</span> earlier pixels it sees (brighter: more influence, log scale) &nbsp; "
    f"<span style='color:rgb{HIDDEN}'>■</span> blind spot: earlier pixels hidden inside what it sees &nbsp; "
    f"<span style='color:rgb{OUT_OF_REACH}'>■</span> earlier pixels beyond its reach &nbsp; "
    f"<span style='color:rgb{LATER}'>■</span> later pixels (never seen)"
)


class QtInspectView(WorkerOwner, QWidget):
    """The Inspect tab. ``inspection`` is the latest :class:`PixelInspection` on screen."""

    def __init__(self, context: AppContext, parent=None) -> None:
        super().__init__(parent)
        self.context = context
        self.values: np.ndarray | None = None
        self.source = ""
        self.position: tuple[int, int, int] | None = None
        self.inspection: PixelInspection | None = None
        self._rng = np.random.default_rng()
        self._stale = False
        self.worker = JobWorker()
        self.own_workers(self.worker)
        self._build()
        context.register_quiescer(self.quiesce)
        context.model_changed.connect(self._on_model_changed)
        self.set_scale(context.scale)
        self._on_model_changed(context.loaded)

    # -- building ------------------------------------------------------------------------------------------
    def _build(self) -> None:
        bar = QHBoxLayout()
        self.sample_button = QPushButton("A sample")
        self.sample_button.setToolTip("Sample an image from the model and inspect it")
        self.test_button = QPushButton("A test image")
        self.load_button = QPushButton("Load image…")
        self.follow = QCheckBox("Follow the mouse")
        self.follow.setToolTip("Inspect the pixel under the mouse instead of the clicked one")
        for widget in (self.sample_button, self.test_button, self.load_button, self.follow):
            bar.addWidget(widget)
        self.source_label = QLabel()
        bar.addWidget(self.source_label, 1)
        self.sample_button.clicked.connect(lambda: self.load_sample())
        self.test_button.clicked.connect(lambda: self.load_test_image())
        self.load_button.clicked.connect(self.choose_file)
        self.image_view = QtPixelView(min_size=150)
        self.field_view = QtPixelView(min_size=150)
        self.image_view.setAccessibleName("inspected image")
        self.field_view.setAccessibleName("receptive field")
        self.plot = QtDistributionPlot()
        for view in (self.image_view, self.field_view):
            view.pixel_clicked.connect(lambda r, c, _b: self.select(r, c))
            view.pixel_hovered.connect(self._on_hover)
        self.image_caption = QLabel("The image — click any pixel (pixels it cannot use are dimmed)")
        self.field_caption = QLabel("What that pixel's conditional sees: |∂ parameters / ∂ input|")
        self.legend = QLabel(LEGEND)
        self.summary = QLabel("Click a pixel.")
        self.pixel_text = QLabel()
        for label in (self.image_caption, self.field_caption, self.legend, self.summary, self.pixel_text):
            label.setWordWrap(True)
        grid = QGridLayout(self)
        grid.addLayout(bar, 0, 0, 1, 3)
        grid.addWidget(self.image_caption, 1, 0)
        grid.addWidget(self.field_caption, 1, 1)
        grid.addWidget(self.pixel_text, 1, 2)
        grid.addWidget(self.image_view, 2, 0)
        grid.addWidget(self.field_view, 2, 1)
        grid.addWidget(self.plot, 2, 2)
        grid.addWidget(self.legend, 3, 0, 1, 3)
        grid.addWidget(self.summary, 4, 0, 1, 3)
        for column in range(3):
            grid.setColumnStretch(column, 1)
        grid.setRowStretch(2, 1)
        self.worker.done.connect(self._on_done)
        self.worker.failed.connect(self._on_failed)
        self.hover_timer = QTimer(self)
        self.hover_timer.setSingleShot(True)
        self.hover_timer.setInterval(HOVER_MS)
        self.hover_timer.timeout.connect(self._submit)
        self.own_timers(self.hover_timer, on_quiesce=False)

    def set_scale(self, scale: float) -> None:
        self.plot.set_scale(scale)
        self.summary.setStyleSheet(theme.heading_css(scale, 1.1))

    # -- the model -----------------------------------------------------------------------------------------
    @property
    def loaded(self) -> LoadedModel | None:
        return self.context.loaded

    def _on_model_changed(self, loaded: LoadedModel | None) -> None:
        self.inspection = None
        for widget in (self.sample_button, self.test_button, self.load_button):
            widget.setEnabled(loaded is not None)
        if loaded is None:
            self.summary.setText("Open a checkpoint to inspect its conditionals.")
            return
        model = loaded.model
        self.test_button.setEnabled(test_images(self.context.session, loaded, 1) is not None)
        if self.values is None or tuple(self.values.shape) != tuple(model.shape) or \
                int(self.values.max(initial=0)) >= model.num_values:
            examples = synthetic_images(tuple(model.shape), model.num_values, 1, seed=7)
            self.set_image(examples.images[0], examples.source)
        else:
            self._show_image()
            self._submit()

    # -- images --------------------------------------------------------------------------------------------
    def set_image(self, values: np.ndarray, source: str, position: tuple[int, int, int] | None = None) -> None:
        self.values = np.asarray(values, dtype=np.uint8).copy()
        self.source = source
        self.source_label.setText(f"  Inspecting {source}")
        c, h, w = self.values.shape
        self.position = position or self.position or (0, h // 2, w // 2)
        if not (0 <= self.position[1] < h and 0 <= self.position[2] < w):
            self.position = (0, h // 2, w // 2)
        self._show_image()
        self._submit()

    def receive_image(self, sent: SentImage) -> None:
        if self.loaded is None or tuple(sent.values.shape) != tuple(self.loaded.model.shape):
            self.context.notify("that image does not fit the current model", "warning")
            return
        self.set_image(sent.values, sent.label, sent.position)

    def load_sample(self, seed: int | None = None) -> None:
        """Sample one image (a class-conditional model draws a 0; an image-conditioned one is conditioned on
        the image on screen) and inspect it."""
        loaded = self.loaded
        if loaded is None:
            return
        seed = int(self._rng.integers(100000)) if seed is None else seed
        session, model = self.context.session, loaded.model
        condition_image = self.values if self.values is not None else np.zeros(model.shape, np.uint8)

        def job():
            cond = condition_for(session, loaded, condition_image, 0)
            return sample(model, 1, seed=seed, cond=cond)[0].cpu().numpy().astype(np.uint8), seed, loaded.name

        self.source_label.setText(f"  Sampling one image (seed {seed})…")
        self.worker.submit(job, "sample")

    def load_test_image(self, index: int | None = None) -> bool:
        loaded = self.loaded
        found = test_images(self.context.session, loaded) if loaded is not None else None
        if found is None:
            self.context.notify("no test data on this machine for this checkpoint's dataset", "warning")
            return False
        i = int(self._rng.integers(len(found.images))) if index is None else index
        self.set_image(found.images[i], f"test image #{i} of {found.source[len('the test split of '):]}")
        return True

    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Inspect an image", "", "Images (*.png *.jpg *.jpeg *.bmp *.gif)")
        if path and self.loaded is not None:
            try:
                converted = load_image(path, tuple(self.loaded.model.shape), self.loaded.model.num_values)
            except ImageError as exc:
                self.context.notify(str(exc), "warning", source="image")
                return
            self.set_image(converted.values, f"{Path(path).name} ({converted.describe()})")

    # -- pixels --------------------------------------------------------------------------------------------
    def select(self, row: int, col: int) -> None:
        """Inspect pixel (row, col) of the image (channel 0)."""
        if self.values is None:
            return
        self.position = (0, row, col)
        self._show_image()
        self._submit()

    def _on_hover(self, row: int, col: int) -> None:
        if self.follow.isChecked() and row >= 0 and self.values is not None:
            self.position = (0, row, col)
            self.hover_timer.start()

    def _submit(self) -> None:
        loaded, values, position = self.loaded, self.values, self.position
        if loaded is None or values is None or position is None:
            return
        if not self.isVisible():  # computed when the tab is shown: a hidden view leaves the CPU to the others
            self._stale = True
            return
        self._stale = False
        session = self.context.session
        values = values.copy()
        self.worker.submit(lambda: inspect_pixel(session, loaded, values, position), "pixel")

    def _on_done(self, result: JobResult) -> None:
        if self.loaded is None:
            return
        if result.tag == "sample":
            values, seed, name = result.value
            if name == self.loaded.name:  # not a sample of a model that has been replaced meanwhile
                self.set_image(values, f"a sample of {name} (seed {seed})")
        elif result.tag == "pixel" and self._current(result.value):
            self._show_inspection(result.value)

    def _current(self, inspection: PixelInspection) -> bool:
        """Whether an inspection is of the model and image on screen (not one superseded meanwhile)."""
        return inspection.checkpoint == self.loaded.name and self.values is not None and \
            np.array_equal(inspection.values, self.values)

    def _on_failed(self, tag: str, message: str, details: str) -> None:
        self.context.notify(f"inspecting failed: {message}", "error", details, source=self.loaded.name
                            if self.loaded else "")

    # -- showing -------------------------------------------------------------------------------------------
    def _show_image(self) -> None:
        if self.values is None or self.loaded is None:
            return
        rgb = values_to_rgb(self.values, self.loaded.model.num_values).astype(np.float32)
        if self.position is not None:
            rank = self.loaded.model.resolve_ordering(None).rank
            later = rank >= rank[self.position[1], self.position[2]]
            rgb[later] = rgb[later] * 0.3 + 25  # what the conditional may not use, dimmed
            self.image_view.set_markers("pixel", [self.position[1:]], theme.ACCENT, 3.0)
            self.field_view.set_markers("pixel", [self.position[1:]], theme.ACCENT, 3.0)
        self.image_view.set_rgb(rgb.clip(0, 255).astype(np.uint8))

    def _show_inspection(self, inspection: PixelInspection) -> None:
        self.inspection = inspection
        _, r, c = inspection.position
        self.field_view.set_rgb(receptive_field_rgb(inspection.field, inspection.rank, (r, c)))
        model = self.loaded.model
        where = position_text(inspection.position, model.shape[0])
        cond = inspection.conditional
        names = ["0 (black)", "1 (white)"] if model.num_values == 2 else None
        self.plot.show_categorical(cond.probs, None, cond.value, names)
        self.plot.set_title(f"p(xᵢ | x<ᵢ) at {where}")
        self.pixel_text.setText(f"Pixel {where}: drawn at step {cond.rank + 1}; its value {cond.value} has "
                                f"probability {float(cond.probs[cond.value]):.3f} ({cond.nll_nats:.2f} nats)")
        self.summary.setText(summary_text(inspection, where))

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        if self._stale:
            self._submit()

    # -- lifecycle -----------------------------------------------------------------------------------------
    def default_action(self) -> None:
        """What ``--screenshot --view inspect`` shows: a sample with its middle pixel's receptive field."""
        self.load_sample(seed=1)


__all__ = ["QtInspectView", "LEGEND"]
