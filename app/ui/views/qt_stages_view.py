"""Sampling in stages: every stage of a run side by side as it fills, with the network calls it takes.

* the parallel multiscale PixelCNN: the base grid pixel by pixel, then each doubling of the resolution in three
  network calls of many pixels each (55 calls for 28x28 where one pixel per call needs 784);
* the grayscale hierarchy: the binary grey image first (its own checkpoint), then the colour image given it;
* any other model: one stage, with its condition: the class (in the controls) or the 7x7 image a
  super-resolution model fills in, which can be taken from a test image or drawn.

The stages are the model's own (:meth:`ARModel.sampling_stages`, :meth:`ARModel.prior_stage`), so a plugin's
model takes part as the built-in ones do. The run is :meth:`app.core.sampling_stages.StagedSampling.steps` on a
:class:`SamplingWorker`; a timer repaints the latest frame.
"""

from __future__ import annotations

import numpy as np
import torch
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.core.conditions import condition_error
from app.core.sampling_stages import StagedFrame, StagedSampling
from app.core.session import LoadedModel
from app.core.stages import Stage, StageSources
from app.ui import theme
from app.ui.context import AppContext
from app.ui.qt_pixel_view import QtPixelView
from app.ui.rendering import grid_layout, tile_rgb
from app.ui.views.playback import PlaybackMixin
from app.ui.views.qt_sample_controls import QtSampleControls
from app.ui.views.qt_stage_condition import QtStageCondition
from app.ui.workers import Frame, SamplingWorker

REPAINT_MS = 25


class QtStagePanel(QWidget):
    """One stage: its name, its images as they fill, and its network calls."""

    def __init__(self, stage: Stage, parent=None) -> None:
        super().__init__(parent)
        self.stage = stage
        self.title = QLabel(stage.name)
        self.pixels = QtPixelView(min_size=120)
        self.pixels.setAccessibleName(f"stage: {stage.name}")
        self.detail = QLabel(f"{stage.network_calls} network calls: {stage.detail}")
        self.detail.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.pixels, 1)
        layout.addWidget(self.detail)

    def show_images(self, images: np.ndarray | None, drawn: np.ndarray, count: int) -> None:
        c, h, w = self.stage.shape
        if images is None:
            images, drawn = np.zeros((count, c, h, w), dtype=np.uint8), np.zeros((h, w), dtype=bool)
        self.pixels.set_rgb(tile_rgb(images, self.stage.num_values, grid_layout(len(images), h, w), drawn))

    def set_current(self, current: bool, scale: float) -> None:
        colour = f"color: {theme.ACCENT};" if current else ""
        self.title.setStyleSheet(theme.heading_css(scale, 1.0) + colour)
        self.detail.setStyleSheet(theme.muted_css(scale, 0.9))


class QtStagesView(PlaybackMixin, QWidget):
    """The Stages tab. ``staged`` describes the current model's stages (None when it cannot be sampled)."""

    def __init__(self, context: AppContext, parent=None) -> None:
        super().__init__(parent)
        self.context = context
        self.staged: StagedSampling | None = None
        self.worker: SamplingWorker | None = None
        self.frame: Frame | None = None
        self.panels: list[QtStagePanel] = []
        self._cond: torch.Tensor | None = None
        self._build()
        self._build_actions()
        self.timer = QTimer(self)
        self.timer.setInterval(REPAINT_MS)
        self.timer.timeout.connect(self._repaint)
        context.model_changed.connect(self._on_model_changed)
        context.register_quiescer(self.stop)
        self.set_scale(context.scale)
        self._on_model_changed(context.loaded)

    # -- building ------------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.header = QLabel()
        self.header.setWordWrap(True)
        self.condition = QtStageCondition()
        self.condition.changed.connect(self._on_settings_changed)
        self.stage_row = QHBoxLayout()
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.controls = QtSampleControls()
        c = self.controls
        c.row_button.setText("Stage")
        c.row_button.setToolTip("Step to the end of the current stage (Down or R)")
        c.overlay.setVisible(False)
        c.play_pause.connect(self.play_pause)
        c.step_pixel.connect(lambda: self.step(1))
        c.step_row.connect(self.step_stage)
        c.run_to_end.connect(self.run_to_end)
        c.stop.connect(self.stop)
        c.speed_changed.connect(lambda rate: self.worker.set_rate(rate) if self.worker is not None else None)
        c.settings_changed.connect(self._on_settings_changed)
        middle = QVBoxLayout()
        middle.addWidget(self.header)
        top = QHBoxLayout()
        top.addLayout(self.stage_row, 4)
        top.addWidget(self.condition, 1, Qt.AlignmentFlag.AlignTop)
        middle.addLayout(top, 1)
        middle.addWidget(self.status)
        layout = QHBoxLayout(self)
        layout.addLayout(middle, 1)
        layout.addWidget(self.controls)

    def _build_actions(self) -> None:
        for text, keys, slot in (("Play / pause", ["Space"], self.play_pause),
                                 ("Step one network call", ["Right", "S"], lambda: self.step(1)),
                                 ("Step to the end of the stage", ["Down", "R"], self.step_stage),
                                 ("Run to the end", ["End", "E"], self.run_to_end), ("Stop", ["Esc"], self.stop)):
            action = QAction(text, self)
            action.setShortcuts([QKeySequence(k) for k in keys])
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            action.triggered.connect(slot)
            self.addAction(action)

    def set_scale(self, scale: float) -> None:
        self.header.setStyleSheet(theme.muted_css(scale, 1.0))
        self.controls.setFixedWidth(int(250 * scale))
        self.condition.set_scale(scale)
        self.condition.setMaximumWidth(int(300 * scale))
        self._highlight()

    # -- the model -----------------------------------------------------------------------------------------
    @property
    def loaded(self) -> LoadedModel | None:
        return self.context.loaded

    def _on_model_changed(self, loaded: LoadedModel | None) -> None:
        self.stop()
        self.frame, self.worker, self.staged = None, None, None
        self.controls.set_model(loaded.model if loaded is not None else None)
        self.status.setText("")
        if loaded is None:
            self._set_stages([])
            self.header.setText("Open a checkpoint to sample it in stages.")
            self.condition.show_text("", "")
            return
        try:
            self.staged = StagedSampling.for_model(loaded.model, self._sources(loaded))
            self._show_condition(loaded)
        except Exception as exc:  # noqa: BLE001 - a missing grey stage or a plugin's model: a notice
            self.context.report(exc, "cannot sample in stages")
            self._set_stages([])
            self.header.setText(f"{loaded.name} cannot be sampled in stages here (see the notice).")
            self.controls.set_model(None)
            return
        self._set_stages(self.staged.stages)
        self.header.setText(self._describe(loaded))
        self._show_blank()

    def _sources(self, loaded: LoadedModel) -> StageSources:
        """Where a model finds the model that draws its condition first (the checkpoints, loaded once)."""
        return StageSources(self.context.checkpoints(), loaded.info, lambda ref: self.context.model(ref).model)

    def _show_condition(self, loaded: LoadedModel) -> None:
        spec = loaded.model.config.condition
        prior = self.staged.prior
        if prior is not None:
            self.condition.show_text(prior.condition_title, prior.condition_note)
        elif spec is not None and spec.kind == "image":
            self.condition.show_low_resolution(self.context.session, loaded)
        elif spec is not None and spec.kind == "class":
            self.condition.show_text("Condition: a class", "Choose the digit under Class in the controls.")
        else:
            self.condition.show_text("", "")

    def _describe(self, loaded: LoadedModel) -> str:
        staged = self.staged
        c, h, w = loaded.model.shape
        calls = staged.total_calls
        parts = " + ".join(f"{s.network_calls} ({s.name})" for s in staged.stages)
        per_call = staged.one_per_call
        text = (f"{loaded.model.spec.title}: {len(staged.stages)} stage(s), {parts} = {calls} network calls for a "
                f"{c}x{h}x{w} image; a sampler drawing one dimension per call needs {per_call}")
        if calls < per_call:
            text += f" ({per_call / calls:.0f}x more)"
        return text + "."

    def _set_stages(self, stages: list[Stage]) -> None:
        for panel in self.panels:
            # Out of the view now: deleteLater alone leaves the old panel on screen, under the new ones, until
            # the event loop gets round to deleting it (and never, inside a nested loop).
            self.stage_row.removeWidget(panel)
            panel.hide()
            panel.setParent(None)
            panel.deleteLater()
        self.panels = [QtStagePanel(stage) for stage in stages]
        for panel in self.panels:
            self.stage_row.addWidget(panel, 1)
        self._highlight()

    def _show_blank(self) -> None:
        n = self.controls.count_value
        for panel in self.panels:
            panel.show_images(None, np.zeros(0), n)
        self._highlight(0)

    def _highlight(self, current: int | None = None) -> None:
        for k, panel in enumerate(self.panels):
            panel.set_current(k == current, self.context.scale)

    # -- runs ----------------------------------------------------------------------------------------------
    def _start(self, playing: bool) -> SamplingWorker | None:
        loaded, staged = self.loaded, self.staged
        if loaded is None or staged is None:
            return None
        self.stop()
        c = self.controls
        n = c.count_value
        try:
            self._cond = self._condition(loaded, n)
        except Exception as exc:  # noqa: BLE001
            self.context.report(exc, "cannot sample")
            return None
        kwargs = {"seed": c.seed_value, "temperature": c.temperature_value, "cond": self._cond, "mode": c.mode_value}
        worker = SamplingWorker(lambda: staged.steps(n, **kwargs), tuple(loaded.model.shape), c.rate, playing)
        worker.failed.connect(self._on_failed)
        worker.finished_run.connect(self._on_finished)
        self.worker, self.frame = worker, None
        self._show_blank()
        worker.start()
        self.controls.mark_settled()
        self.timer.start()
        c.set_playing(playing)
        return worker

    def _condition(self, loaded: LoadedModel, n: int) -> torch.Tensor | None:
        spec = loaded.model.config.condition
        if spec is None or self.staged.prior is not None:
            return None
        session = self.context.session
        if spec.kind == "class":
            return session.condition(loaded.model, n, label=self.controls.label_value or 0)
        low = self.condition.tensor()
        if low is None:
            raise ValueError("no condition image")
        return session.condition(loaded.model, n, image=low[0].numpy())

    def step_stage(self) -> None:
        """Step to the last network call of the current stage (or of the next, at a stage's end)."""
        if self.staged is None:
            return
        done = 0
        if self.active():
            latest = self.worker.latest
            done = (latest.step.index + 1 if latest is not None else 0) + self.worker.pending_steps()
        ends = [e for e in self.staged.stage_ends() if e >= done]
        if ends:
            self.step(ends[0] - done + 1)

    def stop(self) -> None:
        worker = self.worker
        if worker is not None and worker.isRunning():
            worker.stop_and_wait()
            self._repaint()
        self.timer.stop()
        self.controls.set_playing(False)

    def default_action(self) -> None:
        self.run_to_end()

    def _on_settings_changed(self) -> None:
        if self.active() and self.worker.playing:
            self._start(playing=True)
        elif self.loaded is not None and not self.active():
            shown = self.frame.step.step.image.shape[0] if self.frame is not None else None
            if shown != self.controls.count_value:
                self._show_blank()  # a new grid size; finished images of the same count stay on screen

    # -- painting ------------------------------------------------------------------------------------------
    def _render(self, frame: Frame) -> None:
        self.frame = frame
        staged: StagedFrame = frame.step
        for panel, images, drawn in zip(self.panels, staged.images, staged.drawn, strict=True):
            panel.show_images(images, drawn, self.controls.count_value)
        self._highlight(None if staged.done else staged.stage)
        self.status.setText(self._status_text(staged))

    def _status_text(self, staged: StagedFrame) -> str:
        stage = self.staged.stages[staged.stage]
        per_call = self.staged.one_per_call
        if not staged.done:
            state = "playing" if self.worker is not None and self.worker.playing else "paused"
            return (f"{state}: network call {staged.network_calls} of {self.staged.total_calls}, {stage.name} "
                    f"(drawing {len(staged.dims)} dimension(s) at once)")
        text = f"done: {staged.network_calls} network calls (one dimension per call: {per_call})"
        nll = self.frame.nll if self.frame is not None else None
        if nll is not None and len(nll):
            given = " given the condition" if self.loaded.model.config.condition is not None else ""
            stages = " over all stages" if len(self.staged.stages) > 1 else ""
            text += f"; −log p of the samples{stages}{given}: {float(np.mean(nll)):.1f} nats per image on average"
        return text + self._agreement_text(staged)

    def _agreement_text(self, staged: StagedFrame) -> str:
        """For a low-resolution condition: how far the samples, downsampled again, are from it."""
        model = self.loaded.model
        spec = model.config.condition
        if spec is None or spec.kind != "image" or self._cond is None or self.staged.prior is not None:
            return ""
        images = torch.as_tensor(staged.step.image, dtype=torch.float32)
        error = condition_error(spec, images, self._cond.cpu(), model.num_values)
        block = model.shape[1] // spec.shape[-2]
        return (f"  ·  downsampled again, the samples miss the condition by {float(error.mean()):.2f} on average "
                f"(on-pixels per {block}x{block} block, of {spec.num_values - 1})")


__all__ = ["QtStagesView", "QtStagePanel"]
