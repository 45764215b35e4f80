"""The 1-D / 2-D demos view: live training draws the model's density over the data, the histogram fitted by
counting gives the unseen band infinite NLL, the 2-D model shows a density image, and closing mid-run
leaves no thread."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from app.core.toy_demos import model_density  # noqa: E402
from app.ui.views.qt_toy_view import nll_text  # noqa: E402


def toy_view(window, demo: str, steps: int | None = None):
    view = window.show_view("toy")
    assert view.choose(demo)
    if steps is not None:
        view.steps.setValue(steps)
    return view


def test_training_draws_the_model_density_over_the_data(make_window, checkpoint_dir, wait_for):
    window = make_window(checkpoint=None)
    view = toy_view(window, "dmol-1d", steps=60)
    # before training: the data and the shaded band, no model
    assert view.density_1d.band.isVisible()
    np.testing.assert_allclose(view.density_1d.train_bars.opts["height"], view.data.frequencies("train"))
    assert view.data.frequencies("train")[76:86].sum() == 0 and view.data.frequencies("test")[76:86].sum() > 0
    view.train()
    wait_for(lambda: view.frame is not None and view.frame.done and view.worker.idle())
    frame = view.frame
    assert frame.step == 60 and len(view.frames) >= 3  # a frame before the first step, on the way, at the end
    np.testing.assert_allclose(view.density_1d.model_heights, frame.density)
    assert frame.density.sum() == pytest.approx(1.0, abs=1e-5)
    # the mixture learns: the test NLL falls from the initial one, and the band keeps finite NLL
    assert frame.test_nll < view.frames[0].test_nll and math.isfinite(frame.band_nll)
    text = view.status.text()
    assert "done: step 60 of 60" in text and "toy-1d" in text and "nats" in text and "bits/dim" in text
    assert "unseen band 76..85" in text


def test_histogram_fitted_by_counting_gives_the_band_infinite_nll(make_window, checkpoint_dir, wait_for):
    window = make_window(checkpoint=None)
    view = toy_view(window, "histogram-1d")
    assert view.count_button.isEnabled()
    view.pseudo_count.setValue(0.0)
    view.fit_by_counting()
    wait_for(lambda: view.frame is not None and view.worker.idle())
    assert math.isinf(view.frame.band_nll)
    np.testing.assert_allclose(view.density_1d.model_heights, view.data.frequencies("train"), atol=1e-6)
    assert "maximum likelihood" in view.status.text() and "∞ nats" in view.status.text()
    view.pseudo_count.setValue(1.0)
    view.fit_by_counting()
    wait_for(lambda: view.frame is not None and "pseudo-count" in view.frame.fitted_by and view.worker.idle())
    assert math.isfinite(view.frame.band_nll) and "∞" not in view.status.text()


def test_two_dim_demo_shows_a_density_image_beside_the_data(make_window, checkpoint_dir, wait_for):
    window = make_window(checkpoint=None)
    view = toy_view(window, "ar2d", steps=30)
    assert view.densities.currentWidget() is view.density_2d and not view.count_button.isEnabled()
    view.train()
    wait_for(lambda: view.frame is not None and view.frame.done and view.worker.idle())
    table = view.density_2d.model_table
    assert table.shape == (40, 40) and table.sum() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_array_equal(view.density_2d.model_image.image, table.T.astype(np.float32))
    assert view.frame.band_nll is None and "unseen band" not in view.status.text()


def test_closing_mid_training_leaves_no_thread(make_window, checkpoint_dir, wait_for):
    window = make_window(checkpoint=None)
    view = toy_view(window, "histogram-1d", steps=100_000)
    view.train()
    wait_for(lambda: len(view.frames) >= 2)
    window.close()  # the fixture fails the test if the worker still runs


def test_stop_keeps_the_last_frame_on_screen(make_window, checkpoint_dir, wait_for):
    window = make_window(checkpoint=None)
    view = toy_view(window, "marginals-2d", steps=100_000)
    view.train()
    wait_for(lambda: len(view.frames) >= 3)
    view.stop()
    assert view.worker.idle() and view.frame is view.frames[-1] and view.frame.done
    assert view.frame.step < 100_000 and "done: step" in view.status.text()


def test_density_helper_and_nll_text():
    from app.core.registry import get_registry

    spec = get_registry().model("histogram")
    model = spec.create(spec.make_config((1, 1, 1), 5))
    np.testing.assert_allclose(model_density(model), np.full(5, 0.2), rtol=1e-6)
    assert nll_text(math.inf, 1).startswith("∞") and nll_text(math.log(2) * 3, 1) == "2.08 nats (3.00 bits/dim)"


def test_a_demo_checkpoint_opens_its_demo_with_its_own_density(make_window, checkpoint_dir, wait_for):
    from app.core.checkpoints import save_checkpoint
    from app.core.registry import Registry
    from app.core.toy_demos import build_model, load_demo_data

    registry = Registry()
    data = load_demo_data(registry.dataset("toy-2d"))
    model = build_model(registry.model("ar2d"), data, seed=3)
    save_checkpoint(model, checkpoint_dir / "my-ar2d", {"dataset": "toy-2d"})
    window = make_window(checkpoint="my-ar2d")
    view = window.show_view("toy")
    assert view.demo.name == "ar2d" and view.data.num_dims == 2
    assert view.frame is not None and view.frame.fitted_by == "the checkpoint my-ar2d"
    np.testing.assert_allclose(view.frame.density, model_density(model), rtol=1e-5, atol=1e-9)
    assert "the checkpoint my-ar2d" in view.status.text() and "toy-2d" in view.status.text()


def test_a_plugins_demo_appears_beside_the_built_in_ones(make_window, checkpoint_dir, monkeypatch):
    monkeypatch.setenv("AR_EXPLORER_PLUGINS", "example_plugins.extra_demo")
    view = make_window(checkpoint=None).show_view("toy")
    names = [view.demo_box.itemData(i) for i in range(view.demo_box.count())]
    assert names == ["histogram-1d", "dmol-1d", "ar2d", "marginals-2d", "slow-dmol-1d"]
    assert view.choose("slow-dmol-1d")
    assert view.lr.value() == pytest.approx(0.001) and view.steps.value() == 50
    assert view.data.band == (76, 86) and view.density_1d.band.isVisible()
    assert not view.count_button.isEnabled()  # a mixture has no fit by counting
