"""The ordering editor: "we can design any autoregressive ordering we want".

Each pixel is coloured by its step in the ordering (dark first, bright last; the number on hover). Presets,
painting by click and drag, reverse, transpose, flip, undo, save and load. Click a pixel (not painting) to see
which pixels its conditional may depend on. With a model that takes any ordering, samples and the NLL of test
images follow every edit at once; a model whose ordering is chosen when built can be trained with the edited
ordering in the background. A table lists the test NLL by ordering of the models at hand.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFileDialog,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import ARExplorerError
from app.core.orderings import Ordering
from app.core.sampling import sample_steps
from app.core.scoring import ensemble_nll, random_orderings
from app.core.session import LoadedModel
from app.core.session_file import OrderingChoice, SessionState
from app.ui import theme
from app.ui.context import AppContext
from app.ui.example_images import example_images
from app.ui.formatting import format_nll, loaded_data_description
from app.ui.hints import sample_with_ordering_command, train_command
from app.ui.ordering_editor import OrderingEditor, describe_cell, ordering_rgb
from app.ui.ordering_jobs import (
    MeasureProgress,
    OrderingRow,
    measure_orderings,
    nll_under,
    recorded_rows,
    train_with_ordering,
    training_output,
)
from app.ui.progress_task import ProgressTask
from app.ui.qt_pixel_view import QtPixelView
from app.ui.rendering import grid_layout, tile_rgb
from app.ui.views.qt_ordering_tools import QtOrderingGrid, QtOrderingTools
from app.ui.views.worker_owner import WorkerOwner
from app.ui.workers import JobResult, JobWorker, SamplingWorker

NUM_SAMPLES = 4
SCORE_IMAGES = 64  # test images scored under each edit
MAX_ENSEMBLE = 32  # orderings in the largest ensemble the view scores
TABLE_IMAGES = 256  # test images per ordering in the table
REPAINT_MS = 40
TABLE_COLUMNS = ("ordering", "checkpoint", "nats/image", "bits/dim", "images")
class _ScrolledColumn(QWidget):
    """A column inside a resizable scroll area that gets the viewport's height, not its preferred height.

    A scroll area asks a widget whose layout wraps text for its height at the viewport's width, and a layout
    answers with the height it would like (every label and table at its preferred size): the column would
    always scroll. Its smallest height at that width is what it needs; above that the splitters share the rest.
    """

    def heightForWidth(self, width: int) -> int:  # noqa: N802 - Qt's name
        layout = self.layout()
        return layout.minimumHeightForWidth(width) if layout is not None else -1


class _WrappingBox(QGroupBox):
    """A group box whose smallest height is that of its wrapped text at its present width.

    A splitter sizes its panes by their minimum size hints, which count a word-wrapped label as if it were one
    short line; at a large scale the label then takes two and the panel's contents would overprint each other.
    """

    def minimumSizeHint(self):  # noqa: N802 - Qt's name
        hint = super().minimumSizeHint()
        layout = self.layout()
        if layout is not None and layout.hasHeightForWidth() and self.width() > 0:
            inner = self.contentsRect()  # inside the title and the frame, where the layout lays out
            frame = (self.width() - inner.width(), self.height() - inner.height())
            hint.setHeight(max(hint.height(), layout.minimumHeightForWidth(self.width() - frame[0]) + frame[1]))
        return hint

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        if event.size().width() != event.oldSize().width():
            self.updateGeometry()  # the smallest height changed with the width: the splitter asks again


LIVE_SHARE = 0.45  # of the right column's height, for the samples under the ordering (the rest: the table)
GRID_SHARE = 0.4  # of the width, for the grid and its tools when the view first shows (the divider moves)


def short_checkpoint_name(name: str, dataset: str | None) -> str:
    """A checkpoint's name without its dataset (every row of the table is on the same data, which the note
    names): ``attention-binarized-mnist-random`` is ``attention-random``."""
    if dataset and f"-{dataset}" in name:
        return name.replace(f"-{dataset}", "", 1) or name
    return name


class QtOrderingView(WorkerOwner, QWidget):
    """The Orderings tab. ``editor`` holds the ordering being edited."""

    def __init__(self, context: AppContext, parent=None) -> None:
        super().__init__(parent)
        self.context = context
        self.editor = OrderingEditor(28, 28)
        self.selected: tuple[int, int] | None = None
        self.sampler: SamplingWorker | None = None
        self.jobs = JobWorker()
        self.ensemble_jobs = JobWorker()  # its own slot: a re-score after an edit never replaces the ensemble's
        self.trainer_worker = JobWorker()
        self.training = ProgressTask(self.trainer_worker, "train")
        self.measurer = JobWorker()  # its own thread: a table that takes minutes never holds up the live score
        self.measuring = ProgressTask(self.measurer, "table")
        self._measured_source = ""
        self._training = False
        self.measured: list[OrderingRow] = []
        self.score_text = ""
        self._build()
        self._connect()
        self.timer = QTimer(self)
        self.timer.setInterval(REPAINT_MS)
        self.timer.timeout.connect(self._tick)
        self.own_timers(self.timer, on_quiesce=False)
        self.own_tasks(self.training, self.measuring)
        self.own_workers(self.jobs, self.measurer, self.ensemble_jobs)
        self.own_workers(self.trainer_worker, timeout_s=30.0)  # a training run stops between its steps
        context.register_quiescer(self.quiesce)
        context.model_changed.connect(self._on_model_changed)
        context.checkpoints_changed.connect(self._refresh_table)
        self._on_model_changed(context.loaded)

    # -- building ------------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.tools = QtOrderingTools()
        self.grid = QtOrderingGrid()
        self.grid.setAccessibleName("ordering")
        self.cell_label = QLabel("Hover over a pixel to see its step.")
        self.validation = QLabel()
        for label in (self.cell_label, self.validation):
            label.setWordWrap(True)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.tools)
        left_layout.addWidget(self.grid, 1)
        left_layout.addWidget(self.cell_label)
        left_layout.addWidget(self.validation)
        self.capability = QLabel()
        self.capability.setWordWrap(True)
        right = _ScrolledColumn()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.capability)
        # Samples, training and the table share the height through a divider of their own; where even their
        # smallest sizes do not fit (a large scale on a short screen) the column scrolls: nothing overprints.
        self.right_splitter = QSplitter(Qt.Orientation.Vertical)
        for index, (box, stretch) in enumerate(((self._build_live(), 2), (self._build_training(), 0),
                                                (self._build_table(), 3))):
            self.right_splitter.addWidget(box)
            self.right_splitter.setStretchFactor(index, stretch)
        self.right_splitter.setChildrenCollapsible(False)
        right_layout.addWidget(self.right_splitter, 1)
        self.right_scroll = QScrollArea()
        self.right_scroll.setWidgetResizable(True)
        self.right_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.right_scroll.setWidget(right)
        # The grid is square and its height is what the screen has, so the table gets the rest of the width;
        # the divider moves either way.
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.right_scroll)
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 3)
        self.splitter.setChildrenCollapsible(False)
        self._split_done = False
        layout = QHBoxLayout(self)
        layout.addWidget(self.splitter)
        undo = QAction("Undo", self)
        undo.setShortcut(QKeySequence.StandardKey.Undo)
        undo.triggered.connect(self.undo)
        self.addAction(undo)

    def _build_live(self) -> QWidget:
        self.live_box = _WrappingBox("Under this ordering, now")
        # Small at its smallest, so that the samples, the table and their labels fit a projector at 200%.
        self.samples = QtPixelView(min_size=72)
        self.samples.setAccessibleName("samples under this ordering")
        self.sample_button = QPushButton("Sample again")
        self.sample_button.clicked.connect(self.sample)
        self.score_label = QLabel()
        self.score_label.setWordWrap(True)
        self.ensemble = QSpinBox()
        self.ensemble.setRange(1, MAX_ENSEMBLE)
        self.ensemble.setValue(1)
        self.ensemble.setPrefix("ensemble of ")
        self.ensemble.setSuffix(" random orderings")
        self.ensemble.setSpecialValueText("no ensemble (one ordering)")
        self.ensemble.setToolTip("Score the same images with the mixture over K seeded random orderings: "
                                 "-log of the mean of p(x) over them (EoNADE)")
        self.ensemble.setAccessibleName("ensemble size")
        self.ensemble.valueChanged.connect(lambda _: self._score_ensemble())
        self.ensemble_label = QLabel()
        self.ensemble_label.setWordWrap(True)
        layout = QVBoxLayout(self.live_box)
        layout.addWidget(self.samples, 1)
        layout.addWidget(self.sample_button)
        layout.addWidget(self.score_label)
        row = QHBoxLayout()
        row.addWidget(self.ensemble)
        row.addStretch(1)
        layout.addLayout(row)
        layout.addWidget(self.ensemble_label)
        return self.live_box

    def _build_training(self) -> QWidget:
        self.train_box = QGroupBox("Train with this ordering")
        self.minutes = QDoubleSpinBox()
        self.minutes.setRange(0.2, 120.0)
        self.minutes.setValue(2.0)
        self.minutes.setSuffix(" min")
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 1000)
        self.epochs.setValue(20)
        self.epochs.setSuffix(" epochs")
        self.train_button = QPushButton("Train")
        self.train_button.clicked.connect(self.train)
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(self.training.cancel)
        self.progress = QProgressBar()
        self.train_label = QLabel()
        self.train_label.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(QLabel("Budget:"))
        row.addWidget(self.minutes)
        row.addWidget(self.epochs)
        row.addWidget(self.train_button)
        row.addWidget(self.stop_button)
        layout = QVBoxLayout(self.train_box)
        layout.addLayout(row)
        layout.addWidget(self.progress)
        layout.addWidget(self.train_label)
        return self.train_box

    def _build_table(self) -> QWidget:
        box = QGroupBox("Test NLL by ordering")
        self.table = QTableWidget(0, len(TABLE_COLUMNS))
        self.table.setHorizontalHeaderLabels(list(TABLE_COLUMNS))
        self.table.verticalHeader().hide()
        # Every column as wide as its longest text, whatever the scale: nothing is elided; a table wider than
        # its place scrolls sideways.
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.setWordWrap(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table_note = QLabel()
        self.table_note.setWordWrap(True)
        self.measure_button = QPushButton("Measure the presets with this model")
        self.measure_button.clicked.connect(self.measure_presets)
        self.measure_stop = QPushButton("Stop")
        self.measure_stop.setToolTip("Stop measuring; the orderings measured so far keep their rows")
        self.measure_stop.clicked.connect(self.measuring.cancel)
        self.measure_progress = QProgressBar()
        self.measure_progress.setFormat("%v of %m batches")
        measure_row = QHBoxLayout()
        measure_row.addWidget(self.measure_button, 1)
        measure_row.addWidget(self.measure_stop)
        layout = QVBoxLayout(box)
        layout.addWidget(self.table, 1)
        layout.addLayout(measure_row)
        layout.addWidget(self.measure_progress)
        layout.addWidget(self.table_note)
        self._show_measuring(False)
        return box

    def _connect(self) -> None:
        t = self.tools
        t.preset_chosen.connect(self.apply_preset)
        t.paint_toggled.connect(self._on_paint_toggled)
        t.fill_toggled.connect(self._on_fill_toggled)
        t.reverse.connect(lambda: self._edit(self.editor.reverse))
        t.transpose.connect(lambda: self._edit(self.editor.transpose))
        t.flip.connect(lambda axis: self._edit(lambda: self.editor.flip(axis)))
        t.undo.connect(self.undo)
        t.save.connect(self.choose_save)
        t.load.connect(self.choose_load)
        self.grid.stroked.connect(self._on_stroke)
        self.grid.pixel_hovered.connect(self._on_hover)
        self.jobs.done.connect(self._on_done)
        self.jobs.failed.connect(self._on_failed)
        self.ensemble_jobs.done.connect(self._on_done)
        self.ensemble_jobs.failed.connect(self._on_failed)
        self.trainer_worker.done.connect(self._on_training_done)
        self.trainer_worker.failed.connect(self._on_failed)
        self.measurer.done.connect(self._on_measured)
        self.measurer.failed.connect(self._on_failed)

    def set_scale(self, scale: float) -> None:
        self.score_label.setStyleSheet(theme.heading_css(scale, 1.1))
        self.grid.set_scale(scale)
        self.samples.set_scale(scale)
        self.table.horizontalHeader().resizeSections(QHeaderView.ResizeMode.ResizeToContents)
        self.table.verticalHeader().resizeSections(QHeaderView.ResizeMode.ResizeToContents)

    # -- the model -----------------------------------------------------------------------------------------
    @property
    def loaded(self) -> LoadedModel | None:
        return self.context.loaded

    @property
    def takes_any(self) -> bool:
        return self.loaded is not None and self.loaded.model.capability == "any"

    def _on_model_changed(self, loaded: LoadedModel | None) -> None:
        self._stop_sampler()
        self.measured = []
        self._show_measuring(False)
        self.setEnabled(loaded is not None)
        if loaded is None:
            self.capability.setText("Open a checkpoint to edit orderings for it.")
            return
        model = loaded.model
        h, w = model.config.height, model.config.width
        if (self.editor.height, self.editor.width) != (h, w):
            self.editor = OrderingEditor(h, w, model.ordering)
        elif model.capability != "any":
            self.editor.set(model.ordering)
        self.tools.set_presets(sorted(self.context.session.registry.orderings))
        self.tools.buttons["transpose"].setEnabled(h == w)
        self.capability.setText(self._capability_text(loaded))
        self.live_box.setVisible(model.capability == "any")
        self.train_box.setVisible(model.capability == "build")
        self.measure_button.setVisible(model.capability == "any")
        self.measure_stop.setVisible(model.capability == "any")
        self._refresh_table()
        self._changed()
        self._score_ensemble()

    def _capability_text(self, loaded: LoadedModel) -> str:
        title = loaded.model.spec.title
        return {
            "any": f"<b>{title}</b> takes any ordering at run time: samples and scores below follow every edit.",
            "build": f"<b>{title}</b> was trained with the <b>{loaded.model.ordering.name}</b> ordering; its ordering "
                     "is chosen when it is built. Train a new one with the edited ordering below.",
        }.get(loaded.model.capability, f"<b>{title}</b> generates in one fixed ordering "
                                       f"({loaded.model.ordering.name}); open an any-order model to use yours.")

    # -- edits ---------------------------------------------------------------------------------------------
    def apply_preset(self, name: str) -> None:
        h, w = self.editor.height, self.editor.width
        self.tools.paint.setChecked(False)
        self.tools.show_preset(name)
        self._edit(lambda: self.editor.set(self.context.session.registry.ordering(name, h, w, 0)))

    def set_ordering(self, ordering: Ordering) -> None:
        self.tools.paint.setChecked(False)
        self._edit(lambda: self.editor.set(ordering))

    def _edit(self, change) -> bool:
        try:
            change()
        except ARExplorerError as exc:
            self.validation.setText(f"<span style='color:{theme.ERROR}'>{exc}</span>")
            return False
        self._changed()
        return True

    def undo(self) -> None:
        if self.editor.undo():
            self.tools.paint.blockSignals(True)
            self.tools.paint.setChecked(self.editor.painting)
            self.tools.paint.blockSignals(False)
            self._changed()

    def _on_paint_toggled(self, on: bool) -> None:
        self.selected = None
        if on:
            self.editor.start_painting()
            self._changed()

    def _on_fill_toggled(self, fill: bool) -> None:
        self.editor.set_fill_rest(fill)
        self._changed()

    def _on_stroke(self, cells: list, finished: bool) -> None:
        if self.tools.paint.isChecked():
            if cells:
                self.editor.paint(cells)
                self._render()
            if finished:
                self.editor.end_stroke()
                self._changed()
        elif cells:
            self.select(cells[-1])

    def select(self, cell: tuple[int, int] | None) -> None:
        """Show what the conditional of ``cell`` may see (None: back to the plain ordering)."""
        self.selected = None if cell is None or cell == self.selected else (int(cell[0]), int(cell[1]))
        self._render()
        if self.selected is not None:
            self.cell_label.setText(describe_cell(self.editor, self.selected) + "; the dimmed pixels it may not see.")

    def _changed(self) -> None:
        self._render()
        check = self.editor.validation()
        colour = theme.TEXT if check.ok else theme.ERROR
        self.validation.setText(f"<span style='color:{colour}'>{check.message}</span>")
        ordering = self.editor.usable()
        self.train_button.setEnabled(ordering is not None and not self._training)
        if ordering is not None and self.takes_any:
            self.sample()
            self._score(ordering)

    def _render(self) -> None:
        self.grid.set_rgb(ordering_rgb(self.editor, self.selected))

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        if not self._split_done and self.splitter.width() > 0:
            self._split_done = True
            # After the layout has settled: a splitter starts from its children's size hints, which would give
            # the grid most of the width and the samples most of the height.
            QTimer.singleShot(0, self._initial_split)

    def _initial_split(self) -> None:
        width = self.splitter.width()
        self.splitter.setSizes([int(width * GRID_SHARE), width - int(width * GRID_SHARE)])
        height = self.right_scroll.viewport().height() - self.capability.height()
        training = self.train_box.sizeHint().height() if self.train_box.isVisibleTo(self) else 0
        live = int((height - training) * LIVE_SHARE)
        self.right_splitter.setSizes([live, training, max(0, height - training - live)])


    def _on_hover(self, row: int, col: int) -> None:
        if row >= 0:
            self.cell_label.setText(describe_cell(self.editor, (row, col)))

    # -- files ---------------------------------------------------------------------------------------------
    def save_to(self, path: str | Path) -> bool:
        ordering = self.editor.usable()
        if ordering is None:
            self.validation.setText(f"<span style='color:{theme.ERROR}'>nothing saved: "
                                    f"{self.editor.validation().message}</span>")
            return False
        ordering.with_name(Path(path).stem).save(path)
        self.validation.setText(f"saved to {path}: {self.usage_hint(path)}")
        return True

    def usage_hint(self, path: str | Path) -> str:
        """How to use a saved ordering from the command line, as a command that runs as shown: sampling with
        a model that takes any ordering (this one, or one at hand of the same size), or training a model
        built for one."""
        loaded = self.loaded
        if loaded is None:
            return "open a model that takes any ordering to sample under it"
        model = loaded.model
        if model.capability == "any":
            return f"sample under it with {sample_with_ordering_command(loaded.name, path)}"
        if model.capability == "build" and loaded.dataset is not None:
            return (f"train a {model.spec.title} with it: "
                    f"{train_command(model.spec.name, loaded.dataset.name, path)}")
        other = self._any_order_checkpoint(tuple(model.shape))
        if other is None:
            return "open a model that takes any ordering to sample under it"
        return f"sample under it with {sample_with_ordering_command(other, path)}"

    def _any_order_checkpoint(self, shape: tuple[int, ...]) -> str | None:
        models = self.context.session.registry.models
        for info in self.context.checkpoints():
            spec = models.get(info.model)
            config = info.meta.get("config") or {}
            if spec is not None and spec.orderings == "any" and tuple(config.get("shape", ())) == shape:
                return info.name
        return None

    def load_from(self, path: str | Path) -> bool:
        try:
            ordering = Ordering.load(path)
        except ARExplorerError as exc:
            self.validation.setText(f"<span style='color:{theme.ERROR}'>{exc}</span>")
            return False
        self.tools.paint.setChecked(False)
        return self._edit(lambda: self.editor.set(ordering))

    def choose_save(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the ordering", "ordering.json", "Orderings (*.json)")
        if path:
            self.save_to(path)

    def choose_load(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load an ordering", "", "Orderings (*.json);;All (*)")
        if path:
            self.load_from(path)

    # -- live sampling and scoring (any-order models) -----------------------------------------------------
    def sample(self) -> None:
        loaded, ordering = self.loaded, self.editor.usable()
        if loaded is None or ordering is None or not self.takes_any:
            return
        self._stop_sampler()
        model = loaded.model
        seed = int(np.random.default_rng().integers(100000))
        worker = SamplingWorker(lambda: sample_steps(model, NUM_SAMPLES, seed=seed, ordering=ordering),
                                tuple(model.shape))
        worker.failed.connect(lambda message, details: self.context.notify(message, "error", details))
        self.sampler = worker
        worker.start()
        self.timer.start()

    def _tick(self) -> None:
        frame = self.sampler.latest if self.sampler is not None else None
        if frame is not None and self.loaded is not None:
            step = frame.step
            layout = grid_layout(step.image.shape[0], *self.loaded.model.shape[1:])
            self.samples.set_rgb(tile_rgb(step.image, self.loaded.model.num_values, layout, frame.drawn,
                                          self.editor.rank()))
            if step.done and not self.training.running and not self.measuring.running:
                self.timer.stop()
        if self.training.running:
            self._show_training(self.training.latest)
        if self.measuring.running:
            self._show_measured(self.measuring.latest)

    def _score(self, ordering: Ordering) -> None:
        loaded = self.loaded
        examples = example_images(self.context.session, loaded, SCORE_IMAGES, seed=0)
        self.score_label.setText("scoring…")

        def job():
            return ordering.name, nll_under(loaded, examples.images, ordering), examples.source

        self.jobs.submit(job, "score")

    def _score_ensemble(self) -> None:
        """The same images under the mixture over K seeded random orderings (not under the edited one)."""
        loaded, k = self.loaded, self.ensemble.value()
        if loaded is None or not self.takes_any or k <= 1:
            self.ensemble_label.setText("")
            return
        examples = example_images(self.context.session, loaded, SCORE_IMAGES, seed=0)
        h, w = loaded.model.shape[1:]
        registry = self.context.session.registry
        self.ensemble_label.setText(f"scoring the ensemble of {k}…")

        def job():
            nll = ensemble_nll(loaded.model, examples.images, random_orderings(k, h, w, registry))
            return k, float(np.mean(nll)), examples.source

        self.ensemble_jobs.submit(job, "ensemble")

    def _show_ensemble(self, value) -> None:
        k, nats, source = value
        if k != self.ensemble.value():
            return  # a result for a size no longer asked for
        dims = int(np.prod(self.loaded.model.shape))
        self.ensemble_label.setText(f"{format_nll(nats, dims)}: -log mean p(x) over {k} random orderings "
                                    f"(seeds 0-{k - 1}), the same {SCORE_IMAGES} images of {source}")

    def _show_score(self, value) -> None:
        name, (nats, _), source = value
        dims = int(np.prod(self.loaded.model.shape))
        self.score_text = (f"{format_nll(nats, dims)}: mean over {SCORE_IMAGES} images of {source}, "
                           f"ordering {name}")
        self.score_label.setText(self.score_text)
        self.live_box.updateGeometry()  # its wrapped text may take another line: the divider makes room

    # -- the table -----------------------------------------------------------------------------------------
    def measure_presets(self) -> None:
        """Score the same test images under every preset (and the edited ordering), with progress and Stop."""
        loaded = self.loaded
        if loaded is None or not self.takes_any or self.measuring.running:
            return
        h, w = self.editor.height, self.editor.width
        registry = self.context.session.registry
        orderings = {name: registry.ordering(name, h, w, 0) for name in sorted(registry.orderings)}
        edited = self.editor.usable()
        if edited is not None:
            orderings[f"edited ({edited.name})"] = edited
        examples = example_images(self.context.session, loaded, TABLE_IMAGES, seed=1)
        self._measured_source = examples.source
        self.measured = []
        self.measure_progress.setRange(0, 1)
        self.measure_progress.setValue(0)
        self.table_note.setText(f"measuring {len(orderings)} orderings on {TABLE_IMAGES} images of "
                                f"{examples.source}…")
        images = examples.images
        self.measuring.start(lambda stop: measure_orderings(loaded, images, orderings, stop))
        self._show_measuring(True)
        self.timer.start()

    def _show_measuring(self, running: bool) -> None:
        self.measure_button.setEnabled(not running)
        self.measure_stop.setEnabled(running)
        self.measure_progress.setVisible(running)

    def _show_measured(self, progress: MeasureProgress | None) -> None:
        """The progress bar, and the rows of the orderings finished so far."""
        if progress is None:
            return
        self.measure_progress.setRange(0, progress.total)
        self.measure_progress.setValue(progress.done)
        if len(progress.rows) != len(self.measured):
            self.measured = progress.rows
            self._refresh_table()
        self.table_note.setText(f"measuring {progress.current}: {len(progress.rows)} ordering(s) done, on "
                                f"{TABLE_IMAGES} images of {self._measured_source}…")

    def _on_measured(self, result: JobResult) -> None:
        self._show_measuring(False)
        progress = result.value
        if self.loaded is None:
            return
        if progress is not None:
            self.measured = progress.rows
        self._refresh_table()
        stopped = self.measuring.cancelled or progress is None or progress.done < progress.total
        done = f"{len(self.measured)} ordering(s)" + (" (stopped)" if stopped else "")
        self.table_note.setText(self.table_note.text() + f" Measured now: {done}, on {TABLE_IMAGES} images of "
                                f"{self._measured_source}.")

    def _refresh_table(self) -> None:
        loaded = self.loaded
        if loaded is None:
            return
        dataset = loaded.info.meta.get("dataset")
        rows = recorded_rows(self.context.checkpoints(), dataset, tuple(loaded.model.shape))
        rows = [*self.measured, *rows]
        self.table.setRowCount(len(rows))
        for i, row in enumerate(rows):
            count = str(row.num_images) if row.num_images else "test split"
            cells = [row.ordering, short_checkpoint_name(row.model, dataset), f"{row.nll_nats:.2f}",
                     f"{row.bits_per_dim:.4f}", count]
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(f"{row.model}: {row.source}")
                if j in (2, 3):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(i, j, item)
        self.table_note.setText(f"Negative log-likelihood on {loaded_data_description(loaded)}: recorded test NLL of "
                                "each checkpoint, and measured now for an any-order model.")

    # -- training (build-time models) ----------------------------------------------------------------------
    def train(self) -> None:
        loaded, ordering = self.loaded, self.editor.usable()
        if loaded is None or ordering is None or self._training or self.training.running:
            return
        from app.core.checkpoints import user_checkpoint_dir

        folder = user_checkpoint_dir()
        folder.mkdir(parents=True, exist_ok=True)
        out = training_output(loaded, ordering, folder, [info.name for info in self.context.checkpoints()])
        session, minutes, epochs = self.context.session, float(self.minutes.value()), self.epochs.value()
        self.train_label.setText(f"training {loaded.model.spec.title} with {ordering.name} for up to "
                                 f"{minutes:g} min -> {out.name}")
        self.training.start(
            lambda stop: train_with_ordering(session, loaded, ordering, out, minutes, stop, epochs=epochs))
        self._training = True  # until its result is handled here (the task's own flag drops a moment earlier)
        self.train_button.setEnabled(False)
        self.timer.start()

    def _show_training(self, event) -> None:
        if event is None:
            return
        self.progress.setRange(0, 1000)
        self.progress.setValue(int(1000 * max(event.fraction, min(1.0, event.elapsed_s / (60 * self.minutes.value())))))
        best = event.best_valid_nll
        dims = int(np.prod(self.loaded.model.shape)) if self.loaded else 1
        parts = [f"step {event.step}", f"{event.elapsed_s:.0f} s"]
        if event.train_nll is not None:
            parts.append(f"training {event.train_nll:.1f} nats per image")
        if best is not None and math.isfinite(best):
            parts.append(f"best validation {format_nll(best, dims)}")
        self.train_label.setText(" · ".join(parts))

    def _on_training_done(self, result: JobResult) -> None:
        event = result.value
        self._training = False
        self.train_button.setEnabled(self.editor.usable() is not None)
        self._show_training(event)
        if event is not None and event.kind in ("done", "stopped"):
            self.train_label.setText(self.train_label.text() + f" · {event.kind}; the checkpoint is in the model list")
            self.context.checkpoints(refresh=True)

    # -- jobs ----------------------------------------------------------------------------------------------
    def _on_done(self, result: JobResult) -> None:
        if self.loaded is None:
            return
        if result.tag == "score":
            self._show_score(result.value)
        elif result.tag == "ensemble":
            self._show_ensemble(result.value)

    def _on_failed(self, tag: str, message: str, details: str) -> None:
        self.context.notify(f"{tag}: {message}", "error", details, source="orderings")
        if tag == "table":
            self._show_measuring(False)
        if tag == "train":
            self._training = False
            self.train_button.setEnabled(self.editor.usable() is not None)

    # -- session files -------------------------------------------------------------------------------------
    def session_state(self) -> dict:
        """The ordering being edited (painted or a preset), when it is usable."""
        ordering = self.editor.usable()
        if ordering is None or self.loaded is None:
            return {}
        registry = self.context.session.registry
        preset = ordering.name if ordering.name in registry.orderings else None
        if preset is not None and registry.ordering(preset, ordering.height, ordering.width, 0) != ordering:
            preset = None  # named after a preset, then edited
        return {"ordering": OrderingChoice(ordering, preset)}

    def restore_session(self, state: SessionState) -> list[str]:
        """Edit the session's ordering; a preset saved at another size is rebuilt at this model's."""
        choice = state.ordering
        if choice is None or self.loaded is None:
            return []
        ordering = choice.ordering
        h, w = self.editor.height, self.editor.width
        if (ordering.height, ordering.width) == (h, w):
            self.set_ordering(ordering)
            return []
        if choice.preset in self.context.session.registry.orderings:
            self.apply_preset(choice.preset)
            return [f"the {choice.preset} ordering was saved at {ordering.height}x{ordering.width}; it is rebuilt at "
                    f"{h}x{w} for this model"]
        return [f"the ordering is {ordering.height}x{ordering.width}; this model's images are {h}x{w}: not restored"]

    # -- lifecycle -----------------------------------------------------------------------------------------
    def _stop_sampler(self) -> None:
        if self.sampler is not None:
            self.sampler.stop_and_wait()
            self.sampler = None

    def default_action(self) -> None:
        """What ``--screenshot --view orderings`` shows: the spiral, with samples where the model allows, and
        what the pixel halfway along it may see (a pixel near the centre would see almost nothing: the picture
        would be nearly all dimmed)."""
        self.apply_preset("spiral")
        rank = self.editor.rank()
        row, col = np.argwhere(rank == rank.size // 2)[0]
        self.select((int(row), int(col)))

    def quiesce(self) -> None:
        self._stop_sampler()  # the sampler is made anew for every run, so it is stopped by name
        super().quiesce()

    def shutdown(self) -> None:
        self._stop_sampler()
        super().shutdown()


__all__ = ["QtOrderingView"]
