"""The Fisher view: without a Fisher space it says how to make one and makes it in the background (stoppable);
with one, it interpolates between the two images in three spaces, shows each row's mean interior NLL under the
model and names the nearest test images; switching checkpoints clears the strips."""

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
    assert "test image #" in view.nearest.text() and "64 test images" in view.nearest.text()
    for row in ("pixel", "activation", "fisher"):
        text = view.strips.nll_labels[row].text()
        assert "nats per image" in text and "bits/dim" in text
        assert f"{np.mean(result.interior_nll[row]):.1f}" in text
    assert "likeliest" in "".join(view.strips.nll_labels[r].text() for r in ("pixel", "activation", "fisher"))
    assert "binarized at 0.5" in view.strips.caption.text() and "Binarized MNIST" in view.strips.caption.text()
    assert view.strips.views["fisher"].image.shape[1] == 8 * 28 + 5 + 2 * 3  # A, 6 decoded points, B, gaps


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


def _make_space(info, labels=None):
    from app.core.fisher import DecoderTraining, FisherSettings, build_space_steps, space_path, weights_sha256
    from app.core.session import Session

    session = Session(device="cpu")
    loaded = session.load(info.weights)
    train = session.split("binarized-mnist", "train", 60).images
    reference = session.split("binarized-mnist", "test", 10).images
    events = list(build_space_steps(loaded.model, train, reference, FisherSettings(dim=16, components=4,
                                                                                   stats_images=8),
                                    DecoderTraining(hidden=16, epochs=2),
                                    {"checkpoint_sha256": weights_sha256(info.weights), "checkpoint": "tiny-gated"},
                                    reference_labels=labels, reference_indices=np.arange(100, 110)))
    events[-1].result.save(space_path(info.weights))
    return events[-1].result


def test_an_existing_space_is_used_at_once_and_images_arrive_from_other_views(make_window, fisher_setup, wait_for):
    _, info = fisher_setup
    _make_space(info, labels=np.array([0, 2, 2, 5, 9, 9, 1, 1, 3, 3]))
    view = fisher_view(make_window("tiny-gated"))
    wait_for(lambda: view.result is not None)  # two test images, interpolated as soon as the space is there
    assert view.space.settings.dim == 16
    # the default pair: two different digits, the lecture's 2 and 9, named by their index in the test split
    assert view.slot_a.source == "test image #101 (a 2)" and view.slot_b.source == "test image #104 (a 9)"
    view.slot_a.set_image(np.zeros((1, 28, 28), np.uint8), "a blank canvas")
    sent = np.zeros((1, 28, 28), np.uint8)
    sent[0, 10:18, 12:16] = 1
    view.receive_image(SentImage(sent, "a sample"))
    np.testing.assert_array_equal(view.slot_a.canvas.values, sent)
    view.receive_image(SentImage(1 - sent, "its negative"))
    np.testing.assert_array_equal(view.slot_b.canvas.values, 1 - sent)


def test_switching_to_a_checkpoint_without_a_space_clears_the_strips(make_window, fisher_setup, wait_for):
    folder, info = fisher_setup
    save_tiny(folder, "tiny-other", "gated-pixelcnn")
    _make_space(info)
    window = make_window("tiny-gated")
    view = fisher_view(window)
    wait_for(lambda: view.result is not None)
    assert not view.strips.empty and view.strips.nll_labels["fisher"].text()
    assert window.context.load("tiny-other")
    assert view.strips.empty and view.result is None
    assert view.strips.nll_labels["fisher"].text() == "" and view.nearest.text() == ""
    for row in ("pixel", "activation", "fisher", "nearest"):  # the background only, no image of the old model
        assert (np.asarray(view.strips.views[row].image) == 40).all(), row
    wait_for(lambda: "no Fisher decoder" in view.space_label.text())
    assert "no Fisher space yet" in view.strips.caption.text()


def test_without_the_data_test_images_come_from_the_reference_set(make_window, fisher_setup, wait_for,
                                                                  tmp_path, monkeypatch):
    _, info = fisher_setup
    space = _make_space(info, labels=np.arange(10))
    monkeypatch.setenv("AR_EXPLORER_DATA", str(tmp_path / "no-data-here"))
    view = fisher_view(make_window("tiny-gated"))
    wait_for(lambda: view.result is not None)
    view.load_test_image(view.slot_a, 3)
    np.testing.assert_array_equal(view.slot_a.canvas.values, space.reference_images[3])
    assert view.slot_a.source == "test image #103 (a 3)"


def test_the_default_pair_is_two_different_digits():
    from app.ui.views.fisher_jobs import default_pair, digit_text

    assert default_pair(np.array([0, 0, 9, 2, 2, 9])) == (3, 2)
    assert default_pair(np.array([0, 0, 0, 4, 1])) == (0, 3)
    assert default_pair(np.array([-1, -1, -1])) == (0, 1)
    assert digit_text(8) == "an 8" and digit_text(3) == "a 3" and digit_text(-1) == ""


def test_closing_while_making_joins_the_workers(make_window, fisher_setup, wait_for):
    window = make_window("tiny-gated")
    view = fisher_view(window)
    view.images.setValue(2000)
    view.make_space()
    wait_for(lambda: view.builder.latest is not None)
    window.close()
    assert running_workers() == []
