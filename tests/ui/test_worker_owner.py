"""WorkerOwner, the views' owner of threads: quiesce stops the timers that ask for it, cancels the tasks and
drains the workers; shutdown stops every timer and joins every worker, each with its own timeout; both in the
order they were owned."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from app.ui.views.worker_owner import WorkerOwner  # noqa: E402


class Recorder:
    def __init__(self, name: str, log: list) -> None:
        self.name, self.log = name, log

    def stop(self) -> None:
        self.log.append(("stop", self.name))

    def cancel(self) -> None:
        self.log.append(("cancel", self.name))

    def drain(self, timeout_s: float = 10.0) -> bool:
        self.log.append(("drain", self.name, timeout_s))
        return True

    def stop_and_wait(self, timeout_ms: int = 10000) -> bool:
        self.log.append(("join", self.name, timeout_ms))
        return True


def owner(log: list) -> WorkerOwner:
    view = WorkerOwner()
    view.own_workers(Recorder("jobs", log))
    view.own_timers(Recorder("repaint", log), on_quiesce=False)
    view.own_timers(Recorder("debounce", log))
    view.own_tasks(Recorder("training", log))
    view.own_workers(Recorder("trainer", log), timeout_s=30.0)
    return view


def test_quiesce_drains_and_leaves_the_repaint_timer_running():
    log: list = []
    owner(log).quiesce()
    assert log == [("stop", "debounce"), ("cancel", "training"), ("drain", "jobs", 10.0),
                   ("drain", "trainer", 30.0)]


def test_shutdown_stops_every_timer_and_joins_every_worker():
    log: list = []
    owner(log).shutdown()
    assert log == [("stop", "repaint"), ("stop", "debounce"), ("cancel", "training"), ("join", "jobs", 10000),
                   ("join", "trainer", 30000)]


def test_an_owner_with_nothing_owned_stops_nothing():
    view = WorkerOwner()
    view.quiesce()
    view.shutdown()
    assert view._owned().workers == [] and view._owned().timers == []
