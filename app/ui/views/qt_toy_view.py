"""The 1-D / 2-D demos: train a toy model live and watch its density take the shape of the data.

1-D (``toy-1d``): a histogram or a discretized logistic mixture over 100 values, drawn over the data's
histogram, with the band of values that training never shows shaded: the histogram's mass there drains away
as it trains (and is exactly zero when fitted by counting), while the mixture keeps some. 2-D (``toy-2d``):
p(x1) p(x2 | x1) or the product of marginals, as a density image beside the data's. The model trains on a
worker thread (:mod:`app.core.toy_demos`, Qt-free). The demos are the registry's (hook ``ar_explorer_demos``), so
a plugin's demo appears beside the built-in ones; a timer repaints the latest frame at display rate.
"""

from __future__ import annotations

import math
import threading

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.core.toy_demos import (
    DemoData,
    DemoFrame,
    DemoSpec,
    build_model,
    count_frame,
    frame,
    load_demo_data,
    train_frames,
)
from app.ui import theme
from app.ui.context import AppContext
from app.ui.views.qt_toy_plots import QtDensityImages, QtDensityPlot1D, QtNllCurves
from app.ui.views.worker_owner import WorkerOwner
from app.ui.workers import JobResult, JobWorker

REPAINT_MS = 33  # 30 Hz
FRAME_EVERY = 5  # training steps between frames


def nll_text(nats: float | None, dims: int) -> str:
    """``4.95 nats (7.14 bits/dim)``, or the infinite case spelled out."""
    if nats is None or math.isnan(nats):
        return "—"
    if math.isinf(nats):
        return "∞ nats (a value has probability 0)"
    return f"{nats:.2f} nats ({nats / (dims * math.log(2)):.2f} bits/dim)"


class QtToyView(WorkerOwner, QWidget):
    """The demos tab. ``frames`` holds every frame of the current run; ``frame`` the one on screen."""

    def __init__(self, context: AppContext, parent=None) -> None:
        super().__init__(parent)
        self.context = context
        self.worker = JobWorker()
        self.worker.done.connect(self._on_done)
        self.worker.failed.connect(self._on_failed)
        self.frames: list[DemoFrame] = []
        self.frame: DemoFrame | None = None
        self.data: DemoData | None = None
        self._stop = threading.Event()
        self._build()
        self.timer = QTimer(self)
        self.timer.setInterval(REPAINT_MS)
        self.timer.timeout.connect(self._repaint)
        self.own_timers(self.timer)
        self.own_workers(self.worker)
        self.set_scale(context.scale)
        if self.demos:
            self.choose(self.demos[0].name)
        context.model_changed.connect(self._on_model_changed)
        self._on_model_changed(context.loaded)

    def _on_model_changed(self, loaded) -> None:
        """A checkpoint of one of the demos' models opens that demo with the checkpoint's own fit on screen."""
        if loaded is None or self.running() or loaded.dataset is None:
            return
        model_name = getattr(loaded.model.spec, "name", None)
        match = next((d for d in self.demos if d.model == model_name and d.dataset == loaded.dataset.name), None)
        if match is None or not self.choose(match.name):
            return
        try:
            shipped = frame(loaded.model, self.data, 0, 0, 0.0, True, fitted_by=f"the checkpoint {loaded.name}")
        except Exception as exc:  # noqa: BLE001 - a plugin's model may fail to evaluate; the demo stays usable
            self.context.report(exc, f"cannot draw the density of {loaded.name}")
            return
        self.frames.append(shipped)
        self._repaint()

    # -- building ------------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.density_1d = QtDensityPlot1D()
        self.density_2d = QtDensityImages()
        self.densities = QStackedWidget()
        self.densities.addWidget(self.density_1d)
        self.densities.addWidget(self.density_2d)
        self.nll_curves = QtNllCurves()
        self.density_1d.setAccessibleName("1-D density")
        self.density_2d.setAccessibleName("2-D densities")
        self.nll_curves.setAccessibleName("NLL curves")
        self.heading = QLabel()
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.densities)
        splitter.addWidget(self.nll_curves)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        middle = QVBoxLayout()
        middle.addWidget(self.heading)
        middle.addWidget(splitter, 1)
        middle.addWidget(self.status)
        layout = QHBoxLayout(self)
        layout.addLayout(middle, 1)
        layout.addWidget(self._controls())

    def _controls(self) -> QWidget:
        self.demo_box = QComboBox()
        for item in self.demos:
            self.demo_box.addItem(item.title, item.name)
        self.demo_box.currentIndexChanged.connect(lambda _: self.choose(self.demo_box.currentData()))
        self.steps = QSpinBox()
        self.steps.setRange(1, 100_000)
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(4)
        self.lr.setRange(0.0001, 1.0)
        self.lr.setSingleStep(0.005)
        self.train_button = QPushButton("Train")
        self.train_button.setToolTip("Train from a fresh start, showing the density as it learns")
        self.train_button.clicked.connect(self.train)
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(self.stop)
        self.count_button = QPushButton("Fit by counting")
        self.count_button.setToolTip("The histogram's exact maximum-likelihood fit: the training frequencies")
        self.count_button.clicked.connect(self.fit_by_counting)
        self.pseudo_count = QDoubleSpinBox()
        self.pseudo_count.setRange(0.0, 100.0)
        self.pseudo_count.setToolTip("Laplace smoothing: added to every count (0 = none)")
        self.description = QLabel()
        self.description.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Demo", self.demo_box)
        form.addRow("Steps", self.steps)
        form.addRow("Learning rate", self.lr)
        form.addRow(self.train_button, self.stop_button)
        form.addRow("Pseudo-count", self.pseudo_count)
        form.addRow(self.count_button)
        box = QGroupBox("1-D / 2-D demos")
        inner = QVBoxLayout(box)
        inner.addLayout(form)
        inner.addWidget(self.description)
        inner.addStretch(1)
        self.controls = box
        return box

    def set_scale(self, scale: float) -> None:
        for plot in (self.density_1d, self.density_2d, self.nll_curves):
            plot.set_scale(scale)
        self.heading.setStyleSheet(theme.heading_css(scale, 1.1))
        self.controls.setMinimumWidth(int(300 * scale))
        self.controls.setMaximumWidth(int(420 * scale))  # the plots keep the rest of the width

    # -- choosing a demo -----------------------------------------------------------------------------------
    @property
    def demos(self) -> list[DemoSpec]:
        """Every demo the plugins register, in their order."""
        return list(self.context.session.registry.demos.values())

    @property
    def demo(self) -> DemoSpec:
        return next(d for d in self.demos if d.name == self.demo_box.currentData())

    def choose(self, name: str) -> bool:
        """Show the demo ``name``: its data, its defaults; any run in progress stops."""
        index = self.demo_box.findData(name)
        if index < 0:
            self.context.notify(f"no demo named {name!r}", "warning")
            return False
        self.stop()
        if self.demo_box.currentIndex() != index:
            self.demo_box.setCurrentIndex(index)  # re-enters choose() through the signal
            return True
        registry = self.context.session.registry
        try:
            self.data = load_demo_data(registry.dataset(self.demo.dataset), self.context.session.data_dir,
                                       self.demo.unseen_band)
            spec = registry.model(self.demo.model)
        except Exception as exc:  # noqa: BLE001 - a missing plugin or dataset becomes a notice
            self.context.report(exc, f"cannot open the demo {self.demo.title}")
            return False
        self.steps.setValue(self.demo.steps)
        self.lr.setValue(self.demo.lr)
        countable = self.demo.fit_counts is not None
        self.count_button.setEnabled(countable)
        self.pseudo_count.setEnabled(countable)
        self.description.setText(f"{spec.description}\n\nData: {self.data.dataset.description}")
        self.heading.setText(f"{spec.title} on {self.data.dataset.title}")
        self._show_data()
        return True

    def _show_data(self) -> None:
        self.frames, self.frame = [], None
        self.nll_curves.clear_history()
        data = self.data
        if data.num_dims == 1:
            self.density_1d.show_data(data.frequencies("train"), data.frequencies("test"), data.band)
            self.densities.setCurrentWidget(self.density_1d)
        else:
            self.density_2d.show_data(data.frequencies("train"))
            self.densities.setCurrentWidget(self.density_2d)
        self.status.setText("Press Train to watch the model learn the data.")

    # -- runs ----------------------------------------------------------------------------------------------
    def running(self) -> bool:
        return not self.worker.idle()

    def train(self) -> None:
        """Train a fresh model of the chosen demo on the worker thread."""
        steps, lr = self.steps.value(), self.lr.value()
        self._submit(lambda: self._training_job(steps, lr), "train")

    def fit_by_counting(self) -> None:
        """Fit the histogram by counting (maximum likelihood, plus the pseudo-count if any)."""
        if self.demo.fit_counts is None:
            self.context.notify("only a histogram is fitted by counting", "warning")
            return
        pseudo_count = self.pseudo_count.value()
        self._submit(lambda: self._counting_job(pseudo_count), "count")

    def _submit(self, make_job, tag: str) -> None:
        """Stop any run, clear the plots, and run ``make_job()`` (made now, so it writes to the new frames)."""
        if self.data is None:
            return
        self.stop()
        self._show_data()
        self._stop = threading.Event()
        self.worker.submit(make_job(), tag)
        self.timer.start()

    def _training_job(self, steps: int, lr: float):
        spec = self.context.session.registry.model(self.demo.model)
        data, batch, stop, sink = self.data, self.demo.batch_size, self._stop, self.frames

        def job() -> int:
            model = build_model(spec, data)
            for item in train_frames(model, data, steps, lr, batch, FRAME_EVERY, should_stop=stop.is_set):
                sink.append(item)  # list.append is atomic: the view reads the latest at display rate
            return len(sink)

        return job

    def _counting_job(self, pseudo_count: float):
        spec = self.context.session.registry.model(self.demo.model)
        demo, data, sink = self.demo, self.data, self.frames

        def job() -> int:
            sink.append(count_frame(demo, build_model(spec, data), data, pseudo_count))
            return len(sink)

        return job

    def stop(self) -> None:
        """Stop a run between two steps and wait for it; what it drew stays on screen."""
        self._stop.set()
        self.worker.drain()
        self.timer.stop()
        self._repaint()

    def shutdown(self) -> None:
        self._stop.set()  # a new event per run: set by name, then the owned timer and worker
        super().shutdown()

    def default_action(self) -> None:
        """What ``--screenshot --view toy`` shows: the checkpoint's own fit when one of the demos' checkpoints is
        open, else the demo training live."""
        if self.frame is not None and self.frame.fitted_by.startswith("the checkpoint"):
            return
        self.train()

    def _on_done(self, _result: JobResult) -> None:
        self._repaint()
        self.timer.stop()

    def _on_failed(self, _tag: str, message: str, details: str) -> None:
        self.timer.stop()
        self.context.notify(f"the demo stopped: {message}", "error", details, source="1-D / 2-D demos")

    # -- painting ------------------------------------------------------------------------------------------
    def _repaint(self) -> None:
        frames = self.frames
        if not frames or frames[-1] is self.frame:
            return
        self.frame = frames[-1]
        if self.data.num_dims == 1:
            self.density_1d.show_model(self.frame.density)
        else:
            self.density_2d.show_model(self.frame.density)
        history = list(frames)
        self.nll_curves.show_history(
            [f.step for f in history],
            {"train": [f.train_nll for f in history], "test": [f.test_nll for f in history],
             "band": [f.band_nll for f in history]},
        )
        self.status.setText(self._status_text(self.frame))

    def _status_text(self, frame: DemoFrame) -> str:
        data, dims = self.data, self.data.num_dims
        name = data.dataset.name
        if frame.fitted_by.startswith("counting"):
            head = f"fitted by {frame.fitted_by}"
        elif frame.fitted_by.startswith("the checkpoint"):
            head = f"{frame.fitted_by}; press Train to watch a fresh model learn"
        else:
            head = f"{'done' if frame.done else 'training'}: step {frame.step} of {frame.total_steps}, {frame.elapsed_s:.1f} s"
        parts = [head, f"test NLL on {name} (test split): {nll_text(frame.test_nll, dims)}"]
        if frame.band_nll is not None:
            parts.append(f"on the unseen band {data.band[0]}..{data.band[1] - 1}: {nll_text(frame.band_nll, dims)}")
        parts.append(f"training NLL: {nll_text(frame.train_nll, dims)}")
        return "  ·  ".join(parts)


__all__ = ["QtToyView", "nll_text"]
