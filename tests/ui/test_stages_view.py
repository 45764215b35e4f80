"""The Stages view: multiscale grids fill in 55 network calls, the hierarchy shows its grey then its colour
stage, the class and 7x7 conditions are inputs, and closing mid-run leaves no thread."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402

from app.core.conditions import derive_condition  # noqa: E402
from app.ui.rendering import grid_layout, tile_rgb  # noqa: E402
from app.ui.views.qt_sample_controls import SPEED_STEPS  # noqa: E402

FAST_MULTISCALE = {"base": 7, "base_channels": 8, "base_layers": 1, "base_kernel": 3, "channels": 8,
                   "dilations": [1, 2]}


def _save(folder, name, model_name, shape, num_values=2, hparams=None, tiny=True, dataset="mnist-threshold"):
    import torch

    from app.core.checkpoints import save_checkpoint
    from app.core.registry import get_registry

    spec = get_registry().model(model_name)
    torch.manual_seed(0)
    model = spec.create(spec.make_config(shape, num_values, hparams, tiny=tiny))
    return save_checkpoint(model, folder / name, {"dataset": dataset, "binarization": "test data"})


def stages_view(window, count=2):
    view = window.show_view("stages")
    view.controls.count.setValue(count)
    view.controls.speed.setValue(SPEED_STEPS + 1)
    return view


def run_to_end(view, wait_for):
    view.run_to_end()
    wait_for(lambda: view.worker is not None and view.worker.completed and not view.worker.isRunning())
    wait_for(lambda: view.frame is not None and view.frame.step.done)
    return view.frame.step


def test_multiscale_stages_fill_in_55_network_calls(make_window, checkpoint_dir, wait_for):
    _save(checkpoint_dir, "ms", "multiscale-pixelcnn", (1, 28, 28), hparams=FAST_MULTISCALE, tiny=False)
    view = stages_view(make_window("ms"), count=3)
    assert [p.stage.name for p in view.panels] == ["7x7 base grid", "14x14", "28x28"]
    assert "55 network calls" in view.header.text() and "784" in view.header.text()
    view.step(49)  # the whole base grid, pixel by pixel
    wait_for(lambda: view.frame is not None and view.frame.step.index == 48)
    frame = view.frame.step
    assert frame.stage == 0 and frame.drawn[0].all() and frame.drawn[2].sum() == 49  # the base grid lies in all
    view.step_stage()  # the 14x14 grid: three calls of 49 pixels
    wait_for(lambda: view.frame.step.index == 51)
    assert view.frame.step.stage == 1 and view.frame.step.drawn[1].all()
    final = run_to_end(view, wait_for)
    assert final.network_calls == 55 and "done: 55 network calls" in view.status.text()
    image = final.step.image
    expected = tile_rgb(image, 2, grid_layout(3, 28, 28), np.ones((28, 28), bool))
    np.testing.assert_array_equal(view.panels[2].pixels.image, expected)
    # the coarser panels show the same samples, subsampled
    np.testing.assert_array_equal(final.images[1], image[:, :, ::2, ::2])
    # -log p of each sample, accumulated over the 55 calls, is the model's NLL of the finished image
    from app.core.scoring import score

    expected = score(view.loaded.model, image.astype(np.float32)).nll_nats
    np.testing.assert_allclose(view.frame.nll, expected, rtol=1e-4)
    assert f"{expected.mean():.1f} nats per image on average" in view.status.text()


def test_hierarchy_shows_the_grey_stage_then_the_colour_stage(make_window, checkpoint_dir, wait_for):
    _save(checkpoint_dir, "grey", "pixelcnn", (1, 6, 6), dataset="colour-mnist-grey")
    _save(checkpoint_dir, "colour", "colour-given-grey-pixelcnn", (3, 6, 6), num_values=4, dataset="colour-mnist")
    view = stages_view(make_window("colour"))
    assert [p.stage.name for p in view.panels] == ["grey stage", "colour stage"]
    assert "36 (grey stage) + 108 (colour stage) = 144 network calls" in view.header.text()
    view.step_stage()
    wait_for(lambda: view.frame is not None and view.frame.step.index == 35)
    assert view.frame.step.stage == 0 and view.frame.step.images[1] is None
    final = run_to_end(view, wait_for)
    grey, colour = final.images
    derived = derive_condition(view.loaded.model.config.condition, __import__("torch").as_tensor(colour).float(),
                               None, 4)
    np.testing.assert_array_equal(derived.numpy(), grey)  # every colour image has the grey image drawn first


def test_a_colour_stage_without_its_grey_stage_says_what_to_train(make_window, checkpoint_dir):
    _save(checkpoint_dir, "colour", "colour-given-grey-pixelcnn", (3, 6, 6), num_values=4, dataset="colour-mnist")
    window = make_window("colour")
    view = stages_view(window)
    assert view.staged is None and not view.panels
    assert any("colour-mnist-grey" in n.message for n in window.context.notices)


def test_superres_condition_is_a_7x7_input(make_window, checkpoint_dir, wait_for):
    _save(checkpoint_dir, "sr", "superres-gated-pixelcnn", (1, 14, 14), dataset="synthetic-digits")
    view = stages_view(make_window("sr"))
    low = view.condition.low
    assert view.condition.editing and low.values.shape == (1, 7, 7)
    low.clear()
    low.view.click_pixel(3, 4)
    low.view.click_pixel(3, 4)
    assert low.values[0, 3, 4] == 8 and low.values.sum() == 8
    low.view.click_pixel(3, 4, Qt.MouseButton.RightButton)
    assert low.values.sum() == 0
    low.view.click_pixel(2, 2)
    run_to_end(view, wait_for)
    assert view._cond.shape == (2, 1, 7, 7) and float(view._cond[:, 0, 2, 2].min()) == 4
    assert "miss the condition by" in view.status.text() and "2x2 block" in view.status.text()


def test_class_condition_comes_from_the_controls(make_window, checkpoint_dir, wait_for):
    _save(checkpoint_dir, "cls", "conditional-gated-pixelcnn", (1, 6, 6), dataset="synthetic-digits")
    view = stages_view(make_window("cls"))
    assert view.controls.label.count() == 10 and not view.condition.editing
    view.controls.label.setCurrentIndex(7)
    run_to_end(view, wait_for)
    assert view._cond.tolist() == [7, 7]


def test_closing_mid_run_leaves_no_thread(make_window, checkpoint_dir, wait_for):
    _save(checkpoint_dir, "ms", "multiscale-pixelcnn", (1, 28, 28), hparams=FAST_MULTISCALE, tiny=False)
    window = make_window("ms")
    view = stages_view(window)
    view.controls.speed.setValue(0)  # one step a second: still running when the window closes
    view.play_pause()
    wait_for(lambda: view.frame is not None)
    window.close()


def test_switching_checkpoints_in_the_tab_replaces_the_stage_panels(make_window, checkpoint_dir, tiny_checkpoints,
                                                                   wait_for):
    """The old panels stayed on screen and the new ones were drawn over them."""
    from event_loop import pump

    from app.ui.views.qt_stages_view import QtStagePanel

    _save(checkpoint_dir, "ms", "multiscale-pixelcnn", (1, 28, 28), hparams=FAST_MULTISCALE, tiny=False)
    window = make_window("ms")
    view = stages_view(window)
    assert len(view.panels) == 3
    for name, count in (("tiny-gated", 1), ("ms", 3), ("tiny-pixelcnn", 1)):
        window.toolbar.checkpoint_chosen.emit(name)  # as the picker does
        pump(20)
        shown = [panel for panel in view.findChildren(QtStagePanel) if panel.isVisible()]
        assert len(view.panels) == count and shown == view.panels, [p.stage.name for p in shown]


def test_a_plugins_staged_model_takes_part_in_stages(make_window, checkpoint_dir, wait_for, monkeypatch):
    monkeypatch.setenv("AR_EXPLORER_PLUGINS", "example_plugins.coarse_to_fine")
    _save(checkpoint_dir, "c2f", "coarse-to-fine", (1, 6, 6), dataset="synthetic-digits")
    view = stages_view(make_window("c2f"))
    assert [p.stage.name for p in view.panels] == ["coarse grid", "fine"]
    assert "9 (coarse grid) + 27 (fine) = 36 network calls" in view.header.text()
    view.step_stage()
    wait_for(lambda: view.frame is not None and view.frame.step.index == 8)
    assert view.frame.step.stage == 0 and view.frame.step.drawn[0].all()
    final = run_to_end(view, wait_for)
    np.testing.assert_array_equal(final.images[0], final.step.image[:, :, ::2, ::2])
    assert "done: 36 network calls" in view.status.text()
