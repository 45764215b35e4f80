"""Worker threads: a sampling loop with play / pause / step / stop, and a "latest job wins" worker.

The threads only run core functions and hand back plain numpy data. A view never waits on them except
when it shuts down (``stop_and_wait``), so a slow device never freezes the window and a fast one never floods
the event loop: the sampling worker keeps only its latest frame, which the view polls at display rate.

Stopping never waits for a long forward pass to end: ``stop_and_wait`` also aborts the pass under way at its
next layer (a forward pre-hook, installed only while a worker is being aborted, raises inside the worker's
thread). Closing the window (:func:`begin_shutdown`) gives all workers together a second or two; one that a
single long computation still holds after that is let go (:func:`leave_if_busy` ends the process without
destroying it, which would abort the process with "QThread: Destroyed while thread is still running").
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PySide6.QtCore import QThread, Signal

from app.core.sampling import SampleStep

_WORKERS: weakref.WeakSet[QThread] = weakref.WeakSet()
#: Workers still running after the shutdown's grace: kept referenced (never destroyed while they run).
_ABANDONED: list[QThread] = []
#: Seconds that closing the window gives all workers together.
SHUTDOWN_GRACE_S = 1.5
_SHUTDOWN = {"deadline": None}


def running_workers() -> list[QThread]:
    """Every worker of this module whose thread is still running (a closed window must leave none)."""
    return [worker for worker in list(_WORKERS) if worker.isRunning()]


class WorkerAborted(BaseException):
    """Raised inside a forward pass on the thread of a worker being stopped, so that the pass ends at its next
    layer. A ``BaseException``: the core's ``except Exception`` wrappers must not turn it into a model error."""


_CURRENT = threading.local()  # the worker that runs on this thread
_ABORT = {"hook": None, "count": 0}
_ABORT_LOCK = threading.Lock()


def _abort_forward(module: torch.nn.Module, args: tuple) -> None:
    worker = getattr(_CURRENT, "worker", None)
    if worker is not None and worker._aborting:
        raise WorkerAborted()


def _update_abort_hook() -> None:
    """Install the forward pre-hook while some worker is being aborted, and remove it after (a global hook
    costs every module call a little, so it is there only when needed). Called with ``_ABORT_LOCK`` held."""
    if _ABORT["count"] > 0 and _ABORT["hook"] is None:
        _ABORT["hook"] = torch.nn.modules.module.register_module_forward_pre_hook(_abort_forward)
    elif _ABORT["count"] <= 0 and _ABORT["hook"] is not None:
        _ABORT["hook"].remove()
        _ABORT["hook"], _ABORT["count"] = None, 0


class _Abortable:
    """What both workers share: aborting the forward pass under way, and waits bounded by the shutdown."""

    _aborting = False
    _abort_held = False

    def abort(self) -> None:
        """Make the forward pass under way on this worker's thread raise :class:`WorkerAborted` at its next
        layer (the worker then ends without a result)."""
        with _ABORT_LOCK:
            if self._aborting or not self.isRunning():  # type: ignore[attr-defined]
                return
            self._aborting = self._abort_held = True
            _ABORT["count"] += 1
            _update_abort_hook()

    def _release_abort(self) -> None:
        with _ABORT_LOCK:
            if self._abort_held:
                self._abort_held = False
                _ABORT["count"] -= 1
                _update_abort_hook()

    def _bounded_wait(self, timeout_ms: int) -> bool:
        """``wait(timeout_ms)``, cut short by the shutdown's deadline; True if the thread has ended."""
        if not self.isRunning():  # type: ignore[attr-defined]
            return True
        deadline = _SHUTDOWN["deadline"]
        if deadline is not None:
            timeout_ms = max(0, min(timeout_ms, int(1000 * (deadline - time.monotonic()))))
        ended = self.wait(timeout_ms)  # type: ignore[attr-defined]
        if ended:
            self._release_abort()
        elif deadline is not None:
            _abandon(self)  # type: ignore[arg-type]
        return bool(ended)

    def _enter_thread(self) -> None:
        _CURRENT.worker = self

    def _leave_thread(self) -> None:
        _CURRENT.worker = None
        self._release_abort()


def _abandon(worker: QThread) -> None:
    """Keep a worker that outlived the shutdown referenced and unparented: destroying a running QThread would
    abort the process."""
    worker.setParent(None)
    if worker not in _ABANDONED:
        _ABANDONED.append(worker)


def begin_shutdown(grace_s: float = SHUTDOWN_GRACE_S) -> None:
    """The window is closing: abort every running worker's forward pass now, and let the views' waits for
    them end by ``grace_s`` seconds from now, all of them together."""
    if _SHUTDOWN["deadline"] is None:
        _SHUTDOWN["deadline"] = time.monotonic() + grace_s
    for worker in running_workers():
        worker.stop()
        worker.abort()


def end_shutdown() -> None:
    """Back to unbounded waits (for a new window in the same process, as in the tests)."""
    _SHUTDOWN["deadline"] = None


def leave_if_busy(code: int) -> None:
    """End the process now, with ``code``, if a worker is still running after the window closed.

    Its thread holds a computation that cannot be interrupted (a single long call into a library); waiting
    for it would keep a closed app alive, and destroying it at exit would abort the process. Every file the
    app writes is written atomically, so nothing is left half written.
    """
    if not running_workers():
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


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


class SamplingWorker(_Abortable, QThread):
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
        """Stop (aborting a forward pass under way) and join the thread; True if it has ended."""
        self.stop()
        self.abort()
        return self._bounded_wait(timeout_ms)

    @property
    def playing(self) -> bool:
        return self._playing

    def pending_steps(self) -> int:
        """Steps allowed (by :meth:`step`) that have not run yet."""
        with self._cond:
            return self._budget

    # -- the loop, on the worker thread --------------------------------------------------------------------
    def run(self) -> None:
        self._enter_thread()
        try:
            self._loop()
        except WorkerAborted:
            pass  # stopped in the middle of a forward pass, as asked
        except Exception as exc:  # noqa: BLE001 - a model may raise anything; the view shows it as a notice
            if not self._aborting:
                self.failed.emit(f"sampling stopped: {describe_exception(exc)}", traceback.format_exc())
        finally:
            self._leave_thread()

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


class JobWorker(_Abortable, QThread):
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

    def stop(self) -> None:
        """Stop for good: the queued job is dropped, the running one finishes (or is aborted by
        :meth:`abort`)."""
        with self._cond:
            self._stop = True
            self._pending = None
            self._cond.notify_all()

    def stop_and_wait(self, timeout_ms: int = 10000) -> bool:
        """Stop for good, abort the forward pass of the running job, and join the thread; True if it has ended."""
        self.stop()
        self.abort()
        return self._bounded_wait(timeout_ms)

    def run(self) -> None:
        self._enter_thread()
        try:
            self._serve()
        finally:
            self._leave_thread()

    def _serve(self) -> None:
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
            except WorkerAborted:
                return  # stopped for good in the middle of a forward pass
            except Exception as exc:  # noqa: BLE001 - shown as a notice, the worker carries on
                if not self._aborting:
                    self.failed.emit(tag, describe_exception(exc), traceback.format_exc())
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()


def describe_exception(exc: BaseException) -> str:
    """One line: the core's own messages as they are, anything else with its type (a bug, not bad input)."""
    from app.core.errors import ARExplorerError

    return str(exc) if isinstance(exc, ARExplorerError) else f"{type(exc).__name__}: {exc}"


__all__ = ["SamplingWorker", "JobWorker", "JobResult", "Frame", "describe_exception", "running_workers", "drawn_nll",
           "WorkerAborted", "begin_shutdown", "end_shutdown", "leave_if_busy", "SHUTDOWN_GRACE_S"]
