"""Worker threads: a sampling loop with play / pause / step / stop, and a "latest job wins" worker.

The threads only run core functions and hand back plain numpy data. A view never waits on them except
when it shuts down (``stop_and_wait``), so a slow device never freezes the window and a fast one never floods
the event loop: the sampling worker keeps only its latest frame, which the view polls at display rate.
"""

from __future__ import annotations

import math
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import QThread, Signal

from app.core.sampling import SampleStep

_WORKERS: weakref.WeakSet[QThread] = weakref.WeakSet()


def running_workers() -> list[QThread]:
    """Every worker of this module whose thread is still running (a closed window must leave none)."""
    return [worker for worker in list(_WORKERS) if worker.isRunning()]


@dataclass
class Frame:
    """The latest sampling step with the positions drawn so far (``drawn``: ``(H, W)`` bool) and, per image, the
    NLL of the values drawn so far under the model, in nats (``nll``: ``(B,)``; at the last step, -log p(sample),
    whatever the temperature), and ``busy_s``, the seconds spent computing (which, unlike the wall time, a
    slow-motion rate does not stretch)."""

    step: SampleStep
    drawn: np.ndarray
    serial: int
    nll: np.ndarray | None = None
    busy_s: float = 0.0  # time spent computing steps so far, without the waits of slow motion or a pause


class SamplingWorker(QThread):
    """Iterates a generator of :class:`SampleStep` on its own thread, under the view's control.

    Parameters
    ----------
    steps
        A zero-argument callable that returns the generator (``sample_steps(...)``); it is called on the worker
        thread, so that its ``torch.no_grad`` and all its work happen there.
    shape
        The model's ``(C, H, W)``, to keep the map of drawn positions.
    rate
        Steps per second; ``math.inf`` for as fast as the device goes.
    playing
        Start playing (else start paused, waiting for :meth:`play` or :meth:`step`).
    """

    failed = Signal(str, str)  # message, details
    finished_run = Signal(int)  # serial of the last frame

    def __init__(self, steps: Callable[[], Iterator[SampleStep]], shape: tuple[int, int, int],
                 rate: float = math.inf, playing: bool = True, parent=None) -> None:
        super().__init__(parent)
        self._factory = steps
        self._shape = shape
        self._cond = threading.Condition()
        self._playing = playing
        self._budget = 0  # steps allowed while paused
        self._stop = False
        self._rate = rate
        self._burst = False  # run to the end regardless of the rate
        self.latest: Frame | None = None
        self.completed = False
        _WORKERS.add(self)

    # -- control, from the GUI thread ----------------------------------------------------------------------
    def play(self) -> None:
        with self._cond:
            self._playing, self._budget = True, 0
            self._cond.notify_all()

    def pause(self) -> None:
        with self._cond:
            self._playing, self._burst, self._budget = False, False, 0
            self._cond.notify_all()

    def step(self, count: int = 1) -> None:
        """Pause (if playing) and allow ``count`` more steps."""
        with self._cond:
            self._playing, self._burst = False, False
            self._budget += max(int(count), 0)
            self._cond.notify_all()

    def run_to_end(self) -> None:
        with self._cond:
            self._playing, self._burst, self._budget = True, True, 0
            self._cond.notify_all()

    def set_rate(self, steps_per_second: float) -> None:
        with self._cond:
            self._rate = steps_per_second
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()

    def stop_and_wait(self, timeout_ms: int = 10000) -> bool:
        """Stop between two steps and join the thread; True if it has ended."""
        self.stop()
        return self.wait(timeout_ms) if self.isRunning() else True

    @property
    def playing(self) -> bool:
        return self._playing

    def pending_steps(self) -> int:
        """Steps allowed (by :meth:`step`) that have not run yet."""
        with self._cond:
            return self._budget

    # -- the loop, on the worker thread --------------------------------------------------------------------
    def run(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # noqa: BLE001 - a model may raise anything; the view shows it as a notice
            self.failed.emit(f"sampling stopped: {describe_exception(exc)}", traceback.format_exc())

    def _loop(self) -> None:
        c, h, w = self._shape
        drawn = np.zeros(c * h * w, dtype=bool)
        if not self._wait_turn(None):
            return
        resumed = time.perf_counter()
        generator = self._factory()
        try:
            last_time = time.perf_counter()
            nll, busy = None, 0.0
            for serial, step in enumerate(generator):
                busy += time.perf_counter() - resumed
                drawn[np.asarray(step.dims)] = True
                inner = step if isinstance(step, SampleStep) else getattr(step, "step", None)  # a staged run's step
                if isinstance(inner, SampleStep) and not inner.known:
                    part = drawn_nll(inner.probs, inner.values)
                    nll = part if nll is None else nll + part
                self.latest = Frame(step, drawn.reshape(c, h, w).all(axis=0).copy(), serial, nll, busy)
                if step.done:
                    self.completed = True
                    self.finished_run.emit(serial)
                    return
                if not self._wait_turn(last_time):
                    return
                last_time = resumed = time.perf_counter()
        finally:
            generator.close()

    def _wait_turn(self, last_time: float | None) -> bool:
        """Block until the next step may run (playing and due, or a step allowed); False to stop."""
        with self._cond:
            while True:
                if self._stop:
                    return False
                if self._budget > 0:
                    self._budget -= 1
                    return True
                if self._playing:
                    delay = self._delay(last_time)
                    if delay <= 0:
                        return True
                    self._cond.wait(delay)
                    continue
                self._cond.wait()

    def _delay(self, last_time: float | None) -> float:
        if self._burst or last_time is None or not math.isfinite(self._rate) or self._rate <= 0:
            return 0.0
        return last_time + 1.0 / self._rate - time.perf_counter()


def drawn_nll(probs: np.ndarray, values: np.ndarray) -> np.ndarray:
    """-log p of the values drawn at one step, summed over its dimensions: ``probs`` ``(B, G, K)``, ``values``
    ``(B, G)`` -> ``(B,)`` nats."""
    p = np.take_along_axis(np.asarray(probs, dtype=np.float64), np.asarray(values, dtype=np.int64)[..., None], axis=2)
    return -np.log(np.clip(p[..., 0], 1e-300, None)).sum(axis=1)


@dataclass
class JobResult:
    """What a job returned, with the serial number it was submitted under."""

    serial: int
    tag: str
    value: Any


class JobWorker(QThread):
    """Runs submitted callables one at a time; a new submission replaces one that has not started.

    ``done`` carries a :class:`JobResult`; ``failed`` the job's tag, a one-line message and the traceback.
    A view that submits on every pen move therefore gets the latest score, never a queue of stale ones.
    """

    done = Signal(object)
    partial = Signal(object)  # a JobResult with what a running job has so far (see report)
    failed = Signal(str, str, str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._cond = threading.Condition()
        self._pending: tuple[int, str, Callable[[], Any]] | None = None
        self._serial = 0
        self._busy = False
        self._stop = False
        self._running: tuple[int, str] = (0, "")
        _WORKERS.add(self)

    def report(self, value: Any) -> None:
        """Called by the running job, on this worker's thread: hand what it has so far to the view
        (``partial``), e.g. the rows of a table filled one at a time."""
        serial, tag = self._running
        self.partial.emit(JobResult(serial, tag, value))

    def submit(self, job: Callable[[], Any], tag: str = "") -> int:
        """Queue ``job`` (dropping any queued one that has not started); returns its serial number, or -1 once
        the worker has been stopped for good."""
        with self._cond:
            if self._stop:
                return -1
            self._serial += 1
            self._pending = (self._serial, tag, job)
            self._cond.notify_all()
        if not self.isRunning():
            self.start()
        return self._serial

    @property
    def latest_serial(self) -> int:
        return self._serial

    def has_pending(self) -> bool:
        """A job is waiting (a running job may check this to stop early: its result would be stale)."""
        with self._cond:
            return self._pending is not None

    def idle(self) -> bool:
        with self._cond:
            return self._pending is None and not self._busy

    def drain(self, timeout_s: float = 10.0) -> bool:
        """Drop the queued job and wait for the running one to end (before a model changes under it)."""
        deadline = time.perf_counter() + timeout_s
        with self._cond:
            self._pending = None
            while self._busy and time.perf_counter() < deadline:
                self._cond.wait(0.05)
            return not self._busy

    def stop_and_wait(self, timeout_ms: int = 10000) -> bool:
        with self._cond:
            self._stop = True
            self._pending = None
            self._cond.notify_all()
        return self.wait(timeout_ms) if self.isRunning() else True

    def run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                serial, tag, job = self._pending
                self._pending = None
                self._busy = True
                self._running = (serial, tag)
            try:
                self.done.emit(JobResult(serial, tag, job()))
            except Exception as exc:  # noqa: BLE001 - shown as a notice, the worker carries on
                self.failed.emit(tag, describe_exception(exc), traceback.format_exc())
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()


def describe_exception(exc: BaseException) -> str:
    """One line: the core's own messages as they are, anything else with its type (a bug, not bad input)."""
    from app.core.errors import ARExplorerError

    return str(exc) if isinstance(exc, ARExplorerError) else f"{type(exc).__name__}: {exc}"


__all__ = ["SamplingWorker", "JobWorker", "JobResult", "Frame", "describe_exception", "running_workers", "drawn_nll"]
