"""The shared app context that every view receives: session, current model, signals, notices.

A view never loads checkpoints or moves models itself: it asks the context, which stops every registered
worker first (so no thread ever runs a model while it changes) and then tells every view through
:attr:`AppContext.model_changed`. See ``docs/ui-views.md``.
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from PySide6.QtCore import QObject, Signal

from app.core.checkpoints import CheckpointInfo
from app.core.devices import describe_device, resolve_device
from app.core.errors import ARExplorerError
from app.core.session import LoadedModel, Session
from app.ui.preferences import Preferences
from app.ui.workers import describe_exception


@dataclass
class Notice:
    """A non-modal notification: ``level`` is ``error``, ``warning`` or ``info``."""

    message: str
    level: str = "error"
    details: str = ""
    source: str = ""
    time: float = field(default_factory=time.time)


@dataclass
class SentImage:
    """An image handed from one view to another (``values`` ``(C, H, W)`` in the model's values)."""

    values: np.ndarray
    label: str
    position: tuple[int, int, int] | None = None


class Stoppable(Protocol):
    """A worker the context can quiesce before the model changes, and stop when the window closes."""

    def stop_and_wait(self, timeout_ms: int = 10000) -> bool: ...


class AppContext(QObject):
    """Session + current model + notices, shared by the main window and every view."""

    model_changed = Signal(object)  # LoadedModel or None
    device_changed = Signal(str)  # a description of the device in use
    scale_changed = Signal(float)
    noticed = Signal(object)  # Notice
    image_sent = Signal(str, object)  # target view name, SentImage
    checkpoints_changed = Signal()

    def __init__(self, session: Session, preferences: Preferences | None = None, scale: float = 1.0, parent=None):
        super().__init__(parent)
        self.session = session
        self.preferences = preferences or Preferences()
        self.loaded: LoadedModel | None = None
        self.scale = scale
        self.notices: list[Notice] = []
        self._checkpoints: list[CheckpointInfo] | None = None
        self._cache: dict[str, LoadedModel] = {}
        self._stamps: dict[str, tuple] = {}  # the files each cached checkpoint was read from, as they were
        self._cache_lock = threading.Lock()
        self._quiescers: list = []

    # -- checkpoints ---------------------------------------------------------------------------------------
    def checkpoints(self, refresh: bool = False) -> list[CheckpointInfo]:
        if self._checkpoints is None or refresh:
            self._checkpoints = self.session.checkpoints()
            if refresh:
                self.checkpoints_changed.emit()
        return self._checkpoints

    def load(self, ref: str) -> bool:
        """Make ``ref`` (a checkpoint name or path) the current model; on failure keep the old one and say why."""
        self.quiesce()
        try:
            loaded = self._load_cached(ref)
        except Exception as exc:  # noqa: BLE001 - a plugin's model may raise anything while it is built
            self.report(exc, f"cannot open {ref}")
            return False
        self.loaded = loaded
        for note in loaded.notes:
            self.notify(note, "warning", source=loaded.name)
        self.preferences.checkpoint = loaded.name if loaded.info.weights.parent in self._dirs() else str(ref)
        self.model_changed.emit(loaded)
        return True

    def model(self, name: str) -> LoadedModel:
        """A loaded checkpoint by name, loaded once and kept (safe to call from a worker thread)."""
        return self._load_cached(name)

    def _load_cached(self, ref: str) -> LoadedModel:
        """The cached checkpoint, unless its files changed since (``train --resume`` or ``eval`` wrote them):
        then it is read again, so that what the app shows is what the files hold."""
        with self._cache_lock:
            cached = self._cache.get(ref)
            if cached is not None and _stamp(cached.info) == self._stamps.get(ref):
                return cached
            loaded = self.session.load(ref)
            self._cache[ref], self._stamps[ref] = loaded, _stamp(loaded.info)
            return loaded

    def _dirs(self) -> list:
        return list(self.session.registry.checkpoint_dirs)

    # -- device --------------------------------------------------------------------------------------------
    def device_text(self) -> str:
        return describe_device(self.session.device)

    def set_device(self, name: str) -> bool:
        """Run every model on ``name`` (auto, cpu, cuda, mps) from now on; refuse an unavailable one."""
        try:
            device = resolve_device(name)
        except ARExplorerError as exc:
            self.notify(str(exc), "warning")
            return False
        self.quiesce()
        self.session.device = device
        with self._cache_lock:
            for loaded in self._cache.values():
                loaded.model.to(device)
        self.preferences.device = name
        self.device_changed.emit(self.device_text())
        if self.loaded is not None:
            self.model_changed.emit(self.loaded)
        return True

    # -- scale ---------------------------------------------------------------------------------------------
    def set_scale(self, scale: float) -> None:
        self.scale = float(scale)
        self.preferences.scale = self.scale
        self.scale_changed.emit(self.scale)

    # -- notices -------------------------------------------------------------------------------------------
    def notify(self, message: str, level: str = "error", details: str = "", source: str = "") -> Notice:
        """Show a non-modal notice (never a blocking dialog)."""
        notice = Notice(message, level, details, source)
        self.notices.append(notice)
        self.noticed.emit(notice)
        return notice

    def report(self, exc: BaseException, what: str = "") -> Notice:
        """An exception as a notice: the core's message as it is, with the traceback behind "details"."""
        message = describe_exception(exc)
        details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return self.notify(f"{what}: {message}" if what else message, "error", details)

    # -- workers -------------------------------------------------------------------------------------------
    def register_quiescer(self, callback) -> None:
        """``callback()`` stops a view's work before the model or device changes (it must return promptly)."""
        self._quiescers.append(callback)

    def quiesce(self) -> None:
        for callback in list(self._quiescers):
            try:
                callback()
            except Exception as exc:  # noqa: BLE001
                self.report(exc, "stopping a view's work")

    # -- views talking to each other -----------------------------------------------------------------------
    def send_image(self, view: str, values: np.ndarray, label: str, position: tuple[int, int, int] | None = None):
        """Hand an image to another view (``score``, ``inspect``, ...): the main window shows that view."""
        self.image_sent.emit(view, SentImage(np.asarray(values).copy(), label, position))


def _stamp(info: CheckpointInfo) -> tuple:
    """When and how big the weights and the metadata beside them were last written."""
    stamp = []
    for path in (info.weights, info.json_path):
        try:
            stat = path.stat()
        except OSError:
            stamp.append(None)
        else:
            stamp.append((stat.st_mtime_ns, stat.st_size))
    return tuple(stamp)


__all__ = ["AppContext", "Notice", "SentImage", "Stoppable"]
