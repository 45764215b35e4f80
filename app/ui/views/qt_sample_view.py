"""Watch a model sample: a grid of images filling pixel by pixel, and the distribution of the pixel being drawn.

The worker thread iterates :func:`app.core.sampling.sample_steps` and keeps only its latest step; a timer
repaints at display rate. Play, pause, a pixel, a row, to the end, stop; all of it from the keyboard too.
"""

from __future__ import annotations

import math
import time

import numpy as np
from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMenu, QSplitter, QStackedWidget, QVBoxLayout, QWidget

from app.core.digit_reading import CONFIDENT, can_read, read_digits
from app.core.sampling import sample_steps
from app.core.session import LoadedModel
from app.core.session_file import SamplingSettings, SessionState
from app.ui import theme
from app.ui.context import AppContext
from app.ui.export import FigureExporter, figure_at
from app.ui.formatting import position_text, rate_text
from app.ui.qt_distribution_plot import QtDistributionPlot
from app.ui.qt_pixel_view import QtPixelView
from app.ui.rendering import GridLayout, grid_layout, tile_rgb
from app.ui.views.playback import PlaybackMixin
from app.ui.views.qt_sample_controls import QtSampleControls
from app.ui.views.qt_sampler_comparison import COMPARE, QtSamplerComparison, SamplerPair
from app.ui.workers import Frame, SamplingWorker

REPAINT_MS = 25  # 40 Hz: smooth slow motion
FAST_REPAINT_MS = 66  # 15 Hz when running flat out: painting less leaves the CPU (and the GIL) to sampling
MAX_MARKERS = 256


class _CurrentPageStack(QStackedWidget):
    """A stack as small as the page it shows: a plain one takes the largest minimum of all its pages, and the
    two grids side by side would widen the single grid's pane."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.currentChanged.connect(lambda _: self.updateGeometry())

    def minimumSizeHint(self):  # noqa: N802 - Qt's name
        page = self.currentWidget()
        return page.minimumSizeHint().expandedTo(page.minimumSize()) if page is not None else super().minimumSizeHint()

    def sizeHint(self):  # noqa: N802 - Qt's name
        page = self.currentWidget()
        return page.sizeHint() if page is not None else super().sizeHint()


GRID_SHARE = 0.62  # at most, of the width, for the grid when the view first shows (the divider moves)


class QtSampleView(PlaybackMixin, QWidget):
    """The Sample tab. ``worker`` is the running :class:`SamplingWorker` (None before the first run)."""

    def __init__(self, context: AppContext, parent=None) -> None:
        super().__init__(parent)
        self.context = context
        self.worker: SamplingWorker | None = None
        self.frame: Frame | None = None  # the frame on screen
        self.focus = 0  # the image whose distribution is shown for non-binary models
        self.layout_grid: GridLayout | None = None
        self._rate_probe: tuple[float, int] | None = None
        self._rate = float("nan")
        self._pending_run: tuple[str, int] | None = None  # a session's run, started when the tab is shown
        self._build()
        self._clear_digits()
        self._actions = self._build_actions()
        self.timer = QTimer(self)
        self.timer.setInterval(REPAINT_MS)
        self.timer.timeout.connect(self._repaint)
        context.model_changed.connect(self._on_model_changed)
        context.register_quiescer(self.stop)
        self.set_scale(context.scale)
        self._on_model_changed(context.loaded)

    # -- building ------------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.grid = QtPixelView(min_size=180)
        self.grid.setAccessibleName("sample grid")
        self.grid.pixel_clicked.connect(self._on_grid_click)
        self.plot = QtDistributionPlot()
        self.plot.setAccessibleName("distribution plot")
        self.pixel_label = QLabel()
        self.pixel_label.setWordWrap(True)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.digits = QLabel()  # what the digit classifier reads in finished samples
        self.digits.setWordWrap(True)
        self.digits.setAccessibleName("digits read")
        self.controls = QtSampleControls()
        c = self.controls
        c.play_pause.connect(self.play_pause)
        c.step_pixel.connect(lambda: self.step(1))
        c.step_row.connect(self.step_row)
        c.run_to_end.connect(self.run_to_end)
        c.stop.connect(self.stop)
        c.speed_changed.connect(self._on_speed)
        c.settings_changed.connect(self._on_settings_changed)
        c.overlay_toggled.connect(lambda _: self._render(self.frame, force=True))
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.pixel_label)
        right_layout.addWidget(self.plot, 1)
        self.legend = QLabel()
        self.legend.setWordWrap(True)
        right_layout.addWidget(self.legend)
        self.comparison = QtSamplerComparison()
        for grid in self.comparison.grids.values():
            grid.pixel_clicked.connect(self._on_grid_click)
        self.grids = _CurrentPageStack()  # one grid, or naive and cached side by side
        self.grids.addWidget(self.grid)
        self.grids.addWidget(self.comparison)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.grids)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        self.splitter = splitter
        self._user_split = False  # once the divider is dragged, the user's split is kept
        splitter.splitterMoved.connect(self._on_divider_moved)
        splitter.installEventFilter(self)
        middle = QVBoxLayout()
        middle.addWidget(splitter, 1)
        middle.addWidget(self.digits)
        middle.addWidget(self.status)
        layout = QHBoxLayout(self)
        layout.addLayout(middle, 1)
        layout.addWidget(self.controls)

    def _build_actions(self) -> dict[str, QAction]:
        """Keyboard shortcuts, live while this view is shown."""
        spec = {
            "play": ("Play / pause", ["Space"], self.play_pause),
            "step": ("Step one pixel", ["Right", "S"], lambda: self.step(1)),
            "row": ("Step to the end of the row", ["Down", "R"], self.step_row),
            "end": ("Run to the end", ["End", "E"], self.run_to_end),
            "stop": ("Stop", ["Esc"], self.stop),
            "seed": ("New seed", ["N"], self.controls.new_seed),
        }
        actions = {}
        for name, (text, keys, slot) in spec.items():
            action = QAction(text, self)
            action.setShortcuts([QKeySequence(k) for k in keys])
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            action.triggered.connect(slot)
            self.addAction(action)
            actions[name] = action
        return actions

    def set_scale(self, scale: float) -> None:
        self.plot.set_scale(scale)
        self.pixel_label.setStyleSheet(theme.heading_css(scale, 1.0))
        self.controls.setFixedWidth(int(250 * scale))
        self.comparison.set_scale(scale)
        self.legend.setStyleSheet(theme.muted_css(scale, 0.9))
        for button in (self.controls.play_button, self.controls.step_button, self.controls.row_button,
                       self.controls.end_button, self.controls.stop_button):
            button.setMinimumHeight(int(34 * scale))

    # -- the model -----------------------------------------------------------------------------------------
    @property
    def loaded(self) -> LoadedModel | None:
        return self.context.loaded

    def _on_model_changed(self, loaded: LoadedModel | None) -> None:
        self.stop()
        self.frame = None
        self.worker = None
        self.controls.set_model(loaded.model if loaded is not None else None)
        self._clear_digits()
        self.plot.clear_data("")
        if loaded is None:
            self.pixel_label.setText("Open a checkpoint to sample from it.")
            self.status.setText("")
            return
        self._show_blank()
        self.pixel_label.setText("Press Play (Space) to watch the model draw, or step one pixel (Right).")
        self.status.setText("")

    def _show_blank(self) -> None:
        model = self.loaded.model
        c, h, w = model.shape
        n = self.controls.count_value
        self.layout_grid = grid_layout(n, h, w)
        blank = np.zeros((n, c, h, w), dtype=np.uint8)
        rank = self._rank() if self.controls.overlay.isChecked() else None
        rgb = tile_rgb(blank, model.num_values, self.layout_grid, np.zeros((h, w), bool), rank)
        comparing = self.controls.mode_value == COMPARE
        self.grids.setCurrentWidget(self.comparison if comparing else self.grid)
        if comparing:
            self.comparison.set_fast_mode(model.spec.sampler_modes[0])
            self.comparison.show_blank(rgb)
        else:
            self.grid.set_rgb(rgb)
            self.grid.clear_markers()

    def _rank(self) -> np.ndarray:
        return self.loaded.model.resolve_ordering(None).rank

    # -- runs ----------------------------------------------------------------------------------------------
    def _start(self, playing: bool) -> SamplingWorker | None:
        loaded = self.loaded
        if loaded is None:
            return None
        self.stop()
        c = self.controls
        model, n = loaded.model, c.count_value
        self._clear_digits()
        try:
            cond = self._condition(loaded, n)
        except Exception as exc:  # noqa: BLE001
            self.context.report(exc, "cannot sample")
            return None
        kwargs = {"temperature": c.temperature_value, "seed": c.seed_value, "cond": cond}
        if c.mode_value == COMPARE:  # the same seed and settings twice: only the sampler differs
            def steps(mode):
                return lambda: sample_steps(model, n, mode=mode, **kwargs)

            worker = SamplerPair(steps, tuple(model.shape), c.rate, playing, model.spec.sampler_modes[0])
        else:
            worker = SamplingWorker(lambda: sample_steps(model, n, mode=c.mode_value, **kwargs), tuple(model.shape),
                                    c.rate, playing)
        worker.failed.connect(self._on_failed)
        worker.finished_run.connect(self._on_finished)
        self.worker, self.frame, self._rate_probe, self._rate = worker, None, None, float("nan")
        self.focus = min(self.focus, n - 1)
        self._show_blank()
        worker.start()
        self.controls.mark_settled()
        self._pace_repaints(math.isinf(c.rate))
        self.timer.start()
        self.controls.set_playing(playing)
        return worker

    def _condition(self, loaded: LoadedModel, n: int):
        spec = loaded.model.config.condition
        if spec is None:
            return None
        if spec.kind == "class":
            label = self.controls.label_value or 0
            self._expected = (np.full(n, label), f"the label asked for, {label}")
            return self.context.session.condition(loaded.model, n, label=label)
        from app.ui.example_images import example_images

        examples = example_images(self.context.session, loaded, n, self.controls.seed_value)
        if examples.labels is not None:
            self._expected = (np.asarray(examples.labels)[:n], "the digit of its condition")
        return self.context.session.condition(loaded.model, n, image=examples.images)

    def step_row(self) -> None:
        """Step to the end of the current row (in raster order; a row's worth of pixels in other orderings)."""
        if self.loaded is None:
            return
        c, _, w = self.loaded.model.shape
        done = 0
        if self.active():
            latest = self.worker.latest
            done = (latest.step.index + 1 if latest is not None else 0) + self.worker.pending_steps()
        self.step(w * c - done % (w * c))

    def stop(self) -> None:
        """Stop between two steps and join the thread; the images stay on screen."""
        worker = self.worker
        if worker is not None and worker.isRunning():
            worker.stop_and_wait()
            self._repaint()
            if self.frame is not None and not worker.completed:
                self.status.setText(self.status.text() + "  ·  stopped")
        self.timer.stop()
        self.controls.set_playing(False)

    def default_action(self) -> None:
        """What ``--screenshot --view sample`` shows: a run in progress."""
        self.play_pause()

    def _on_speed(self, rate: float) -> None:
        if self.worker is not None:
            self.worker.set_rate(rate)
        self._pace_repaints(math.isinf(rate))

    def _pace_repaints(self, flat_out: bool) -> None:
        self.timer.setInterval(FAST_REPAINT_MS if flat_out else REPAINT_MS)

    def _on_settings_changed(self) -> None:
        comparing = self.controls.mode_value == COMPARE
        if (self.grids.currentWidget() is self.comparison) != comparing and not self.active():
            self._show_blank()  # one grid or two, at once
        if self.active() and self.worker.playing:
            self._start(playing=True)  # the same seed with new settings: compare them directly
        elif self.loaded is not None:
            self.status.setText("New settings apply to the next run (Play).")
            on_screen = self.frame.step.image.shape[0] if self.frame is not None else None
            if not self.active() and on_screen != self.controls.count_value:
                self._show_blank()  # a new grid size; finished images of the same count stay on screen

    # -- painting ------------------------------------------------------------------------------------------
    def _render(self, frame: Frame | None, force: bool = False) -> None:
        if self.loaded is None:
            return
        if frame is None:
            if force:
                self._show_blank()
            return
        self.frame = frame
        step = frame.step
        model = self.loaded.model
        n = step.image.shape[0]
        if self.layout_grid is None or self.layout_grid.count != n:
            self.layout_grid = grid_layout(n, *model.shape[1:])
        rank = self._rank() if self.controls.overlay.isChecked() and not step.done else None
        if isinstance(self.worker, SamplerPair):
            playing = self.worker.playing
            self.comparison.render(self.worker.frames(), model.num_values, self.layout_grid, rank, playing)
        else:
            self.grid.set_rgb(tile_rgb(step.image, model.num_values, self.layout_grid, frame.drawn, rank))
            self._mark(step.positions, n, step.done)
        if step.done and self._labelled is not self.worker and not isinstance(self.worker, SamplerPair):
            self._labelled = self.worker
            self._read_digits(step.image)
        if step.done and frame.nll is not None:
            self._plot_nll(frame.nll)
        else:
            self._plot(step)
        self._status(step)

    # -- the digit classifier ------------------------------------------------------------------------------
    def _clear_digits(self) -> None:
        self._expected: tuple[np.ndarray, str] | None = None
        self._labelled = None
        self.grid.clear_labels()
        self.digits.setText("")

    def _read_digits(self, images: np.ndarray) -> None:
        """Label each finished sample with the digit the shipped classifier reads in it (MNIST models only)."""
        loaded = self.loaded
        dataset = loaded.dataset.name if loaded.dataset is not None else loaded.info.meta.get("dataset")
        if not can_read(tuple(loaded.model.shape), dataset):
            return
        expected, meaning = self._expected if self._expected is not None else (None, "")
        try:
            reading = read_digits(images, loaded.model.num_values, expected)
        except Exception as exc:  # noqa: BLE001 - a label is a help, never a reason to stop the view
            self.digits.setText(f"The digit classifier could not read these samples: {exc}")
            return
        if reading is None:
            return
        result, labels = reading.classification, []
        for i, (digit, p) in enumerate(zip(result.labels, result.confidence, strict=True)):
            row, col = self.layout_grid.origin(i)
            if reading.expected is not None:
                colour = theme.GOOD if digit == reading.expected[i] else theme.WARN
            else:
                colour = "#ffffff" if p >= CONFIDENT else "#9e9e9e"
            labels.append((row, col, f"{digit} {100 * p:.0f}%", colour))
        self.grid.set_labels("digits", labels)
        n = len(result.labels)
        who = f"Digit classifier ({reading.accuracy_note})" if reading.accuracy_note else "Digit classifier"
        parts = [f"{who}, in each image's corner: the digit it reads and how sure it is."]
        if reading.agree is not None:
            parts.append(f"{reading.agree} of {n} read as {meaning} (green; orange: another digit).")
        parts.append(f"{reading.confident} of {n} read with probability ≥ {CONFIDENT}.")
        self.digits.setText(" ".join(parts))

    def _mark(self, positions: np.ndarray, n: int, done: bool) -> None:
        if done:
            self.grid.clear_markers("pixel")
        else:
            cells = np.unique(positions[:, 1:], axis=0)[: max(MAX_MARKERS // n, 1)]
            origins = np.array([self.layout_grid.origin(i) for i in range(n)])
            marks = (origins[:, None, :] + cells[None, :, :]).reshape(-1, 2)
            self.grid.set_markers("pixel", marks, theme.ACCENT, width=2.5)
        focus = np.array([self.layout_grid.origin(self.focus)]) if n > 1 else np.zeros((0, 2))
        self._mark_focus(focus)

    def _mark_focus(self, origins: np.ndarray) -> None:
        if len(origins) == 0:
            self.grid.clear_markers("focus")
            return
        h, w = self.loaded.model.shape[1:]
        r, c = origins[0]
        self.grid.set_outline("focus", r - 0.5, c - 0.5, h + 1, w + 1, theme.WARN, 2.0)

    def _plot(self, step) -> None:
        model = self.loaded.model
        position = tuple(int(v) for v in step.positions[0])
        where = position_text(position, model.shape[0])
        extra = f" (+{len(step.dims) - 1} more)" if len(step.dims) > 1 else ""
        if model.num_values == 2:
            self.plot.show_binary_batch(step.probs[:, 0, 1], step.tempered[:, 0, 1], step.values[:, 0], self.focus)
            p = float(step.probs[self.focus, 0, 1])
            drawn = int(step.values[self.focus, 0])
            self.pixel_label.setText(f"Pixel {where}{extra}: p(x = 1) = {p:.2f} in image {self.focus + 1} "
                                     f"→ drew {drawn}")
            self.plot.set_title(f"p(xᵢ = 1 | x<ᵢ), step {step.index + 1} / {step.total}")
            self.legend.setText("One bar per image: the model's p(x = 1) for the pixel it is drawing. White: a 1 "
                                "was drawn, grey: a 0." + (" Orange ticks: the distribution after the temperature."
                                                           if self.controls.temperature_value != 1 else ""))
        else:
            f = self.focus
            self.plot.show_categorical(step.probs[f, 0], step.tempered[f, 0], int(step.values[f, 0]))
            self.pixel_label.setText(f"Pixel {where}{extra} of image {f + 1}: drew {int(step.values[f, 0])} "
                                     f"of {model.num_values} values")
            self.plot.set_title(f"p(xᵢ = k | x<ᵢ), image {f + 1}, step {step.index + 1} / {step.total}")
            self.legend.setText("The model's distribution over the values of the pixel being drawn in the outlined "
                                "image (click another image to follow it); the dotted line is the value drawn.")

    def _plot_nll(self, nll: np.ndarray) -> None:
        """At the end of a run: how likely each finished sample is under the model, beside its test images."""
        loaded = self.loaded
        dims = int(np.prod(loaded.model.shape))
        test = loaded.info.meta.get("test_nll_nats")
        reference = float(test) if isinstance(test, (int, float)) and math.isfinite(test) else None
        data = loaded.dataset.title if loaded.dataset is not None else str(loaded.info.meta.get("dataset", "its data"))
        self.plot.show_values(nll, "−log p(sample), nats", self.focus, reference,
                              f"test images: {reference:.1f}" if reference is not None else "")
        self.plot.set_title("NLL of each sample under the model, nats per image")
        mean = float(np.mean(nll))
        self.pixel_label.setText(f"Done: these samples average {mean:.1f} nats per image "
                                 f"({mean / (dims * math.log(2)):.4f} bits/dim); image {self.focus + 1}: "
                                 f"{float(nll[self.focus]):.1f}")
        temperature = self.controls.temperature_value
        self.legend.setText(
            "−log p(x) of each finished sample under the model itself (the product of the conditionals it drew "
            "from, before the temperature)"
            + (f"; the dashed line is its mean NLL on the test images of {data}." if reference is not None else ".")
            + (" Below temperature 1 the samples are likelier than test images; above, less." if temperature != 1
               else ""))

    def _status(self, step) -> None:
        now = time.perf_counter()
        if self._rate_probe is None or step.done:
            self._rate_probe = (now, step.index)
        elif now - self._rate_probe[0] > 0.5:
            self._rate = (step.index - self._rate_probe[1]) / (now - self._rate_probe[0])
            self._rate_probe = (now, step.index)
        state = "done" if step.done else ("playing" if self.worker and self.worker.playing else "paused")
        rate = rate_text(self._rate) if math.isfinite(self._rate) and not step.done else ""
        parts = [f"{state}: step {step.index + 1} of {step.total}", rate,
                 f"{step.network_calls} network calls", f"{step.elapsed_s:.1f} s"]
        if isinstance(self.worker, SamplerPair):  # each grid has its own figures; this line says where both are
            naive = self.worker.naive.latest
            done = self.worker.completed
            state = "done" if done else ("playing" if self.worker.playing else "paused")
            where = f"naive at step {naive.step.index + 1 if naive is not None else 0}" if not done else ""
            parts = [f"{state}: {self.worker.fast_mode} at step {step.index + 1} of {step.total}" if not done
                     else f"{state}: both at step {step.total} of {step.total}", where]
        c = self.controls
        parts.append(f"seed {c.seed_value}, temperature {c.temperature_value:.2f}")
        self.status.setText("  ·  ".join(p for p in parts if p))

    # -- the grid ------------------------------------------------------------------------------------------
    def _on_grid_click(self, row: int, col: int, button: int) -> None:
        if self.layout_grid is None:
            return
        hit = self.layout_grid.locate(row, col)
        if hit is None:
            return
        self.focus = hit[0]
        if button == Qt.MouseButton.RightButton.value and self.frame is not None:
            self._context_menu(*hit)
        self._render(self.frame, force=True)

    def _context_menu(self, index: int, row: int, col: int) -> None:
        image = self.frame.step.image[index]
        label = f"sample {index + 1} (seed {self.controls.seed_value})"
        menu = QMenu(self)
        menu.addAction("Score this image", lambda: self.context.send_image("score", image, label))
        menu.addAction(f"Inspect pixel ({row}, {col}) of this image",
                       lambda: self.context.send_image("inspect", image, label, (0, row, col)))
        grid = figure_at(self.cursor().pos())
        if grid is not None:  # for the slides: the whole grid as it is now
            exporter = FigureExporter(self, lambda: self, lambda text, level: self.context.notify(text, level))
            exporter.add_actions(menu.addMenu(f"Export the {grid.name}"), grid)
        menu.popup(self.cursor().pos())

    # -- session files -------------------------------------------------------------------------------------
    def session_state(self) -> dict:
        """The settings, and how far the run on screen had come (a session reopens it there)."""
        c = self.controls
        run, step = "idle", 0
        if self.frame is not None:
            step = self.frame.step.index + 1
            run = "done" if self.frame.step.done else ("playing" if self.active() and self.worker.playing else "paused")
        return {"sampling": SamplingSettings(c.seed_value, c.temperature_value, c.count_value, c.mode_value,
                                             c.label_value, run, step, c.speed_setting)}

    def restore_session(self, state: SessionState) -> list[str]:
        """Take the session's settings; its run starts again (same seed, same digits) once the tab is shown."""
        settings = state.sampling
        if settings is None or self.loaded is None:
            return []
        self.stop()
        notes = self.controls.apply_settings(settings)
        self.controls.mark_settled()
        self._show_blank()
        self._pending_run = (settings.run, settings.step)
        if self.isVisible():
            self._resume_pending_run()
        return notes

    def _resume_pending_run(self) -> None:
        run, step = self._pending_run or ("idle", 0)
        self._pending_run = None
        if run == "done":
            self.run_to_end()
        elif run == "playing":
            self.play_pause()
        elif run == "paused" and step > 0:
            self.step(step)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        if not self._user_split:
            QTimer.singleShot(0, self._initial_split)  # once the layout has settled
        if self._pending_run is not None:
            self._resume_pending_run()

    def _on_divider_moved(self, *_) -> None:
        self._user_split = True

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt's name
        if watched is self.splitter and event.type() == QEvent.Type.Resize and not self._user_split:
            QTimer.singleShot(0, self._initial_split)  # the room changed: the grid stays square
        return super().eventFilter(watched, event)

    def _initial_split(self) -> None:
        """The grid as wide as it is tall (it is square), the chart the rest: a splitter left to its children's
        size hints gives the grid blank margins and crushes the chart, its title and its axis at 200%."""
        if self._user_split or self.splitter.width() <= 0:
            return
        width, height = self.splitter.width(), self.splitter.height()
        squares = 2 if self.grids.currentWidget() is self.comparison else 1
        grid = min(squares * height, int(width * GRID_SHARE))
        self.splitter.setSizes([grid, width - grid])


__all__ = ["QtSampleView"]
