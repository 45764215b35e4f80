"""The Fisher view: without a Fisher space it says how to make one and makes it in the background (stoppable);
with one, it interpolates between the two images in three spaces and names the nearest test images."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from checkpoint_factory import save_tiny  # noqa: E402

from app.ui.context import SentImage  # noqa: E402
from app.ui.workers import running_workers  # noqa: E402


@pytest.fixture
def fisher_setup(checkpoint_dir, tiny_binarized, monkeypatch):
    monkeypatch.setenv("AR_EXPLORER_DATA", str(tiny_binarized))
    info = save_tiny(checkpoint_dir, "tiny-gated", "gated-pixelcnn")
    return checkpoint_dir, info


def fisher_view(window):
    return window.show_view("fisher")


def test_without_a_space_it_says_so_and_makes_one(make_window, fisher_setup, wait_for):
    folder, _ = fisher_setup
    view = fisher_view(make_window("tiny-gated"))
    wait_for(lambda: "no Fisher decoder" in view.space_label.text())
    assert view.make_button.isEnabled() and not view.run()
    assert "make it first" in view.status.text()
    view.images.setValue(100)
    view.make_space()
    assert not view.make_button.isEnabled() and view.stop_button.isEnabled()
    wait_for(lambda: view.space is not None, timeout=60000)
    assert (folder / "tiny-gated.fisher-decoder.safetensors").is_file()
    assert "decoders trained on 100 training images" in view.space_label.text()
    view.load_test_image(view.slot_a, 2)
    view.load_test_image(view.slot_b, 5)
    view.run()
    wait_for(lambda: view.result is not None and view.status.text().startswith("test image #2"))
    result = view.result
    np.testing.assert_array_equal(result.pixel[0], view.slot_a.canvas.values.astype(np.float32))
    np.testing.assert_array_equal(result.pixel[-1], view.slot_b.canvas.values.astype(np.float32))
    assert result.nearest[0, 0] == 2 and result.nearest[-1, 0] == 5  # both are among the reference test images
    assert "test image #" in view.nearest.text() and "standardised Fisher space" in view.nearest.text()
    assert view.strips.image.shape[0] > 4 * 28 * 2


def test_stopping_the_making_writes_nothing(make_window, fisher_setup, wait_for):
    folder, _ = fisher_setup
    view = fisher_view(make_window("tiny-gated"))
    view.images.setValue(200)
    view.make_space()
    view.builder.cancel()
    wait_for(lambda: not view.builder.running and view.make_button.isEnabled())
    assert "stopped" in view.status.text()
    assert not (folder / "tiny-gated.fisher-decoder.safetensors").exists()
    assert view.space is None


def test_a_late_space_lookup_does_not_free_the_buttons_of_a_making(make_window, fisher_setup, wait_for):
    view = fisher_view(make_window("tiny-gated"))
    view.images.setValue(200)
    view.make_space()
    view._on_failed("space", "no Fisher space for tiny-gated", "")  # the lookup answering while the making runs
    assert not view.make_button.isEnabled() and view.stop_button.isEnabled()
    view.builder.cancel()
    wait_for(lambda: view.make_button.isEnabled())
    assert view.status.text().startswith("stopped")


def test_an_existing_space_is_used_at_once_and_images_arrive_from_other_views(make_window, fisher_setup, wait_for):
    from app.core.fisher import DecoderTraining, FisherSettings, build_space_steps, space_path, weights_sha256
    from app.core.session import Session

    folder, info = fisher_setup
    session = Session(device="cpu")
    loaded = session.load(info.weights)
    train = session.split("binarized-mnist", "train", 60).images
    reference = session.split("binarized-mnist", "test", 10).images
    events = list(build_space_steps(loaded.model, train, reference, FisherSettings(dim=16),
                                    DecoderTraining(hidden=16, epochs=2),
                                    {"checkpoint_sha256": weights_sha256(info.weights), "checkpoint": "tiny-gated"}))
    events[-1].result.save(space_path(info.weights))
    view = fisher_view(make_window("tiny-gated"))
    wait_for(lambda: view.result is not None)  # two test images, interpolated as soon as the space is there
    assert view.space.settings.dim == 16
    view.slot_a.set_image(np.zeros((1, 28, 28), np.uint8), "a blank canvas")
    sent = np.zeros((1, 28, 28), np.uint8)
    sent[0, 10:18, 12:16] = 1
    view.receive_image(SentImage(sent, "a sample"))
    np.testing.assert_array_equal(view.slot_a.canvas.values, sent)
    view.receive_image(SentImage(1 - sent, "its negative"))
    np.testing.assert_array_equal(view.slot_b.canvas.values, 1 - sent)


def test_closing_while_making_joins_the_workers(make_window, fisher_setup, wait_for):
    window = make_window("tiny-gated")
    view = fisher_view(window)
    view.images.setValue(2000)
    view.make_space()
    wait_for(lambda: view.builder.latest is not None)
    window.close()
    assert running_workers() == []
