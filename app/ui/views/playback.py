"""Play, pause, step and run to the end: what the Sample and Stages views share about a sampling run.

A view that mixes this in has ``worker`` (its :class:`~app.ui.workers.SamplingWorker`, or None), ``controls``
(a :class:`~app.ui.views.qt_sample_controls.QtSampleControls`), ``timer`` (its repaint timer), ``frame`` (the
frame on screen), ``_start(playing)`` (a new run, or None), ``stop()`` and ``_render(frame)``.
"""

from __future__ import annotations


class PlaybackMixin:
    """The transport controls of a sampling run, the same in every view that shows one."""

    def active(self) -> bool:
        """A run has started and is neither finished nor stopped."""
        return self.worker is not None and self.worker.isRunning() and not self.worker.completed

    def play_pause(self) -> None:
        if not self.active():
            self._start(playing=True)
        elif self.worker.playing:
            self.worker.pause()
            self.controls.set_playing(False)
        else:
            self.worker.set_rate(self.controls.rate)
            self.worker.play()
            self.controls.set_playing(True)

    def step(self, count: int = 1) -> None:
        worker = self.worker if self.active() else self._start(playing=False)
        if worker is not None:
            worker.step(count)
            self.controls.set_playing(False)

    def run_to_end(self) -> None:
        worker = self.worker if self.active() else self._start(playing=True)
        if worker is not None:
            worker.run_to_end()
            self._pace_repaints(True)
            self.controls.set_playing(True)

    def _pace_repaints(self, flat_out: bool) -> None:
        """Repaint less often when the run goes flat out (a view may override)."""

    def shutdown(self) -> None:
        self.stop()

    def _on_failed(self, message: str, details: str) -> None:
        self.context.notify(message, "error", details, source=self.loaded.name if self.loaded else "")
        self.controls.set_playing(False)

    def _on_finished(self, _serial: int) -> None:
        if self.worker is None or not self.worker.completed:
            return
        self._repaint()
        self.controls.set_playing(False)
        self.timer.stop()

    def _repaint(self) -> None:
        worker = self.worker
        frame = worker.latest if worker is not None else None
        if frame is not None and (self.frame is None or frame.serial != self.frame.serial):
            self._render(frame)


__all__ = ["PlaybackMixin"]
