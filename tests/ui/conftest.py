"""GUI test fixtures: tiny checkpoints in a temporary folder, and a fresh window per test that fails the test
if it leaves a worker thread running or a top-level widget behind (as napari's ``make_napari_viewer`` does)."""

from __future__ import annotations

import argparse
import importlib.util
import time

import numpy as np
import pytest

if importlib.util.find_spec("PySide6") is None or importlib.util.find_spec("pytestqt") is None:
    collect_ignore_glob = ["test_*.py"]
else:
    from PySide6.QtCore import QCoreApplication, QEvent, Qt
    from PySide6.QtWidgets import QApplication

from checkpoint_factory import save_tiny  # noqa: E402
from event_loop import pump  # noqa: E402


@pytest.fixture
def checkpoint_dir(tmp_path, monkeypatch):
    """An empty user checkpoint folder, and no shipped checkpoints (tests never depend on which exist)."""
    import plugins.checkpoints

    folder = tmp_path / "checkpoints"
    folder.mkdir()
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    monkeypatch.setattr(plugins.checkpoints, "SHIPPED", shipped)
    monkeypatch.setenv("AR_EXPLORER_CHECKPOINTS", str(folder))
    return folder


@pytest.fixture
def tiny_checkpoints(checkpoint_dir):
    """Tiny PixelCNN and Gated PixelCNN checkpoints of 28x28 binary images (the PixelCNN with recorded test
    quantiles), and an 8x8 PixelCNN for runs that must reach the end quickly."""
    quantiles = np.linspace(300.0, 700.0, 101)
    infos = {"tiny-pixelcnn": save_tiny(checkpoint_dir, "tiny-pixelcnn", "pixelcnn", quantiles=quantiles),
             "tiny-gated": save_tiny(checkpoint_dir, "tiny-gated", "gated-pixelcnn"),
             "small-pixelcnn": save_tiny(checkpoint_dir, "small-pixelcnn", "pixelcnn", shape=(1, 8, 8))}
    return infos


def _args(**overrides) -> argparse.Namespace:
    values = {"screenshot": None, "view": None, "after": 0.0, "checkpoint": None, "device": "cpu", "scale": None,
              "debug": False, "strict_plugins": False}
    values.update(overrides)
    return argparse.Namespace(**values)


@pytest.fixture
def make_window(qtbot, tmp_path):
    """``make_window(checkpoint=..., **args)`` opens a fresh main window; on teardown it closes every window
    and fails the test if a worker thread still runs or a new top-level widget is left."""
    from app.ui.launch import build
    from app.ui.preferences import Preferences
    from app.ui.workers import running_workers

    before = set(QApplication.topLevelWidgets())
    windows = []

    def factory(checkpoint: str | None = "tiny-gated", preferences: Preferences | None = None, **overrides):
        prefs = preferences or Preferences(tmp_path / "ui.ini")
        window, context = build(_args(checkpoint=checkpoint, **overrides), prefs)
        window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        windows.append(window)
        window.show()
        qtbot.waitExposed(window)
        return window

    yield factory
    for window in windows:
        try:
            window.close()
        except RuntimeError:  # already deleted by the test
            pass
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)
    QApplication.processEvents()
    leaked_threads = running_workers()
    for worker in leaked_threads:  # do not let one test's thread crash the next
        worker.stop_and_wait(5000)
    leaked = [w for w in QApplication.topLevelWidgets() if w not in before and w.isVisible()]
    for widget in leaked:
        widget.close()
    assert not leaked_threads, f"worker threads left running: {leaked_threads}"
    assert not leaked, f"top-level widgets left open: {[type(w).__name__ for w in leaked]}"


@pytest.fixture
def wait_for():
    """``wait_for(condition, timeout_ms)``: process events until ``condition()`` is true, else fail."""

    def wait(condition, timeout: int = 30000):
        deadline = time.perf_counter() + timeout / 1000
        while not condition():
            if time.perf_counter() > deadline:
                raise AssertionError(f"timed out after {timeout} ms waiting for {condition.__doc__ or condition}")
            pump(5)

    return wait
