"""The Train tab: train any model on any dataset it takes, with progress and live curves.

A form says what to train (model, dataset, size as hyperparameters, ordering for the models that take one at
build time, or the open checkpoint's weights to carry further) and for how long (epochs, a time budget, batch
size, learning rate). The run goes on a worker thread (:func:`app.ui.train_jobs.run_plan`); the view polls its
record: a progress bar, one line of figures, and the training and validation NLL against images seen, in nats
per image on the named dataset. The best checkpoint (by validation NLL) lands in the user's checkpoint folder,
is measured on the test split at the end, and joins the checkpoint list, one click from being opened.
"""

from __future__ import annotations

import copy
import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import ARExplorerError
from app.ui import theme
from app.ui.context import AppContext
from app.ui.hints import download_command
from app.ui.progress_task import ProgressTask
from app.ui.train_jobs import (
    VALID_IMAGES,
    RunRecord,
    TrainPlan,
    compatible_datasets,
    describe_event,
    output_path,
    output_stem,
    parse_hparams,
    run_plan,
)
from app.ui.views.worker_owner import WorkerOwner
from app.ui.workers import JobResult, JobWorker

POLL_MS = 200
SIZES = ("the lecture's size", "tiny (a quick demo)")


class QtTrainView(WorkerOwner, QWidget):
    """The Train tab. ``record`` is the current (or last) run's; ``plan`` what started it."""

    def __init__(self, context: AppContext, parent=None) -> None:
        super().__init__(parent)
        self.context = context
        self.worker = JobWorker()
        self.task = ProgressTask(self.worker, "train")
        self.record: RunRecord | None = None
        self.plan: TrainPlan | None = None
        self._running = False
        self._shown = 0
        self._scale = 1.0
        self._stale = True
        self._data_present: dict[str, bool] = {}
        self.output_dir: Path | None = None  # where runs write; None: the user's checkpoint folder
        self._build()
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self._poll)
        self.own_timers(self.timer)
        self.own_tasks(self.task)
        self.own_workers(self.worker, timeout_s=30.0)  # a training run stops between its steps
        self.worker.done.connect(self._on_done)
        self.worker.failed.connect(self._on_failed)
        context.model_changed.connect(self._on_model_changed)
        context.scale_changed.connect(self.set_scale)
        self._fill_models()
        self._on_model_changed(context.loaded)
        self.set_scale(context.scale)

    # -- building ------------------------------------------------------------------------------------------
    def _build(self) -> None:
        what = QGroupBox("What to train")
        form = QFormLayout(what)
        self.model_box = QComboBox()
        self.model_box.currentIndexChanged.connect(self._on_model_picked)
        self.dataset_box = QComboBox()
        self.dataset_box.currentIndexChanged.connect(self._refresh_state)
        self.size_box = QComboBox()
        self.size_box.addItems(SIZES)
        self.size_box.currentIndexChanged.connect(self._fill_hparams)
        self.hparams = QLineEdit()
        self.hparams.setToolTip("The model's hyperparameters as a JSON object; keys left out take the lecture's values")
        self.hparams.textEdited.connect(self._refresh_state)
        self.ordering_box = QComboBox()
        self.ordering_box.setToolTip("For models whose ordering is chosen when they are built (MADE, masked attention...)")
        self.continue_box = QCheckBox("continue from the open checkpoint's weights")
        self.continue_box.setToolTip("Start from the weights of the checkpoint open in the app (same model and image "
                                     "size) instead of random ones; the result is a new checkpoint beside it")
        self.continue_box.toggled.connect(self._refresh_state)
        form.addRow("Model", self.model_box)
        form.addRow("Dataset", self.dataset_box)
        form.addRow("Size", self.size_box)
        form.addRow("Hyperparameters", self.hparams)
        form.addRow("Ordering", self.ordering_box)
        form.addRow("", self.continue_box)

        how = QGroupBox("For how long")
        how_form = QFormLayout(how)
        self.epochs = QDoubleSpinBox()
        self.epochs.setRange(0.01, 1000.0)
        self.epochs.setDecimals(2)
        self.epochs.setValue(1.0)
        self.minutes = QDoubleSpinBox()
        self.minutes.setRange(0.1, 24 * 60.0)
        self.minutes.setDecimals(1)
        self.minutes.setValue(5.0)
        self.minutes.setSuffix(" min")
        self.minutes.setToolTip("The run stops at this time or at the last epoch, whichever comes first")
        self.batch = QSpinBox()
        self.batch.setRange(1, 4096)
        self.batch.setValue(64)
        self.lr = QDoubleSpinBox()
        self.lr.setRange(1e-5, 1.0)
        self.lr.setDecimals(5)
        self.lr.setSingleStep(1e-4)
        self.lr.setValue(2e-3)
        self.measure = QCheckBox("measure the test NLL at the end")
        self.measure.setChecked(True)
        how_form.addRow("Epochs", self.epochs)
        how_form.addRow("Time budget", self.minutes)
        how_form.addRow("Batch size", self.batch)
        how_form.addRow("Learning rate", self.lr)
        how_form.addRow("", self.measure)

        self.train_button = QPushButton("Train")
        self.train_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.setToolTip("Stop after the current step; the best checkpoint so far stays")
        self.stop_button.clicked.connect(self.stop)
        self.open_button = QPushButton("Open the checkpoint")
        self.open_button.setEnabled(False)
        self.open_button.clicked.connect(self.open_result)
        buttons = QHBoxLayout()
        for button in (self.train_button, self.stop_button, self.open_button):
            buttons.addWidget(button)
        self.state = QLabel()
        self.state.setWordWrap(True)

        left = QVBoxLayout()
        left.addWidget(what)
        left.addWidget(how)
        left.addLayout(buttons)
        left.addWidget(self.state)
        left.addStretch(1)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.figures = QLabel("No run yet.")
        self.figures.setWordWrap(True)
        self.plot = pg.PlotWidget()
        item = self.plot.getPlotItem()
        item.setMenuEnabled(False)
        item.hideButtons()
        item.showGrid(x=True, y=True, alpha=0.25)
        self.legend = item.addLegend(offset=(-10, 10))
        for name in ("left", "bottom"):
            item.getAxis(name).enableAutoSIPrefix(False)
        self.train_curve = item.plot(pen=pg.mkPen(theme.MUTED, width=1.5), name="training batches")
        self.valid_curve = item.plot(pen=pg.mkPen(theme.ACCENT, width=2.5), symbol="o", symbolSize=7,
                                     symbolBrush=theme.ACCENT, name=f"validation ({VALID_IMAGES:,} images)")
        self.result = QLabel()
        self.result.setWordWrap(True)
        right = QVBoxLayout()
        right.addWidget(self.progress)
        right.addWidget(self.figures)
        right.addWidget(self.plot, 1)
        right.addWidget(self.result)

        layout = QHBoxLayout(self)
        layout.addLayout(left, 2)
        layout.addLayout(right, 3)

    def set_scale(self, scale: float) -> None:
        self._scale = scale
        item = self.plot.getPlotItem()
        theme.style_plot(item, scale, "NLL (nats per image)", "images seen")
        dataset = self.context.session.registry.datasets.get(self.dataset_box.currentData() or "")
        title = f"NLL on {dataset.title}" if dataset is not None else "NLL"
        item.setTitle(title, color=theme.TEXT, size=f"{theme.point_size(scale):.0f}pt")
        size = f"{theme.point_size(scale, 0.9):.0f}pt"
        self.legend.setLabelTextSize(size)
        for _, label in self.legend.items:  # the entries made before
            label.setText(label.text, size=size, color=theme.TEXT)
        self.legend.updateSize()

    # -- the form ------------------------------------------------------------------------------------------
    def _fill_models(self) -> None:
        self.model_box.blockSignals(True)
        self.model_box.clear()
        for name, spec in sorted(self.context.session.registry.models.items(), key=lambda kv: kv[1].title.lower()):
            self.model_box.addItem(f"{spec.title} ({name})", name)
            self.model_box.setItemData(self.model_box.count() - 1, spec.description, 3)  # tooltip
        self.model_box.blockSignals(False)

    def _on_model_changed(self, loaded) -> None:
        """Offer the open checkpoint's model and dataset first (the likeliest thing to train)."""
        if self._running:
            return
        if loaded is not None:
            index = self.model_box.findData(loaded.model.spec.name)
            if index >= 0:
                self.model_box.setCurrentIndex(index)
            self._on_model_picked()
            dataset = loaded.info.meta.get("dataset")
            index = self.dataset_box.findData(dataset)
            if index >= 0:
                self.dataset_box.setCurrentIndex(index)
        else:
            self._on_model_picked()
        self._refresh_state()

    def _spec(self):
        name = self.model_box.currentData()
        return self.context.session.registry.models.get(name) if name else None

    def _on_model_picked(self) -> None:
        spec = self._spec()
        session = self.context.session
        self.dataset_box.blockSignals(True)
        self.dataset_box.clear()
        if spec is not None:
            for name in compatible_datasets(session.registry, spec):
                dataset = session.registry.datasets[name]
                self.dataset_box.addItem(f"{dataset.title} ({name})", name)
                self.dataset_box.setItemData(self.dataset_box.count() - 1, dataset.describe(), 3)
        self.dataset_box.blockSignals(False)
        self.ordering_box.clear()
        build = spec is not None and spec.orderings == "build"
        if build:
            for name in session.registry.orderings:
                self.ordering_box.addItem(name, name)
        self.ordering_box.setEnabled(build)
        if not build:
            self.ordering_box.addItem("fixed by the model" if spec is None or spec.orderings == "fixed"
                                      else "any, given at run time", None)
        self._fill_hparams()

    def _fill_hparams(self) -> None:
        spec = self._spec()
        if spec is None:
            self.hparams.setText("")
        else:
            hparams = dict(spec.default_hparams)
            if self.size_box.currentIndex() == 1:
                hparams.update(spec.tiny_hparams)
            self.hparams.setText(json.dumps(hparams))
        self._refresh_state()

    def _refresh_state(self) -> None:
        """Enable Train only for a plan that can run, and say why not otherwise (when on screen: looking for
        a dataset's files takes a moment, which the window's start need not wait for)."""
        if not self.isVisible():
            self._stale = True
            return
        self._stale = False
        spec, loaded = self._spec(), self.context.loaded
        same = (spec is not None and loaded is not None and loaded.model.spec.name == spec.name
                and loaded.info.meta.get("dataset") == self.dataset_box.currentData())
        self.continue_box.setEnabled(same and not self._running)
        if not same:
            self.continue_box.setChecked(False)
        for widget in (self.hparams, self.size_box):
            widget.setEnabled(not self.continue_box.isChecked() and not self._running)
        for widget in (self.model_box, self.dataset_box, self.epochs, self.minutes, self.batch, self.lr, self.measure):
            widget.setEnabled(not self._running)  # the form shows what the running plan is
        self.ordering_box.setEnabled(not self._running and spec is not None and spec.orderings == "build")
        problem = self._problem()
        self.train_button.setEnabled(problem is None and not self._running)
        if not self._running:
            self.state.setText(problem or self._destination_text())
        self.set_scale(self._scale)

    def _problem(self) -> str | None:
        if self._spec() is None:
            return "No model to train."
        dataset = self.dataset_box.currentData()
        if not dataset:
            return "No dataset here holds the kind of data this model takes."
        if not self._has_data(dataset):
            return f"The data of {dataset} is not on this machine: {download_command(dataset)}"
        try:
            # The same checks as the run's: a typo or an impossible size disables Train, with the reason.
            self._spec().check_hparams(parse_hparams(self.hparams.text()))
        except ARExplorerError as exc:
            return str(exc)
        return None

    def _has_data(self, dataset: str) -> bool:
        if dataset not in self._data_present:
            self._data_present[dataset] = self.context.session.has_data(dataset)
        return self._data_present[dataset]

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        if self._stale:
            self._data_present.clear()  # data may have been downloaded meanwhile
            self._refresh_state()

    def _destination_text(self) -> str:
        from app.core.checkpoints import user_checkpoint_dir

        return (f"The best checkpoint by validation NLL goes to {self.output_dir or user_checkpoint_dir()} and joins the checkpoint list; "
                "shipped checkpoints are never written over.")

    def make_plan(self) -> TrainPlan:
        """The plan the form describes (raises :class:`ARExplorerError` with the reason when it cannot run)."""
        from app.core.checkpoints import user_checkpoint_dir

        problem = self._problem()
        if problem is not None:
            raise ARExplorerError(problem)
        spec = self._spec()
        dataset = self.dataset_box.currentData()
        ordering = self.ordering_box.currentData() if spec.orderings == "build" else None
        loaded = self.context.loaded if self.continue_box.isChecked() else None
        start_model = copy.deepcopy(loaded.model) if loaded is not None else None  # the app's copy stays as it is
        folder = self.output_dir or user_checkpoint_dir()
        taken = [info.name for info in self.context.checkpoints()]  # shipped ones included: a name of its own
        out = output_path(folder, output_stem(spec.name, dataset, ordering, loaded and loaded.name), taken)
        return TrainPlan(spec.name, dataset, parse_hparams(self.hparams.text()), out, ordering,
                         float(self.epochs.value()), int(self.batch.value()), float(self.lr.value()),
                         float(self.minutes.value()), loaded and loaded.name, start_model, self.measure.isChecked())

    # -- running -------------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._running:
            return
        try:
            plan = self.make_plan()
        except ARExplorerError as exc:
            self.state.setText(str(exc))
            return
        session = self.context.session
        self.plan, self.record, self._shown = plan, RunRecord(), 0
        record = self.record
        self.task.start(lambda stop: run_plan(session, plan, record, stop))
        self._running = True
        self.train_curve.setData([], [])
        self.valid_curve.setData([], [])
        self.progress.setValue(0)
        self.result.setText("")
        self.open_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.state.setText(f"Training {session.registry.models[plan.model].title} on {plan.dataset} on "
                           f"{self.context.device_text()} → {plan.out.name}")
        self._refresh_state()
        self.timer.start()

    def stop(self) -> None:
        self.task.cancel()
        self.stop_button.setEnabled(False)

    def _poll(self) -> None:
        record, plan = self.record, self.plan
        if record is None or plan is None:
            return
        events = record.events
        if len(events) != self._shown:
            self._shown = len(events)
            steps = [e for e in events if e.kind == "step" and e.train_nll is not None]
            evals = [e for e in events if e.kind == "eval" and e.valid_nll is not None and math.isfinite(e.valid_nll)]
            self.train_curve.setData([e.images_seen for e in steps], [e.train_nll for e in steps])
            self.valid_curve.setData([e.images_seen for e in evals], [e.valid_nll for e in evals])
            last = events[-1]
            fraction = max(last.fraction, min(1.0, last.elapsed_s / (60.0 * plan.minutes)) if plan.minutes else 0.0)
            self.progress.setValue(int(1000 * fraction))
            dims = int(np.prod(self.context.session.registry.datasets[plan.dataset].shape))
            self.figures.setText(describe_event(last, dims))
        if record.phase not in ("training", "done") and self._running:
            self.state.setText(f"{record.phase[0].upper()}{record.phase[1:]}…")

    def _on_done(self, result: JobResult) -> None:
        self._poll()
        self.timer.stop()
        self._running = False
        self.stop_button.setEnabled(False)
        record, plan = self.record, self.plan
        last = result.value
        written = record is not None and record.out is not None and record.out.exists()
        parts = []
        if last is not None:
            parts.append("Stopped" if last.kind == "stopped" else "Done")
            if last.message:
                parts[-1] += f" ({last.message})"
            if last.best_valid_nll is not None and math.isfinite(last.best_valid_nll):
                parts.append(f"best validation NLL {last.best_valid_nll:.2f} nats per image on {VALID_IMAGES:,} "
                             f"validation images of {plan.dataset}")
        if record is not None and record.test is not None:
            t = record.test
            parts.append(f"test NLL {t['nll_nats']:.2f} ± {t['nll_nats_stderr']:.2f} nats per image "
                         f"({t['bits_per_dim']:.4f} bits/dim) on {int(t.get('num_images', 0)):,} test images of "
                         f"{t.get('dataset', plan.dataset)}")
        parts.append(f"checkpoint: {record.out}" if written else "no checkpoint was written (no validation yet)")
        self.result.setText(" · ".join(parts))
        self.open_button.setEnabled(written)
        if written:
            self.context.checkpoints(refresh=True)
        self._refresh_state()

    def _on_failed(self, tag: str, message: str, details: str) -> None:
        self.timer.stop()
        self._running = False
        self.stop_button.setEnabled(False)
        self.result.setText(f"Training failed: {message}")
        self.context.notify(f"training failed: {message}", "error", details, source="train")
        self._refresh_state()

    def open_result(self) -> None:
        if self.record is not None and self.record.out is not None and self.record.out.exists():
            self.context.load(str(self.record.out))

    # -- lifecycle -----------------------------------------------------------------------------------------
    def default_action(self) -> None:
        """What ``--screenshot --view train`` shows: a tiny version of the open model training for a while, into
        a temporary folder (a screenshot leaves no checkpoint in the user's list)."""
        self.output_dir = Path(tempfile.mkdtemp(prefix="ar-explorer-train-"))
        self.size_box.setCurrentIndex(1)
        self.minutes.setValue(0.5)
        if self._problem() is not None:  # the open model's data is not here: the first dataset that is
            for i in range(self.dataset_box.count()):
                if self._has_data(self.dataset_box.itemData(i)):
                    self.dataset_box.setCurrentIndex(i)
                    break
        self.start()


__all__ = ["QtTrainView"]
