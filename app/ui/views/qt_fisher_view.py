"""Fisher scores: pick two images and see three interpolations between them, in pixel space (a cross-fade), in
the model's mean activations, and in its Fisher scores, each row with the mean NLL of its interior points under
the model, and the nearest test images of each point (drawn at random from the whole test split, so that
every digit is among them).

The Fisher space of a checkpoint (the decoders and the reference embeddings) is made once and stored beside it
(:mod:`app.core.fisher`); where there is none yet, the view makes one in the background, with progress, from a
number of training images the user chooses. Switching checkpoints clears the strips.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import ImageError
from app.core.fisher import FisherSpace
from app.core.images import load_image
from app.core.sampling import sample
from app.core.session import LoadedModel
from app.core.session_file import FisherPair, SessionImage, SessionState, fit_image
from app.ui import theme
from app.ui.context import AppContext, SentImage
from app.ui.example_images import example_images, test_images
from app.ui.formatting import loaded_data_description
from app.ui.progress_task import ProgressTask
from app.ui.qt_canvas import QtDrawingCanvas
from app.ui.views.fisher_jobs import (
    default_pair,
    digit_text,
    interpolation_job,
    load_space,
    making_events,
    space_target,
)
from app.ui.views.qt_fisher_strips import QtFisherStrips
from app.ui.views.worker_owner import WorkerOwner
from app.ui.workers import JobResult, JobWorker

REPAINT_MS = 100
CHANGE_DELAY_MS = 300


def _user_dir() -> Path:
    from app.core.checkpoints import user_checkpoint_dir

    return user_checkpoint_dir()


class QtImageSlot(QWidget):
    """One end of the interpolation: a small canvas and where its image comes from."""

    def __init__(self, title: str, parent=None) -> None:
        super().__init__(parent)
        self.title = title
        self.source = "nothing yet"
        self.canvas = QtDrawingCanvas()
        self.canvas.set_base_min_size(90)  # two of them stack, so each may be small
        self.canvas.setAccessibleName(f"image {title}")
        self.caption = QLabel(f"{title}: draw, or pick one")
        self.caption.setWordWrap(True)
        self.buttons: dict[str, QPushButton] = {}
        row = QHBoxLayout()
        for name, text in (("test", "Test image"), ("load", "Load…"), ("sample", "Sample"), ("clear", "Clear")):
            button = QPushButton(text)
            row.addWidget(button)
            self.buttons[name] = button
        self.buttons["clear"].clicked.connect(lambda: self.set_image(np.zeros_like(self.canvas.values), "a blank canvas"))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.caption)
        layout.addWidget(self.canvas, 1)
        layout.addLayout(row)

    def set_image(self, values: np.ndarray, source: str) -> None:
        self.source = source
        self.caption.setText(f"{self.title}: {source}")
        self.canvas.set_values(values)

    @property
    def empty(self) -> bool:
        return not self.canvas.values.any()


class QtFisherView(WorkerOwner, QWidget):
    """The Fisher tab. ``space`` is the Fisher space of the current checkpoint (None until there is one)."""

    def __init__(self, context: AppContext, parent=None) -> None:
        super().__init__(parent)
        self.context = context
        self.space: FisherSpace | None = None
        self.result = None
        self._latest_run = -1
        self._last_received: QtImageSlot | None = None
        self._rng = np.random.default_rng()
        self.jobs = JobWorker()
        self.builder_worker = JobWorker()
        self.builder = ProgressTask(self.builder_worker, "build")
        self._making = False
        self.timer = QTimer(self)
        self.timer.setInterval(REPAINT_MS)
        self.timer.timeout.connect(self._show_progress)
        self.change_timer = QTimer(self)
        self.change_timer.setSingleShot(True)
        self.change_timer.setInterval(CHANGE_DELAY_MS)
        self.change_timer.timeout.connect(self.run)
        self.own_timers(self.timer, on_quiesce=False)
        self.own_timers(self.change_timer)
        self.own_tasks(self.builder)
        self.own_workers(self.jobs)
        self.own_workers(self.builder_worker, timeout_s=30.0)  # a space being built stops between its steps
        self._build()
        self._connect()
        context.register_quiescer(self.quiesce)
        context.model_changed.connect(self._on_model_changed)
        self._on_model_changed(context.loaded)

    # -- building ------------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.slot_a = QtImageSlot("A")
        self.slot_b = QtImageSlot("B")
        self.strips = QtFisherStrips()
        self.strips.setAccessibleName("interpolation strips")
        self.steps = QSpinBox()
        self.steps.setRange(2, 16)
        self.steps.setValue(8)
        self.steps.setSuffix(" steps")
        self.run_button = QPushButton("Interpolate")
        self.run_button.clicked.connect(self.run)
        self.nearest = QLabel()
        self.space_label = QLabel()
        self.status = QLabel()
        for label in (self.nearest, self.space_label, self.status):
            label.setWordWrap(True)
        self.images = QSpinBox()
        self.images.setRange(100, 60000)
        self.images.setSingleStep(500)
        self.images.setSuffix(" training images")
        self.make_button = QPushButton("Make the Fisher space")
        self.make_button.clicked.connect(self.make_space)
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(self.builder.cancel)
        self.progress = QProgressBar()
        make_row = QHBoxLayout()
        for widget in (self.images, self.make_button, self.stop_button):
            make_row.addWidget(widget)
        run_row = QHBoxLayout()
        run_row.addWidget(self.steps)
        run_row.addWidget(self.run_button)
        run_row.addStretch(1)
        grid = QGridLayout(self)
        grid.addWidget(self.slot_a, 0, 0)
        grid.addWidget(self.slot_b, 1, 0)
        grid.addWidget(self.strips, 0, 1, 2, 1)
        grid.addLayout(run_row, 2, 0)
        grid.addWidget(self.nearest, 2, 1)
        grid.addWidget(self.space_label, 3, 0, 1, 2)
        grid.addLayout(make_row, 4, 0)
        grid.addWidget(self.progress, 4, 1)
        grid.addWidget(self.status, 5, 0, 1, 2)
        grid.setColumnStretch(0, 1)
        grid.setColumnStretch(1, 4)
        grid.setRowStretch(0, 1)
        grid.setRowStretch(1, 1)

    def _connect(self) -> None:
        for slot in (self.slot_a, self.slot_b):
            slot.buttons["test"].clicked.connect(lambda _=False, s=slot: self.load_test_image(s))
            slot.buttons["load"].clicked.connect(lambda _=False, s=slot: self.choose_file(s))
            slot.buttons["sample"].clicked.connect(lambda _=False, s=slot: self.load_sample(s))
            slot.canvas.stroke_finished.connect(self.change_timer.start)
        self.steps.valueChanged.connect(self.change_timer.start)
        self.jobs.done.connect(self._on_done)
        self.jobs.failed.connect(self._on_failed)
        self.builder_worker.done.connect(self._on_built)
        self.builder_worker.failed.connect(self._on_failed)

    def set_scale(self, scale: float) -> None:
        self.strips.set_scale(scale)

    # -- the model and its space ------------------------------------------------------------------------------
    @property
    def loaded(self) -> LoadedModel | None:
        return self.context.loaded

    def _on_model_changed(self, loaded: LoadedModel | None) -> None:
        self.space, self.result = None, None
        self._latest_run = -1  # a run for the previous checkpoint may still answer: it is dropped
        self.nearest.setText("")
        self.strips.reset("The strips were cleared: they belonged to the previous checkpoint."
                          if loaded is not None else "")
        self.setEnabled(loaded is not None)
        if loaded is None:
            self.space_label.setText("Open a checkpoint to interpolate with its Fisher scores.")
            return
        model = loaded.model
        for slot in (self.slot_a, self.slot_b):
            if (tuple(slot.canvas.values.shape), slot.canvas.num_values) != (tuple(model.shape), model.num_values):
                slot.canvas.set_format(tuple(model.shape), model.num_values)
        self.images.setValue(20000 if model.device.type == "cuda" else 2000)
        has_test = test_images(self.context.session, loaded, limit=1) is not None
        for slot in (self.slot_a, self.slot_b):
            slot.buttons["test"].setToolTip("A random test image" if has_test else "synthetic digits (no test data here)")
        if model.config.condition is not None:
            self.space_label.setText(f"{model.spec.title} here is conditional; Fisher scores use unconditional models.")
            self._set_making(self._making, available=False)
            return
        self.space_label.setText("looking for this checkpoint's Fisher space…")
        user_dir = _user_dir()
        self.jobs.submit(lambda: load_space(loaded, user_dir), "space")

    def _set_making(self, running: bool, available: bool = True) -> None:
        self._making = running  # owned by the GUI thread: the builder's own flag drops before _on_built runs
        self.make_button.setEnabled(available and not running)
        self.stop_button.setEnabled(running)
        self.images.setEnabled(available and not running)

    def _describe_space(self, space: FisherSpace) -> str:
        meta, settings = space.meta, space.settings
        count = meta.get("num_parameters", "?")
        components = f", {settings.components} principal components" if settings.components else ""
        return (f"Fisher space of {meta.get('checkpoint', '?')}: scores over {count:,} parameters "
                f"({settings.normalisation} normalisation) projected to {settings.dim:,} numbers{components}; "
                f"decoders trained on {meta.get('num_train_images', '?'):,} training images of "
                f"{meta.get('dataset_title', meta.get('dataset', '?'))} (held-out reconstruction "
                f"{meta.get('fisher_decoder_best_valid_nats', float('nan')):.1f} nats per image from Fisher "
                f"scores, {meta.get('activation_decoder_best_valid_nats', float('nan')):.1f} from activations); "
                f"nearest images among {space.reference_description}.")

    def make_space(self) -> None:
        """Embed training images, train both decoders and store the space, on a worker, with progress."""
        loaded = self.loaded
        if loaded is None or self.builder.running or loaded.dataset is None:
            if loaded is not None and loaded.dataset is None:
                self.status.setText(f"{loaded.name} names no known dataset to make a Fisher space from")
            return
        weights = loaded.info.weights
        target = space_target(weights, _user_dir(), os.access(weights.parent, os.W_OK))
        self.builder.start(making_events(self.context.session, loaded, self.images.value(), target))
        self._set_making(True)
        self.timer.start()

    def _show_progress(self) -> None:
        if not self.builder.running:
            # The run has ended: its result (done or stopped) is reported by _on_built, never overwritten here.
            self.timer.stop()
            return
        event = self.builder.latest
        if event is not None:
            self.progress.setRange(0, max(event.total, 1))
            self.progress.setValue(event.done)
            self.status.setText(f"making the Fisher space: {event.stage} {event.done} of {event.total} "
                                f"({event.message})")
        if not self.builder.running:
            self.timer.stop()

    def _on_built(self, result: JobResult) -> None:
        self.timer.stop()
        self._set_making(False)
        event = result.value
        if event is None or event.stage != "done":
            self.status.setText("stopped: no Fisher space was written")
            return
        if self.loaded is not None:
            self.space = event.result
            self.space_label.setText(self._describe_space(self.space))
            self.status.setText("the Fisher space is stored beside the checkpoint")
            self.run()

    # -- images in -----------------------------------------------------------------------------------------
    def load_test_image(self, slot: QtImageSlot, index: int | None = None) -> None:
        """A test image (``index`` in the test split, or a random one); without the data on this machine, one of
        the Fisher space's reference test images; without either, a synthetic digit."""
        if self.loaded is None:
            return
        found = test_images(self.context.session, self.loaded)
        if found is not None and len(found.images):
            i = int(self._rng.integers(len(found.images))) if index is None else int(index)
            digit = f" ({digit_text(int(found.labels[i]))})" if found.labels is not None else ""
            slot.set_image(found.images[i], f"test image #{i}{digit}")
        elif self.space is not None and len(self.space.reference_images):
            space = self.space
            i = int(self._rng.integers(len(space.reference_images))) if index is None else int(index)
            self._set_reference_image(slot, i)
        else:
            examples = example_images(self.context.session, self.loaded, 1, int(self._rng.integers(1000)))
            slot.set_image(examples.images[0], examples.source)
        self.change_timer.start()

    def _set_reference_image(self, slot: QtImageSlot, i: int) -> None:
        """Reference image ``i`` of the Fisher space, named by its test index and its digit."""
        space = self.space
        test_index = int(space.reference_indices[i])
        digit = digit_text(int(space.reference_labels[i]))
        name = f"test image #{test_index}" if test_index >= 0 else f"reference image {i}"
        slot.set_image(space.reference_images[i], f"{name}{f' ({digit})' if digit else ''}")

    def load_default_pair(self) -> bool:
        """Two test images of different digits from the Fisher space's reference set (a 2 and a 9 where it can)."""
        space = self.space
        if space is None or len(space.reference_images) < 2:
            return False
        a, b = default_pair(space.reference_labels)
        self._set_reference_image(self.slot_a, a)
        self._set_reference_image(self.slot_b, b)
        self.change_timer.start()
        return True

    def load_file(self, slot: QtImageSlot, path: str | Path) -> bool:
        model = self.loaded.model if self.loaded is not None else None
        if model is None:
            return False
        try:
            converted = load_image(path, tuple(model.shape), model.num_values)
        except ImageError as exc:
            self.status.setText(f"<span style='color:{theme.ERROR}'>{exc}</span>")
            return False
        slot.set_image(converted.values, Path(path).name)
        self.change_timer.start()
        return True

    def choose_file(self, slot: QtImageSlot) -> None:
        path, _ = QFileDialog.getOpenFileName(self, f"Image {slot.title}", "",
                                              "Images (*.png *.jpg *.jpeg *.bmp *.gif *.tif *.tiff *.webp);;All (*)")
        if path:
            self.load_file(slot, path)

    def load_sample(self, slot: QtImageSlot) -> None:
        loaded = self.loaded
        if loaded is None or loaded.model.config.condition is not None:
            return
        seed = int(self._rng.integers(100000))
        model = loaded.model
        self.jobs.submit(lambda: (slot.title, seed, sample(model, 1, seed=seed)[0].cpu().numpy().astype(np.uint8)),
                         "sample")

    def receive_image(self, sent: SentImage) -> None:
        """An image from another view goes to an empty end, else to the end that did not receive the last one."""
        if self.loaded is None or tuple(sent.values.shape) != tuple(self.slot_a.canvas.values.shape):
            self.context.notify("that image does not fit the current model", "warning")
            return
        if self.slot_a.empty or self.slot_b.empty:
            slot = self.slot_a if self.slot_a.empty else self.slot_b
        else:
            slot = self.slot_a if self._last_received is self.slot_b else self.slot_b
        self._last_received = slot
        slot.set_image(sent.values, sent.label)
        self.change_timer.start()

    # -- interpolating -------------------------------------------------------------------------------------
    def run(self) -> bool:
        loaded, space = self.loaded, self.space
        if loaded is None:
            return False
        if space is None:
            if not self.status.text().startswith("stopped"):  # keep the outcome of a stopped making visible
                self.status.setText("There is no Fisher space for this checkpoint yet: make it first.")
            return False
        a, b = self.slot_a.canvas.values.copy(), self.slot_b.canvas.values.copy()
        steps = self.steps.value()
        sources = (self.slot_a.source, self.slot_b.source)
        self.status.setText("interpolating, and scoring each row under the model…")
        self._latest_run = self.jobs.submit(lambda: interpolation_job(loaded, space, a, b, steps, sources),
                                            "interpolate")
        return True

    def _show_result(self, result, sources: tuple[str, str]) -> None:
        self.result = result
        loaded = self.loaded
        judge = f"{loaded.title} ({loaded_data_description(loaded)})"
        self.strips.show_result(result, loaded.model.num_values, judge)
        if result.nearest.size:
            middle = len(result.alphas) // 2
            index, distance = int(result.nearest[middle, 0]), float(result.nearest_distances[middle, 0])
            test_index = int(self.space.reference_indices[index]) if self.space is not None else -1
            digit = digit_text(int(result.nearest_labels[middle, 0]))
            name = f"test image #{test_index}" if test_index >= 0 else f"reference image {index}"
            self.nearest.setText(f"Nearest to the point at α = {result.alphas[middle]:.2f}: {name}"
                                 f"{f' ({digit})' if digit else ''}, distance {distance:.2f} in the Fisher "
                                 f"space's coordinates, among {self.space.reference_description if self.space else '?'}")
        self.status.setText(f"{sources[0]} → {sources[1]}, {len(result.alphas)} steps")

    # -- jobs ----------------------------------------------------------------------------------------------
    def _on_done(self, result: JobResult) -> None:
        loaded = self.loaded
        if loaded is None:
            return
        if result.tag == "space":
            name, space = result.value
            if name == loaded.name:
                self.space = space
                self.space_label.setText(self._describe_space(space))
                self.make_button.setText("Make it again")
                self._set_making(self._making)  # a making in progress keeps its buttons
                if self.slot_a.empty and self.slot_b.empty:
                    self.load_default_pair()
                self.run()
        elif result.tag == "interpolate":
            name, sources, interpolation = result.value
            if name == loaded.name and result.serial == self._latest_run:  # a newer run is on its way otherwise
                self._show_result(interpolation, sources)
        elif result.tag == "sample":
            title, seed, values = result.value
            slot = self.slot_a if title == "A" else self.slot_b
            slot.set_image(values, f"a sample (seed {seed})")
            self.change_timer.start()

    def _on_failed(self, tag: str, message: str, details: str) -> None:
        if tag == "space":
            self.space = None
            self.strips.reset(f"No strips: this checkpoint has no Fisher space yet ({message}).")
            self.space_label.setText(f"{message}. Or make it here:")
            self._set_making(self._making)
            return
        if tag == "build":
            self._set_making(False)
        self.context.notify(f"{tag}: {message}", "error", details, source="fisher")
        self.status.setText(f"{tag} failed: {message}")

    # -- session files -------------------------------------------------------------------------------------
    def session_state(self) -> dict:
        """The two ends of the interpolation (when one is set) and its number of steps."""
        if self.loaded is None or (self.slot_a.empty and self.slot_b.empty):
            return {}
        k = self.slot_a.canvas.num_values
        a, b = (SessionImage(s.canvas.values.copy(), k, s.source) for s in (self.slot_a, self.slot_b))
        return {"fisher": FisherPair(a, b, self.steps.value())}

    def restore_session(self, state: SessionState) -> list[str]:
        """Put the session's pair in the two slots and interpolate (once there is a Fisher space)."""
        pair = state.fisher
        if pair is None or self.loaded is None:
            return []
        model, notes = self.loaded.model, []
        for slot, image in ((self.slot_a, pair.a), (self.slot_b, pair.b)):
            values, note = fit_image(image, tuple(model.shape), model.num_values)
            if values is None:
                return [f"the Fisher pair was not restored: {note}"]
            slot.set_image(values, image.source or "the session")
            if note:
                notes.append(f"image {slot.title} was {note}")
        self.steps.setValue(pair.steps)
        if self.steps.value() != pair.steps:
            notes.append(f"{pair.steps} steps is outside {self.steps.minimum()}..{self.steps.maximum()}; "
                         f"{self.steps.value()} are used")
        self.change_timer.start()
        return notes

    # -- lifecycle -----------------------------------------------------------------------------------------
    def default_action(self) -> None:
        """What ``--screenshot --view fisher`` shows: two test digits of different classes and their strips."""
        if self.space is None and self.loaded is not None and self.slot_a.empty and self.slot_b.empty:
            return  # the space is still being looked up: when it arrives it brings its default pair and runs
        if not self.load_default_pair():
            self.load_test_image(self.slot_a, 0)
            self.load_test_image(self.slot_b, 1)
        self.run()


__all__ = ["QtFisherView", "QtImageSlot"]
