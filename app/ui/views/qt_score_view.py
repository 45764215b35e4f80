"""Draw or load an image and see what the model thinks of it: NLL, a per-pixel map, a percentile, a table.

Scoring runs on a worker ("latest job wins") at most every 50 ms while the pen moves, so drawing never
stutters; the comparison with every other checkpoint runs on a second worker when a stroke ends.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import ImageError
from app.core.images import load_image
from app.core.sampling import sample
from app.core.session import LoadedModel
from app.core.session_file import SessionImage, SessionState, fit_image
from app.ui import theme
from app.ui.context import AppContext, SentImage
from app.ui.drawing import Drawing
from app.ui.example_images import Examples, synthetic_images, test_images
from app.ui.hints import download_command
from app.ui.qt_canvas import QtDrawingCanvas
from app.ui.qt_colorbar import QtColorBar
from app.ui.qt_pixel_view import QtPixelView
from app.ui.rendering import INFERNO, heatmap_rgb
from app.ui.score_jobs import (
    ImageScore,
    compare_checkpoints,
    condition_for,
    pixel_conditional,
    reference_from_test_data,
    reference_label,
    reference_quantiles,
    score_image,
)
from app.ui.views.qt_compare_table import QtCompareTable
from app.ui.views.qt_score_results import QtScoreResults
from app.ui.views.qt_score_tools import QtScoreTools
from app.ui.views.worker_owner import WorkerOwner
from app.ui.workers import JobResult, JobWorker

THROTTLE_MS = 50  # at most 20 scores a second while drawing
COMPARE_DELAY_MS = 400
RESULTS_MIN_WIDTH = 300  # at 100%: the headline NLL on one line


def heat_limit(num_values: int, channels: int = 1) -> float:
    """The top of the heat map's fixed scale in nats per pixel (all its channels): a few nats more than a
    uniform guess costs, so a surprising pixel is bright and an ordinary one dark."""
    return 5.0 if (num_values, channels) == (2, 1) else channels * math.log(num_values) + 3.0


class QtScoreView(WorkerOwner, QWidget):
    """The Score tab. ``result`` is the latest :class:`ImageScore` on screen."""

    def __init__(self, context: AppContext, parent=None) -> None:
        super().__init__(parent)
        self.context = context
        self.result: ImageScore | None = None
        self.source = "a blank canvas"
        self.drawing = Drawing()  # what the user drew or loaded, kept across models
        self._converting = False
        self.hover: tuple[int, int] | None = None
        self._dirty = self._hover_dirty = False
        self._compare_when_shown = self._compare_when_scored = False
        self._references: dict[str, np.ndarray | None] = {}
        self._reference_requested: set[str] = set()
        self._tests: dict[tuple, Examples | None] = {}
        self._rng = np.random.default_rng()
        self.scorer = JobWorker()  # this image under this model: the latest request wins
        self.background = JobWorker()  # other checkpoints, samples
        self.references = JobWorker()  # test-set scores for a percentile, once per checkpoint
        self.own_workers(self.scorer, self.background, self.references)
        self._build()
        self._connect()
        context.register_quiescer(self.quiesce)
        context.model_changed.connect(self._on_model_changed)
        self.set_scale(context.scale)
        self._on_model_changed(context.loaded)

    # -- building ------------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.tools = QtScoreTools()
        self.canvas = QtDrawingCanvas()
        self.heatmap = QtPixelView(min_size=150)
        self.colorbar = QtColorBar(INFERNO, "nats")
        self.canvas.setAccessibleName("your image")
        self.heatmap.setAccessibleName("per-pixel NLL map")
        self.canvas_caption = QLabel("Your image: exactly what the model sees")
        self.heat_caption = QLabel("−log p(xᵢ | x&lt;ᵢ) of each pixel: bright where the model was surprised")
        self.heat_caption.setTextFormat(Qt.TextFormat.RichText)
        for caption in (self.canvas_caption, self.heat_caption):
            caption.setWordWrap(True)
        self.results = QtScoreResults()
        r = self.results  # the labels, under the names the tests and other views use
        self.nll, self.bpd, self.data, self.rank = r.nll, r.bpd, r.data, r.rank
        self.pixel_text, self.pixel_plot, self.notes = r.pixel_text, r.pixel_plot, r.notes
        self.table = QtCompareTable()
        images = QWidget()
        grid = QGridLayout(images)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(self.canvas_caption, 0, 0)
        grid.addWidget(self.heat_caption, 0, 1, 1, 2)
        grid.addWidget(self.canvas, 1, 0)
        grid.addWidget(self.heatmap, 1, 1)
        grid.addWidget(self.colorbar, 1, 2)
        grid.setColumnStretch(0, 1)
        grid.setColumnStretch(1, 1)
        grid.setRowStretch(1, 1)
        # The results scroll when they are taller than their place (a long data name at 250%), rather than
        # squeezing the conditional's chart or printing over it.
        self.results_area = QScrollArea()
        self.results_area.setWidget(self.results)
        self.results_area.setWidgetResizable(True)
        self.results_area.setFrameShape(QFrame.Shape.NoFrame)
        self.results_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # The images over the comparison (the divider moves), the results beside both at full height: the
        # headline, the data it is measured on and the pixel's chart stay whole at any scale.
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(images)
        self.splitter.addWidget(self.table)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setChildrenCollapsible(False)
        self._split_done = False
        row = QHBoxLayout()
        row.addWidget(self.splitter, 2)
        row.addWidget(self.results_area, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tools)
        layout.addLayout(row, 1)
        self.setAcceptDrops(True)
        self.timer = QTimer(self)
        self.timer.setInterval(THROTTLE_MS)
        self.timer.timeout.connect(self._tick)
        self.compare_timer = QTimer(self)
        self.compare_timer.setSingleShot(True)
        self.compare_timer.setInterval(COMPARE_DELAY_MS)
        self.compare_timer.timeout.connect(self.compare)
        self.own_timers(self.timer, self.compare_timer)

    def _connect(self) -> None:
        t = self.tools
        t.tool_changed.connect(lambda erasing: setattr(self.canvas, "erasing", erasing))
        t.size_changed.connect(lambda size: setattr(self.canvas, "brush_size", size))
        t.clear.connect(self._clear)
        t.invert.connect(self._invert)
        t.load_file.connect(self.choose_file)
        t.test_image.connect(self.load_test_image)
        t.sample_image.connect(self.load_sample)
        t.label_changed.connect(self._changed)
        self.canvas.changed.connect(self._changed)
        self.canvas.changed.connect(self._remember_drawing)
        self.canvas.stroked.connect(self._drawn_on)
        self.canvas.stroke_finished.connect(self._stroke_finished)
        self.canvas.pixel_hovered.connect(self._on_hover)
        self.heatmap.pixel_hovered.connect(self._on_hover)
        self.canvas.pixel_clicked.connect(lambda r, c, b: self._inspect_menu(r, c, b))
        self.heatmap.pixel_clicked.connect(lambda r, c, b: self._inspect_menu(r, c, 2))
        self.table.compare_requested.connect(self.compare)
        self.scorer.done.connect(self._on_done)
        self.scorer.failed.connect(self._on_failed)
        for worker in (self.background, self.references):
            worker.done.connect(self._on_done)
            worker.failed.connect(self._on_failed)
        self.background.partial.connect(self._on_partial)

    def set_scale(self, scale: float) -> None:
        self.results.set_scale(scale)
        self.table.set_scale(scale)
        self.results_area.setMinimumWidth(theme.scaled(RESULTS_MIN_WIDTH, scale))

    # -- the model -----------------------------------------------------------------------------------------
    @property
    def loaded(self) -> LoadedModel | None:
        return self.context.loaded

    def _on_model_changed(self, loaded: LoadedModel | None) -> None:
        self.result = None
        self.table.clear()
        enabled = loaded is not None
        for widget in (self.tools, self.canvas, self.table):
            widget.setEnabled(enabled)
        if loaded is None:
            self.results.show_no_model()
            return
        model = loaded.model
        self.results.show_scoring()
        if (tuple(self.canvas.values.shape), self.canvas.num_values) != (tuple(model.shape), model.num_values):
            self._convert_drawing(tuple(model.shape), model.num_values)
        kind = "binary" if model.num_values == 2 else f"{model.num_values} levels"
        c, h, w = model.shape
        self.canvas_caption.setText(f"Your image: exactly what the model sees ({h}×{w}, {kind}). "
                                    "Draw with the mouse, or drop an image file here.")
        condition = model.config.condition
        self.tools.set_classes(condition.num_classes if condition is not None and condition.kind == "class" else 0)
        has_test = self._test_split(loaded) is not None
        self.tools.test_button.setEnabled(has_test)
        dataset = str(loaded.info.meta.get("dataset"))
        self.tools.test_button.setToolTip("A random image of the test split" if has_test else
                                          f"The test data of {dataset} is not on this machine: "
                                          f"{download_command(dataset)}")
        self.colorbar.set_range(0.0, heat_limit(model.num_values, model.shape[0]), open_top=True)
        self._prepare_reference(loaded)
        self._changed()
        self.compare_timer.start()

    def _test_split(self, loaded: LoadedModel) -> Examples | None:
        key = (str(loaded.info.meta.get("dataset")), tuple(loaded.model.shape), loaded.model.num_values)
        if key not in self._tests:
            self._tests[key] = test_images(self.context.session, loaded)
        return self._tests[key]

    def _prepare_reference(self, loaded: LoadedModel) -> None:
        """The recorded test quantiles, else (once, on a worker) the scores of the test images on this machine."""
        if loaded.name in self._references or loaded.name in self._reference_requested:
            return
        quantiles = reference_quantiles(loaded)
        if quantiles is not None:
            self._references[loaded.name] = quantiles
        elif self._test_split(loaded) is not None:
            self._reference_requested.add(loaded.name)
            session = self.context.session
            self.references.submit(lambda: (loaded.name, reference_from_test_data(session, loaded)), "reference")

    # -- scoring -------------------------------------------------------------------------------------------
    def _changed(self) -> None:
        self._dirty = True
        if not self.timer.isActive():
            self.timer.start()

    def _stroke_finished(self) -> None:
        self._changed()
        if self.table.auto.isChecked():
            self.compare_timer.start()

    def _tick(self) -> None:
        loaded = self.loaded
        if loaded is None or not self.isVisible():  # a hidden view leaves the CPU to the one on screen
            self.timer.stop()
            return
        if self._dirty:
            self._dirty = False
            self._submit_score(loaded)
        elif self._hover_dirty:
            self._hover_dirty = False
            self._submit_pixel(loaded)
        else:
            self.timer.stop()

    def _submit_score(self, loaded: LoadedModel) -> None:
        values = self.canvas.values.copy()
        session, label = self.context.session, self.tools.label_value
        reference = self._references.get(loaded.name)

        def job():
            cond = condition_for(session, loaded, values, label)
            return score_image(loaded, values, cond, reference), values

        self.scorer.submit(job, "score")

    def _submit_pixel(self, loaded: LoadedModel) -> None:
        position = self._pixel_of_interest()
        if position is None:
            return
        values = self.canvas.values.copy()
        session, label = self.context.session, self.tools.label_value

        def job():
            cond = condition_for(session, loaded, values, label)
            return pixel_conditional(loaded, values, position, cond), loaded.name

        self.scorer.submit(job, "pixel")

    def _pixel_of_interest(self) -> tuple[int, int, int] | None:
        """The hovered pixel, else the most surprising one."""
        if self.hover is not None:
            return (0, *self.hover)
        if self.result is None:
            return None
        r, c = np.unravel_index(int(np.argmax(self.result.per_pixel_nll)), self.result.per_pixel_nll.shape)
        return (0, int(r), int(c))

    def compare(self) -> None:
        """Score the image under every checkpoint of the same shape and values (on the background worker)."""
        loaded = self.loaded
        if loaded is None:
            return
        if not self.isVisible():
            self._compare_when_shown = True
            return
        if self._dirty or self.scorer.has_pending():  # the current model's score first: loading others competes
            self._compare_when_scored = True  # asked again when the scorer's next result arrives
            return
        self._compare_when_scored = False
        values, label = self.canvas.values.copy(), self.tools.label_value
        session, infos, load = self.context.session, list(self.context.checkpoints()), self.context.model
        infos = [loaded.info] + [i for i in infos if i.name != loaded.name]  # its own row first
        k = loaded.model.num_values
        superseded = self.background.has_pending  # a newer image: stop between two checkpoints
        worker = self.background

        def on_rows(rows, total):
            worker.report((rows, values, total))

        self.background.submit(
            lambda: (compare_checkpoints(session, infos, load, values, k, label, superseded, on_rows), values),
            "compare")

    def _on_done(self, result: JobResult) -> None:
        handler = {"score": self._show_score, "pixel": self._show_pixel, "compare": self._show_compare,
                   "reference": self._store_reference, "sample": self._show_sample}.get(result.tag)
        if handler is not None and self.loaded is not None:
            handler(result.value)
        if result.tag in ("score", "pixel") and self._compare_when_scored and self.loaded is not None:
            self.compare()

    def _on_failed(self, tag: str, message: str, details: str) -> None:
        what = {"score": "scoring failed", "pixel": "the pixel's distribution failed", "compare":
                "comparing checkpoints failed", "sample": "sampling failed", "reference":
                "scoring the test images failed"}.get(tag, tag)
        self.context.notify(f"{what}: {message}", "error", details, source=self.loaded.name if self.loaded else "")

    # -- showing -------------------------------------------------------------------------------------------
    def _show_score(self, value) -> None:
        result, values = value
        if result.checkpoint != self.loaded.name:
            return
        self.result = result
        model = self.loaded.model
        self.heatmap.set_rgb(heatmap_rgb(result.per_pixel_nll, heat_limit(model.num_values, model.shape[0])))
        reference = reference_label(self.loaded) if self._references.get(self.loaded.name) is not None else None
        self.results.show_score(result, self.loaded, self.source, reference)
        self.hover_changed_or_refresh()

    def hover_changed_or_refresh(self) -> None:
        self._hover_dirty = True
        if not self.timer.isActive():
            self.timer.start()

    def _show_pixel(self, value) -> None:
        conditional, name = value
        if name != self.loaded.name:  # computed for a model replaced meanwhile
            return
        self.results.show_pixel(conditional, self.loaded, self.hover is not None)
        _, r, col = conditional.position
        self.canvas.set_markers("pixel", [(r, col)], theme.ACCENT, 2.5)
        self.heatmap.set_markers("pixel", [(r, col)], theme.ACCENT, 2.5)

    def _show_compare(self, value) -> None:
        rows, values = value
        if tuple(values.shape) == tuple(self.canvas.values.shape):  # not an image of a model replaced meanwhile
            self.table.show_rows(rows, self.loaded.name, values)

    def _on_partial(self, result: JobResult) -> None:
        """The rows of a comparison still running, as they come (only for the latest request)."""
        if result.tag != "compare" or result.serial != self.background.latest_serial or self.loaded is None:
            return
        rows, values, total = result.value
        if tuple(values.shape) == tuple(self.canvas.values.shape):
            self.table.show_rows(rows, self.loaded.name, values, total)

    def _store_reference(self, value) -> None:
        name, nats = value
        self._references[name] = nats
        self._reference_requested.discard(name)
        if name == self.loaded.name:
            self._changed()

    # -- images in -----------------------------------------------------------------------------------------
    def load_file(self, path: str | Path) -> bool:
        """Convert an image file to what the model sees; a bad file is a one-line notice and changes nothing."""
        loaded = self.loaded
        if loaded is None:
            return False
        model = loaded.model
        try:
            converted = load_image(path, tuple(model.shape), model.num_values)
        except ImageError as exc:
            self.results.show_refused(exc)
            self.context.notify(str(exc), "warning", source="image")
            return False
        name = Path(path).name
        self.results.show_file(path, converted)
        self._set_image(converted.values, name)
        return True

    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Score an image", "",
                                              "Images (*.png *.jpg *.jpeg *.bmp *.gif *.tif *.tiff *.webp);;All (*)")
        if path:
            self.load_file(path)

    def load_test_image(self, index: int | None = None) -> bool:
        loaded = self.loaded
        found = self._test_split(loaded) if loaded is not None else None
        if found is None:
            self.context.notify("no test data on this machine for this checkpoint's dataset", "warning")
            return False
        i = int(self._rng.integers(len(found.images))) if index is None else int(index)
        digit = f" (a {int(found.labels[i])})" if found.labels is not None else ""
        self._describe_source(f"test image #{i}{digit} of {found.source[len('the test split of '):]}")
        self._set_image(found.images[i], f"test image #{i}{digit}")
        return True

    def load_sample(self) -> None:
        """Sample one image onto the canvas (under the chosen class, or conditioned on the image drawn now)."""
        loaded = self.loaded
        if loaded is None:
            return
        seed = int(self._rng.integers(100000))
        session, label, values = self.context.session, self.tools.label_value, self.canvas.values.copy()
        model = loaded.model

        def job():
            cond = condition_for(session, loaded, values, label)
            return sample(model, 1, seed=seed, cond=cond)[0].cpu().numpy().astype(np.uint8), seed, loaded.name

        self.results.show_source(f"Sampling one image from {loaded.name} (seed {seed})…")
        self.background.submit(job, "sample")

    def _show_sample(self, value) -> None:
        values, seed, name = value
        if name == self.loaded.name and tuple(values.shape) == tuple(self.canvas.values.shape):
            self._describe_source(f"a sample of {self.loaded.name} (seed {seed})")
            self._set_image(values, f"a sample (seed {seed})")

    def receive_image(self, sent: SentImage) -> None:
        """An image from another view (a sample, ...)."""
        if self.loaded is None or tuple(sent.values.shape) != tuple(self.canvas.values.shape):
            self.context.notify("that image does not fit the current model", "warning")
            return
        self._describe_source(sent.label)
        self._set_image(sent.values, sent.label)

    def _describe_source(self, text: str) -> None:
        self.results.show_source(f"From {text}.")

    def _remember_drawing(self) -> None:
        """The canvas changed by the user's hand or a new image (not by a conversion): that is the drawing."""
        if not self._converting:
            self.drawing.remember(self.canvas.values, self.canvas.num_values)

    def _convert_drawing(self, shape: tuple[int, int, int], num_values: int) -> None:
        """A model of another format: the canvas takes its format, and the drawing converted to it."""
        self._converting = True
        try:
            self.canvas.set_format(shape, num_values)
            converted = self.drawing.for_model(shape, num_values)
            if converted is None or not self.drawing.values.any():
                self.source = "a blank canvas"
                return
            self.canvas.set_values(converted.values)
        finally:
            self._converting = False
        self.hover = None
        kind = "binary" if num_values == 2 else f"{num_values} levels"
        steps = converted.describe()
        steps = "each pixel as bright as it was" if steps == "used as it is" else steps
        self.results.show_source(f"From {self.source}, converted for this model ({shape[1]}×{shape[2]}, {kind}): "
                                 f"{steps}.")

    def _set_image(self, values: np.ndarray, source: str) -> None:
        self.source = source
        self.hover = None
        self.canvas.set_values(values)

    def _drawn_on(self) -> None:
        """The pen touched the image: it is the user's drawing now (or their edit of what was loaded)."""
        if self.source == "a blank canvas":
            self.source = "your drawing"
        elif not self.source.startswith("your"):
            self.source = f"your edit of {self.source}"

    def _invert(self) -> None:
        self._drawn_on()
        self.canvas.invert()

    def _clear(self) -> None:
        self.source = "a blank canvas"
        self.results.show_source("")
        self.canvas.erase_all()

    def _on_hover(self, row: int, col: int) -> None:
        self.hover = (row, col) if row >= 0 else None
        self.hover_changed_or_refresh()

    def _inspect_menu(self, row: int, col: int, button: int) -> None:
        if button == Qt.MouseButton.RightButton.value and self.loaded is not None:
            self.context.send_image("inspect", self.canvas.values, self.source, (0, row, col))

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        self._split_once()
        if self._dirty or self._hover_dirty:
            self.timer.start()
        if self._compare_when_shown:
            self._compare_when_shown = False
            self.compare()

    def _split_once(self) -> None:
        """The first time the view shows, give the images the height their width allows and the comparison the
        rest (a splitter starts from size hints, which left the table two rows)."""
        total = self.splitter.height()
        if self._split_done or total <= 0:
            return
        self._split_done = True
        side = (self.splitter.width() - self.colorbar.sizeHint().width()) // 2  # two square images side by side
        images = side + self.canvas_caption.sizeHint().height() + theme.scaled(12)
        images = max(min(images, total - self.table.minimumSizeHint().height()), total // 2)
        self.splitter.setSizes([images, total - images])

    # -- drag and drop -------------------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        for url in event.mimeData().urls():
            if url.isLocalFile():
                self.load_file(url.toLocalFile())
                event.acceptProposedAction()
                return

    # -- session files -------------------------------------------------------------------------------------
    def session_state(self) -> dict:
        """The image on the canvas, where it came from, and the class it is scored under."""
        if self.loaded is None:
            return {}
        canvas = self.canvas
        return {"drawing": SessionImage(canvas.values.copy(), canvas.num_values, self.source, self.tools.label_value)}

    def restore_session(self, state: SessionState) -> list[str]:
        """Put the session's drawing on the canvas, converted to this model's levels where it must be."""
        drawing = state.drawing
        if drawing is None or self.loaded is None:
            return []
        model = self.loaded.model
        values, note = fit_image(drawing, tuple(model.shape), model.num_values)
        if values is None:
            return [f"the drawing was not restored: {note}"]
        if drawing.label is not None and self.tools.label.count():
            self.tools.label.setCurrentIndex(max(self.tools.label.findData(drawing.label), 0))
        source = drawing.source or "the session's drawing"
        self._describe_source(source)
        self._set_image(values, source)
        return [f"the drawing was {note}"] if note else []

    # -- lifecycle -----------------------------------------------------------------------------------------
    def default_action(self) -> None:
        """What ``--screenshot --view score`` shows: a test digit (or a drawn 3) with its map and table."""
        if self._test_split(self.loaded) is not None:
            self.load_test_image(0)
        else:
            model = self.loaded.model
            examples = synthetic_images(tuple(model.shape), model.num_values, 40, seed=3)
            threes = np.nonzero(examples.labels == 3)[0]
            index = int(threes[0]) if len(threes) else 0
            self._describe_source(examples.source)
            self._set_image(examples.images[index], f"a drawn {int(examples.labels[index])}")
        self.compare()

    def quiesce(self) -> None:
        super().quiesce()
        self._reference_requested.clear()  # a dropped request is made again when its model comes back


__all__ = ["QtScoreView", "heat_limit"]
