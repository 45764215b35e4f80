"""What a view owns on threads and timers, and the two ways of stopping it: :class:`WorkerOwner`.

A view names its workers, timers and cancellable tasks once (``own_workers``, ``own_timers``, ``own_tasks``);
:meth:`WorkerOwner.quiesce` then stops their work before the model or the device changes (the app context's
quiescer) and :meth:`WorkerOwner.shutdown` stops and joins every thread when the window closes, since a thread
that outlives its window crashes the app on exit. Both act in the order things were owned: timers first (no
new work is started), then tasks (told to stop between steps), then workers (drained or joined).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class _Worker(Protocol):
    def drain(self, timeout_s: float = 10.0) -> bool: ...

    def stop_and_wait(self, timeout_ms: int = 10000) -> bool: ...


class _Timer(Protocol):
    def stop(self) -> None: ...


class _Task(Protocol):
    def cancel(self) -> None: ...


@dataclass
class _Owned:
    workers: list[tuple[_Worker, float]] = field(default_factory=list)
    timers: list[tuple[_Timer, bool]] = field(default_factory=list)
    tasks: list[_Task] = field(default_factory=list)


class WorkerOwner:
    """A mixin for views (before ``QWidget`` in the bases) that owns their workers, timers and tasks."""

    def _owned(self) -> _Owned:
        owned = self.__dict__.get("_owned_work")
        if owned is None:
            owned = self.__dict__["_owned_work"] = _Owned()
        return owned

    def own_workers(self, *workers: _Worker, timeout_s: float = 10.0) -> None:
        """Drain these workers on :meth:`quiesce`, and join them on :meth:`shutdown`, waiting ``timeout_s`` each."""
        self._owned().workers.extend((worker, timeout_s) for worker in workers)

    def own_timers(self, *timers: _Timer, on_quiesce: bool = True) -> None:
        """Stop these timers on :meth:`shutdown`, and on :meth:`quiesce` too unless ``on_quiesce`` is False."""
        self._owned().timers.extend((timer, on_quiesce) for timer in timers)

    def own_tasks(self, *tasks: _Task) -> None:
        """Cancel these tasks (anything with ``cancel()``) on :meth:`quiesce` and on :meth:`shutdown`."""
        self._owned().tasks.extend(tasks)

    def quiesce(self) -> None:
        """Stop the view's work promptly, so that no thread runs a model while it moves (``register_quiescer``)."""
        owned = self._owned()
        for timer, on_quiesce in owned.timers:
            if on_quiesce:
                timer.stop()
        for task in owned.tasks:
            task.cancel()
        for worker, timeout_s in owned.workers:
            worker.drain(timeout_s=timeout_s)

    def shutdown(self) -> None:
        """Stop and join every thread the view owns: the window is closing."""
        owned = self._owned()
        for timer, _ in owned.timers:
            timer.stop()
        for task in owned.tasks:
            task.cancel()
        for worker, timeout_s in owned.workers:
            worker.stop_and_wait(int(timeout_s * 1000))


__all__ = ["WorkerOwner"]
