"""The Sample view: a run fills every pixel, the plot follows the step, pause and step do what they say,
and closing mid-run leaves no thread."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from event_loop import pump  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.ui.rendering import tile_rgb  # noqa: E402
from app.ui.views.qt_sample_controls import SPEED_STEPS  # noqa: E402
from app.ui.workers import running_workers  # noqa: E402


def sample_view(window, count: int = 2, speed: int | None = None):
    view = window.show_view("sample")
    view.controls.count.setValue(count)
    if speed is not None:
        view.controls.speed.setValue(speed)
    return view


def test_a_run_completes_every_pixel_and_ends_with_the_nll_of_each_sample(make_window, tiny_checkpoints, wait_for):
    window = make_window("small-pixelcnn")
    view = sample_view(window, count=3, speed=SPEED_STEPS + 1)
    view.run_to_end()
    wait_for(lambda: view.worker is not None and view.worker.completed and not view.worker.isRunning())
    wait_for(lambda: view.frame is not None and view.frame.step.done)
    step = view.frame.step
    assert step.total == 8 * 8 and step.image.shape == (3, 1, 8, 8)
    assert view.frame.drawn.all()
    # what is on screen is the final canvas, tiled
    expected = tile_rgb(step.image, 2, view.layout_grid, view.frame.drawn)
    np.testing.assert_array_equal(view.grid.image, expected)
    # at the end, the bars are -log p(sample) of each image under the model: the score of the finished canvas
    from app.core.scoring import score

    expected_nll = score(view.loaded.model, step.image.astype(np.float32)).nll_nats
    np.testing.assert_allclose(view.plot.heights, expected_nll, rtol=1e-4)
    np.testing.assert_allclose(view.frame.nll, expected_nll, rtol=1e-4)
    assert "nats per image" in view.pixel_label.text() and "bits/dim" in view.pixel_label.text()
    assert "done: step 64 of 64" in view.status.text()


def test_pause_and_step_advance_exactly(make_window, tiny_checkpoints, wait_for):
    window = make_window("tiny-gated")
    view = sample_view(window, count=2)
    view.step(1)
    wait_for(lambda: view.frame is not None)
    assert view.frame.step.index == 0 and not view.worker.playing
    view.step(4)
    wait_for(lambda: view.frame.step.index == 4)
    view.step_row()  # to the end of row 0
    wait_for(lambda: view.frame.step.index == 27)
    assert view.frame.drawn[0].all() and not view.frame.drawn[1:].any()
    position = tuple(view.frame.step.positions[0])
    assert position == (0, 0, 27)
    np.testing.assert_allclose(view.plot.heights, view.frame.step.probs[:, 0, 1])
    assert "row 0, col 27" in view.pixel_label.text()
    # paused: nothing moves
    pump(300)
    assert view.frame.step.index == 27
    view.stop()


def test_play_then_pause_stops_advancing(make_window, tiny_checkpoints, wait_for):
    window = make_window("tiny-pixelcnn")
    view = sample_view(window, count=1, speed=20)  # 100 pixels/s
    view.play_pause()
    wait_for(lambda: view.frame is not None and view.frame.step.index >= 3)
    view.play_pause()  # pause
    assert not view.worker.playing
    pump(100)
    paused_at = view.frame.step.index
    pump(400)
    assert view.frame.step.index == paused_at
    view.play_pause()  # resume
    wait_for(lambda: view.frame.step.index > paused_at + 2)
    view.stop()
    assert not view.worker.isRunning()


def test_keyboard_shortcuts_drive_the_run(make_window, tiny_checkpoints, wait_for, qtbot):
    window = make_window("small-pixelcnn")
    view = sample_view(window, count=1)
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=3000)
    keys = {name: [s.toString() for s in action.shortcuts()] for name, action in view._actions.items()}
    assert keys["play"] == ["Space"] and "Right" in keys["step"] and "S" in keys["step"]
    assert "End" in keys["end"] and "Esc" in keys["stop"]
    qtbot.keyClick(window, Qt.Key.Key_Right)
    wait_for(lambda: view.frame is not None and view.frame.step.index == 0)
    qtbot.keyClick(window, Qt.Key.Key_S)
    wait_for(lambda: view.frame.step.index == 1)
    qtbot.keyClick(window, Qt.Key.Key_End)
    wait_for(lambda: view.worker.completed)
    assert view.frame is not None


def test_a_new_temperature_restarts_a_playing_run(make_window, tiny_checkpoints, wait_for):
    window = make_window("tiny-pixelcnn")
    view = sample_view(window, count=1, speed=25)
    view.play_pause()
    wait_for(lambda: view.frame is not None and view.frame.step.index >= 2)
    first = view.worker
    view.controls.temperature.setValue(250)
    wait_for(lambda: view.worker is not first)
    assert not first.isRunning()
    wait_for(lambda: view.frame is not None)
    wait_for(lambda: "temperature 2.50" in view.status.text())  # the status names the new run's temperature
    wait_for(lambda: view.frame.step.tempered is not None and
             not np.allclose(view.frame.step.tempered, view.frame.step.probs))
    # what the new run draws from is the model's conditional at T = 2.5, not at the old temperature
    import torch

    from app.core.likelihoods import apply_temperature

    step = view.frame.step
    expected = apply_temperature(torch.as_tensor(step.probs, dtype=torch.float64), 2.5).numpy()
    np.testing.assert_allclose(step.tempered, expected, rtol=1e-4, atol=1e-6)
    view.stop()


def test_closing_the_window_mid_run_joins_the_worker(make_window, tiny_checkpoints, wait_for):
    window = make_window("tiny-gated")
    view = sample_view(window, count=4, speed=10)  # slow: certainly still running
    view.play_pause()
    wait_for(lambda: view.frame is not None)
    worker = view.worker
    assert worker.isRunning()
    window.close()
    assert not worker.isRunning()
    assert running_workers() == []


def test_leaving_a_settings_box_keeps_the_finished_images(make_window, tiny_checkpoints, wait_for):
    window = make_window("small-pixelcnn")
    view = sample_view(window, count=3, speed=SPEED_STEPS + 1)
    view.run_to_end()
    wait_for(lambda: view.frame is not None and view.frame.step.done and not view.worker.isRunning())
    finished = view.grid.image.copy()
    status = view.status.text()
    view.controls.count.editingFinished.emit()  # focus leaves the box, value unchanged: nothing happens
    view.controls.seed.editingFinished.emit()
    view.controls.temperature.setValue(view.controls.temperature.value() + 10)
    view.controls.temperature.setValue(view.controls.temperature.value() - 10)  # back where it was
    pump(500)  # past the slider's settling time
    np.testing.assert_array_equal(view.grid.image, finished)
    assert view.status.text() == status
    view.controls.seed.setValue(view.controls.seed.value() + 1)
    view.controls.seed.editingFinished.emit()  # a new seed: said, and the finished images stay
    assert "next run" in view.status.text()
    np.testing.assert_array_equal(view.grid.image, finished)
    view.controls.count.setValue(4)
    view.controls.count.editingFinished.emit()  # a new image count: the grid is redrawn blank for it
    assert view.layout_grid.count == 4 and not (view.grid.image == 255).all(-1).any()
