"""Naive and cached sampling side by side: the lecture's point about caching, shown.

Two runs with the same seed, temperature and condition, one re-running the whole network at every step and
one with the model's fast sampler (cached activations, key/value caches, hidden state), each in its own grid
with its network calls, pixels per second and time per call, live. Both draw the same digits, pixel for
pixel; when both are done the view checks that they did and says how much less time the cache took.

:class:`SamplerPair` drives the two workers as one, so the Sample view's play, pause, step and stop apply to
both; :class:`QtSamplerComparison` shows them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QGridLayout, QLabel, QSizePolicy, QWidget

from app.core.sampling import SampleStep
from app.ui import theme
from app.ui.qt_pixel_view import QtPixelView
from app.ui.rendering import GridLayout, tile_rgb
from app.ui.workers import Frame, SamplingWorker

COMPARE = "compare"  # the sampler mode that means "naive and the fast one, side by side"
RATE_WINDOW_S = 0.5

DESCRIPTIONS = {
    "naive": "re-runs the whole network on the whole image at every step",
    "cached": "keeps each layer's activations and computes only what the new pixel changes",
    "single-pass": "one pass over the network per step, no re-run of what is already known",
    "partial": "computes only the parts of the network the next group of pixels needs",
}


class SamplerPair(QObject):
    """A naive and a fast :class:`SamplingWorker` on the same settings, controlled as one worker.

    Parameters
    ----------
    steps
        ``steps(mode)`` returns the zero-argument generator factory of one run (``sample_steps`` with that
        ``mode`` and otherwise the same arguments).
    shape, rate, playing
        As for :class:`SamplingWorker`.
    fast_mode
        The model's fast sampler (``cached`` for most).
    """

    failed = Signal(str, str)
    finished_run = Signal(int)

    def __init__(self, steps: Callable[[str], Callable[[], Iterator[SampleStep]]], shape: tuple[int, int, int],
                 rate: float, playing: bool, fast_mode: str, parent=None) -> None:
        super().__init__(parent)
        self.fast_mode = fast_mode
        self.naive = SamplingWorker(steps("naive"), shape, rate, playing)
        self.fast = SamplingWorker(steps(fast_mode), shape, rate, playing)
        for worker in self.workers:
            worker.failed.connect(self.failed)
            worker.finished_run.connect(self._on_finished)

    @property
    def workers(self) -> tuple[SamplingWorker, SamplingWorker]:
        return self.naive, self.fast

    def _on_finished(self, _serial: int) -> None:
        if self.completed:
            self.finished_run.emit(self.latest.serial if self.latest is not None else 0)

    # -- the SamplingWorker interface the Sample view uses ------------------------------------------------------
    def start(self) -> None:
        for worker in self.workers:
            worker.start()

    def play(self) -> None:
        for worker in self.workers:
            worker.play()

    def pause(self) -> None:
        for worker in self.workers:
            worker.pause()

    def step(self, count: int = 1) -> None:
        for worker in self.workers:
            worker.step(count)

    def run_to_end(self) -> None:
        for worker in self.workers:
            worker.run_to_end()

    def set_rate(self, steps_per_second: float) -> None:
        for worker in self.workers:
            worker.set_rate(steps_per_second)

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()

    def stop_and_wait(self, timeout_ms: int = 10000) -> bool:
        self.stop()  # both at once: neither waits for the other to finish its step
        return all([worker.stop_and_wait(timeout_ms) for worker in self.workers])

    def isRunning(self) -> bool:  # noqa: N802 - the name QThread gives it
        return any(worker.isRunning() for worker in self.workers)

    def wait(self, timeout_ms: int = 10000) -> bool:
        return all([worker.wait(timeout_ms) for worker in self.workers])

    @property
    def completed(self) -> bool:
        return all(worker.completed for worker in self.workers)

    @property
    def playing(self) -> bool:
        return self.fast.playing

    def pending_steps(self) -> int:
        return self.fast.pending_steps()

    @property
    def latest(self) -> Frame | None:
        """The fast run's frame (the plot follows it), with a serial that changes when either run moves, so
        that the view repaints while the naive run catches up."""
        naive, fast = self.naive.latest, self.fast.latest
        if fast is None:
            return None
        return replace(fast, serial=fast.serial + (naive.serial + 1 if naive is not None else 0))

    def frames(self) -> tuple[Frame | None, Frame | None]:
        return self.naive.latest, self.fast.latest


class RateProbe:
    """Pixels per second (per image) over the last half second or more, from the positions drawn so far."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._probe: tuple[float, int] | None = None
        self.rate = float("nan")

    def update(self, drawn: int, done: bool) -> float:
        now = time.perf_counter()
        if self._probe is None or drawn < self._probe[1]:
            self._probe = (now, drawn)
        elif now - self._probe[0] >= RATE_WINDOW_S:
            self.rate = (drawn - self._probe[1]) / (now - self._probe[0])
            self._probe = (now, drawn)
        if done:
            self.rate = float("nan")
        return self.rate


def run_line(frame: Frame | None, rate: float, playing: bool) -> str:
    """``step 312 of 784 · 312 network calls · 58 pixels/s · 24.1 ms per call`` for one run."""
    if frame is None:
        return "waiting to start"
    step = frame.step
    calls = max(step.network_calls, 1)
    parts = [f"{'done' if step.done else f'step {step.index + 1}'} of {step.total}",
             f"{step.network_calls} network calls"]
    if np.isfinite(rate) and not step.done:
        parts.append(f"{rate:.0f} pixels/s" if rate >= 10 else f"{rate:.1f} pixels/s")
    elif not step.done and not playing:
        parts.append("paused")
    parts.append(f"{1000 * frame.busy_s / calls:.1f} ms per call")
    parts.append(f"{frame.busy_s:.1f} s computing")
    return "  ·  ".join(parts)


def verdict(naive: Frame, fast: Frame, fast_mode: str) -> tuple[str, bool]:
    """What the two finished runs show: the same images (or how many differ), and the time each took."""
    images_a, images_b = naive.step.image, fast.step.image
    differ = int(np.sum(np.any(images_a != images_b, axis=(1, 2, 3))))
    n = images_a.shape[0]
    ratio = naive.busy_s / fast.busy_s if fast.busy_s > 0 else float("inf")
    factor = ratio if ratio >= 1 else 1 / max(ratio, 1e-9)
    times = f"{factor:.0f}" if factor >= 10 else f"{factor:.1f}"
    timing = (f"{fast_mode.capitalize()} sampling took {fast.busy_s:.2f} s of computing, naive {naive.busy_s:.2f} s "
              f"({times}x {'less' if ratio >= 1 else 'more'}; running at once, each also waited for the other)")
    if differ == 0:
        same = "both" if n == 1 else f"all {n}"
        return f"Same seed, same pixels: {same} images are identical in the two grids. {timing}.", True
    return (f"{differ} of {n} images differ: the {fast_mode} sampler does not draw what naive sampling draws "
            f"(a bug in the model's sampler). {timing}.", False)


class QtSamplerComparison(QWidget):
    """Two grids, naive on the left and the fast sampler on the right, each with its live figures."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        # 120 each: side by side they need no more room than the single grid (240) they replace
        self.grids = {"naive": QtPixelView(min_size=120), "fast": QtPixelView(min_size=120)}
        self.titles = {side: QLabel() for side in self.grids}
        self.lines = {side: QLabel() for side in self.grids}
        self.probes = {side: RateProbe() for side in self.grids}
        self.verdict = QLabel()
        self.fast_mode = "cached"
        layout = QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for column, side in enumerate(("naive", "fast")):
            for label in (self.titles[side], self.lines[side]):
                label.setWordWrap(True)
                label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
            self.grids[side].setAccessibleName(f"{side} sampling grid")
            layout.addWidget(self.titles[side], 0, column)
            layout.addWidget(self.grids[side], 1, column)
            layout.addWidget(self.lines[side], 2, column)
            layout.setColumnStretch(column, 1)
        self.verdict.setWordWrap(True)
        self.verdict.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(self.verdict, 3, 0, 1, 2)
        layout.setRowStretch(1, 1)
        self.set_fast_mode("cached")

    def set_fast_mode(self, mode: str) -> None:
        self.fast_mode = mode
        for side, name in (("naive", "naive"), ("fast", mode)):
            self.titles[side].setText(f"<b>{name.capitalize()}</b>: {DESCRIPTIONS.get(name, f'the {name} sampler')}")

    def set_scale(self, scale: float) -> None:
        for label in self.lines.values():
            label.setStyleSheet(theme.muted_css(scale, 0.95))

    def show_blank(self, rgb: np.ndarray) -> None:
        for side, grid in self.grids.items():
            grid.set_rgb(rgb)
            grid.clear_markers()
            self.probes[side].reset()
            self.lines[side].setText("waiting to start: press Play (Space) to run both at once")
        self.verdict.setText("The same seed and settings in both, on the same device at once: watch which one "
                             "keeps up. The time per call is wall time, so it includes waiting for the other run.")

    def render(self, frames: tuple[Frame | None, Frame | None], num_values: int, layout: GridLayout,
               rank: np.ndarray | None, playing: bool) -> None:
        """Paint both runs' latest frames, their figures, and the verdict once both are done."""
        for side, frame in zip(("naive", "fast"), frames, strict=True):
            if frame is None:
                continue
            step = frame.step
            self.grids[side].set_rgb(tile_rgb(step.image, num_values, layout, frame.drawn,
                                              None if step.done else rank))
            self._mark(side, step, layout)
            rate = self.probes[side].update(int(frame.drawn.sum()), step.done)
            self.lines[side].setText(run_line(frame, rate, playing))
        naive, fast = frames
        if naive is not None and fast is not None and naive.step.done and fast.step.done:
            text, same = verdict(naive, fast, self.fast_mode)
            self.verdict.setText(f"<span style='color:{theme.TEXT if same else theme.ERROR}'>{text}</span>")
        elif fast is not None and fast.step.done:
            self.verdict.setText(f"The {self.fast_mode} run is done; the naive one is still drawing the same "
                                 "pixels.")

    def _mark(self, side: str, step: SampleStep, layout: GridLayout) -> None:
        grid = self.grids[side]
        if step.done:
            grid.clear_markers("pixel")
            return
        cells = np.unique(step.positions[:, 1:], axis=0)[:4]
        origins = np.array([layout.origin(i) for i in range(layout.count)])
        marks = (origins[:, None, :] + cells[None, :, :]).reshape(-1, 2)
        grid.set_markers("pixel", marks, theme.ACCENT, width=2.0)


__all__ = ["QtSamplerComparison", "SamplerPair", "RateProbe", "COMPARE", "run_line", "verdict"]
