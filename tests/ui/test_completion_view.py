"""The Complete view: presets and brushes mark the known region, completions keep it exactly, live edits restart
them, bad regions are refused with the reason, and closing mid-run leaves no thread."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from checkpoint_factory import save_tiny  # noqa: E402
from PIL import Image  # noqa: E402

from app.core.completion import mask_preset  # noqa: E402
from app.ui.workers import running_workers  # noqa: E402


@pytest.fixture
def completion_checkpoints(checkpoint_dir):
    return {
        "tiny-any": save_tiny(checkpoint_dir, "tiny-any", "any-order-attention", shape=(1, 8, 8)),
        "small-pixelcnn": save_tiny(checkpoint_dir, "small-pixelcnn", "pixelcnn", shape=(1, 8, 8)),
    }


def completion_view(window):
    view = window.show_view("complete")
    view.live.setChecked(False)
    view.stop()
    return view


def _digit():
    image = np.zeros((1, 8, 8), dtype=np.uint8)
    image[0, 1:7, 3:5] = 1
    return image


def test_completions_keep_the_known_pixels(make_window, completion_checkpoints, wait_for):
    view = completion_view(make_window("tiny-any"))
    view.set_image(_digit(), "a drawn 1")
    view.set_preset("left-half")
    view.count.setValue(5)
    assert view.complete()
    wait_for(lambda: view.completions is not None)
    known = mask_preset("left-half", 8, 8)
    completions = view.completions
    assert completions.shape == (5, 1, 8, 8)
    np.testing.assert_array_equal(completions[:, 0][:, known], np.broadcast_to(_digit()[0][known], (5, 32)))
    wait_for(lambda: "done" in view.status.text())
    assert "32 of 64 pixels known" in view.status.text()
    np.testing.assert_array_equal(view.results.image[1:9, 1:9, 0], completions[0, 0] * 255)


def test_the_brush_marks_and_unmarks_known_pixels(make_window, completion_checkpoints):
    view = completion_view(make_window("tiny-any"))
    view.set_preset("bottom-half")
    view.unmark.setChecked(True)
    view.mask.brush_size = 1
    view.mask.stroke([(6, 6)], finished=True)
    assert not view.mask.known[6, 6] and view.mask.known[6, 5]
    view.mark.setChecked(True)
    view.mask.stroke([(0, 0)], finished=True)
    assert view.mask.known[0, 0]
    rgb = view.mask.item.image  # the unknown region shows tinted blue, the known one as it is
    assert rgb[1, 1, 2] > rgb[1, 1, 0] and rgb[0, 0, 2] == rgb[0, 0, 0]


def test_an_empty_known_region_is_refused_with_the_reason(make_window, completion_checkpoints):
    view = completion_view(make_window("tiny-any"))
    view.mask.erase_all()
    assert not view.complete()
    assert "empty" in view.status.text()
    assert view.worker is None or not view.worker.isRunning()


def test_live_mode_restarts_after_a_stroke(make_window, completion_checkpoints, wait_for):
    view = completion_view(make_window("tiny-any"))
    view.live.setChecked(True)
    view.set_preset("top-half")
    wait_for(lambda: view.completions is not None)
    first = view.worker
    view.canvas.stroke([(1, 1)], finished=True)  # a change to the known half
    wait_for(lambda: view.worker is not first and view.completions is not None)
    assert (view.completions[:, 0, 1, 1] == 1).all()


def test_a_fixed_ordering_model_notes_what_it_cannot_see(make_window, completion_checkpoints, wait_for):
    view = completion_view(make_window("small-pixelcnn"))
    assert "raster" in view.notes.text()
    view.set_image(_digit(), "a drawn 1")
    view.set_preset("bottom-half")
    assert view.complete()
    assert "before it" in view.status.text()
    wait_for(lambda: view.completions is not None)
    np.testing.assert_array_equal(view.completions[:, 0, 4:], np.broadcast_to(_digit()[0, 4:], (8, 4, 8)))


def test_a_loaded_file_becomes_the_image_and_a_bad_one_changes_nothing(make_window, completion_checkpoints, tmp_path):
    view = completion_view(make_window("tiny-any"))
    path = tmp_path / "digit.png"
    Image.fromarray((_digit()[0] * 255).astype(np.uint8)).save(path)
    assert view.load_file(path)
    np.testing.assert_array_equal(view.canvas.values, _digit())
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    assert not view.load_file(junk)
    np.testing.assert_array_equal(view.canvas.values, _digit())
    assert "not an image" in view.status.text()


def test_closing_mid_run_joins_the_worker(make_window, completion_checkpoints, wait_for):
    window = make_window("tiny-any")
    view = completion_view(window)
    view.count.setValue(16)
    view.complete()
    worker = view.worker
    window.close()
    assert not worker.isRunning() and running_workers() == []
