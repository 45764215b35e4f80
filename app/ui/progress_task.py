"""Long work with progress (training, building a Fisher space) on a :class:`JobWorker`, cancellable.

The task iterates a generator of progress events on the worker's thread and keeps only the latest event,
which the view reads on a timer; :meth:`ProgressTask.cancel` makes the generator's ``should_stop`` true, so it
ends between two steps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from app.ui.workers import JobWorker


class ProgressTask:
    """One generator at a time on ``worker``; ``latest`` is its newest event; ``running`` until it ends."""

    def __init__(self, worker: JobWorker, tag: str) -> None:
        self.worker = worker
        self.tag = tag
        self.latest: Any = None
        self.running = False
        self.cancelled = False

    def start(self, factory: Callable[[Callable[[], bool]], Iterator[Any]]) -> int:
        """Run ``factory(should_stop)`` to its end on the worker; returns the job's serial number."""
        self.latest, self.running, self.cancelled = None, True, False

        def job() -> Any:
            last = None
            try:
                for event in factory(lambda: self.cancelled):
                    self.latest = last = event
            finally:
                self.running = False
            return last

        return self.worker.submit(job, self.tag)

    def cancel(self) -> None:
        self.cancelled = True


__all__ = ["ProgressTask"]
