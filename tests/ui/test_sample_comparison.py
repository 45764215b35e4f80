"""Naive and cached sampling side by side in the Sample view: two grids on the same seed fill with the same
digits, each with its own network calls and time per call, driven together by play, step and stop."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from checkpoint_factory import save_tiny  # noqa: E402

from app.core.sampling import SampleStep  # noqa: E402
from app.core.session_file import SamplingSettings, SessionState  # noqa: E402
from app.ui.views.qt_sample_controls import SPEED_STEPS  # noqa: E402
from app.ui.views.qt_sampler_comparison import COMPARE, SamplerPair, verdict  # noqa: E402
from app.ui.workers import Frame  # noqa: E402


def compare_view(window, count: int):
    view = window.show_view("sample")
    c = view.controls
    c.count.setValue(count)
    c.seed.setValue(321)
    index = c.mode.findData(COMPARE)
    assert index >= 0 and c.mode.itemText(index) == "naive vs cached"
    c.mode.setCurrentIndex(index)
    c.mode.activated.emit(index)  # as a user's choice does
    return view


def test_both_grids_draw_the_same_digits_and_say_what_each_cost(make_window, tiny_checkpoints, wait_for):
    window = make_window("small-pixelcnn")
    view = compare_view(window, count=3)
    assert view.grids.currentWidget() is view.comparison, "two grids as soon as the mode is chosen"
    view.controls.speed.setValue(SPEED_STEPS + 1)
    view.run_to_end()
    assert isinstance(view.worker, SamplerPair)
    wait_for(lambda: view.worker.completed and not view.worker.isRunning())
    wait_for(lambda: "identical" in view.comparison.verdict.text())
    naive, fast = view.worker.frames()
    np.testing.assert_array_equal(naive.step.image, fast.step.image)
    grids = view.comparison.grids
    np.testing.assert_array_equal(grids["naive"].image, grids["fast"].image)
    # ... and they are the digits a single run with that seed draws
    from app.core.sampling import sample

    expected = sample(view.loaded.model, 3, seed=321, temperature=1.0).cpu().numpy()
    np.testing.assert_array_equal(fast.step.image, expected)
    for side in ("naive", "fast"):
        line = view.comparison.lines[side].text()
        assert line.startswith("done of 64") and "64 network calls" in line and "ms per call" in line
    assert "Same seed, same pixels: all 3 images are identical" in view.comparison.verdict.text()
    assert "Cached sampling took" in view.comparison.verdict.text()
    assert "done: both at step 64 of 64" in view.status.text()


def test_step_and_pause_drive_both_runs(make_window, tiny_checkpoints, wait_for):
    window = make_window("small-pixelcnn")
    view = compare_view(window, count=2)
    view.step(5)
    wait_for(lambda: all(f is not None and f.step.index == 4 for f in view.worker.frames()))
    wait_for(lambda: "step 5 of 64" in view.comparison.lines["naive"].text())
    for side in ("naive", "fast"):
        assert "5 network calls" in view.comparison.lines[side].text()
        assert "paused" in view.comparison.lines[side].text()
    assert view.worker.naive.isRunning() and view.worker.fast.isRunning() and not view.worker.playing
    view.stop()
    assert not view.worker.naive.isRunning() and not view.worker.fast.isRunning()


def test_back_to_one_sampler_shows_one_grid(make_window, tiny_checkpoints):
    window = make_window("small-pixelcnn")
    view = compare_view(window, count=2)
    c = view.controls
    index = c.mode.findData("cached")
    c.mode.setCurrentIndex(index)
    c.mode.activated.emit(index)
    assert view.grids.currentWidget() is view.grid


def test_a_model_without_a_fast_sampler_offers_no_comparison(make_window, checkpoint_dir):
    save_tiny(checkpoint_dir, "tiny-made", "made", shape=(1, 8, 8))
    window = make_window("tiny-made")
    controls = window.views["sample"].controls
    assert controls.mode.findData(COMPARE) < 0


def test_the_comparison_is_kept_in_a_session(make_window, tiny_checkpoints, wait_for):
    window = make_window("small-pixelcnn")
    view = window.views["sample"]
    notes = view.restore_session(SessionState(sampling=SamplingSettings(seed=8, images=2, mode=COMPARE,
                                                                        run="paused", step=3)))
    assert notes == [] and view.grids.currentWidget() is view.comparison
    window.show_view("sample")
    wait_for(lambda: isinstance(view.worker, SamplerPair) and all(
        f is not None and f.step.index == 2 for f in view.worker.frames()))
    assert view.session_state()["sampling"].mode == COMPARE
    view.stop()


def frame(images: np.ndarray, busy: float) -> Frame:
    n = images.shape[0]
    step = SampleStep(0, 1, np.zeros(1, int), np.zeros((1, 3), int), np.zeros((n, 1, 2)), np.zeros((n, 1, 2)),
                      np.zeros((n, 1), int), images, False, 1, busy)
    return Frame(step, np.ones(images.shape[2:], bool), 0, None, busy)


def test_the_verdict_says_when_the_fast_sampler_does_not_draw_what_naive_sampling_draws():
    a = np.zeros((3, 1, 2, 2), np.uint8)
    b = a.copy()
    b[1, 0, 0, 0] = b[2, 0, 1, 1] = 1
    text, same = verdict(frame(a, 12.0), frame(b, 0.5), "cached")
    assert not same and text.startswith("2 of 3 images differ: the cached sampler does not draw")
    text, same = verdict(frame(a, 12.0), frame(a, 0.5), "cached")
    assert same and "(24x less; running at once" in text and "naive 12.00 s" in text
