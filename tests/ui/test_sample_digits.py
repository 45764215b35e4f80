"""The Sample view labels finished MNIST samples with the digit the shipped classifier reads, and says how
many show the label asked for; it labels nothing it cannot read."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from checkpoint_factory import save_tiny  # noqa: E402

from app.core.classifier import classify  # noqa: E402
from app.core.digit_reading import shipped_classifier  # noqa: E402
from app.ui.views.qt_sample_controls import SPEED_STEPS  # noqa: E402


def _run(window, count: int):
    view = window.show_view("sample")
    view.controls.count.setValue(count)
    view.controls.speed.setValue(SPEED_STEPS + 1)
    view.run_to_end()
    return view


def test_a_class_conditional_run_is_labelled_and_counted_against_the_label_asked_for(
        make_window, checkpoint_dir, wait_for):
    save_tiny(checkpoint_dir, "tiny-conditional", "conditional-gated-pixelcnn", meta={"dataset": "mnist-threshold"})
    window = make_window("tiny-conditional")
    view = window.show_view("sample")
    view.controls.label.setCurrentIndex(3)
    view = _run(window, 3)
    wait_for(lambda: view.worker.completed and view._labelled is view.worker, timeout=120_000)
    images = view.frame.step.image
    read = classify(shipped_classifier()[0], images, 2)
    shown = view.grid.label_texts("digits")
    assert shown == [f"{d} {100 * p:.0f}%" for d, p in zip(read.labels, read.confidence, strict=True)]
    agree = int((read.labels == 3).sum())
    assert f"{agree} of 3 read as the label asked for, 3" in view.digits.text()
    assert "99.2% right on the MNIST test set" in view.digits.text()
    # a new run clears the labels of the old one at once
    view.play_pause()
    assert view.grid.label_texts("digits") == [] and view.digits.text() == ""
    view.stop()


def test_images_that_are_not_mnist_digits_get_no_label(make_window, tiny_checkpoints, wait_for):
    window = make_window("small-pixelcnn")  # 8x8 images: nothing the classifier can read
    view = _run(window, 2)
    wait_for(lambda: view.worker.completed and view.frame is not None and view.frame.step.done)
    assert view.grid.label_texts("digits") == [] and view.digits.text() == ""
