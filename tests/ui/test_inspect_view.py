"""The Inspect view: a clicked pixel shows its conditional and receptive field; PixelCNN's blind spot shows as
exact zeros up and to the right, and Gated PixelCNN has none."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

import torch  # noqa: E402
from event_loop import pump  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

from app.core.scoring import conditional_at, receptive_field  # noqa: E402

ROW, COL = 14, 14


def inspect_view(window):
    view = window.show_view("inspect")
    pump(100)
    return view


def click(view, row: int, col: int) -> None:
    QTest.mouseClick(view.image_view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     view.image_view.scene_point(row, col))


def inspected(view, wait_for, row: int, col: int):
    wait_for(lambda: view.inspection is not None and view.inspection.position == (0, row, col)
             and np.array_equal(view.inspection.values, view.values))
    return view.inspection


@pytest.mark.parametrize("checkpoint, blind", [("tiny-pixelcnn", True), ("tiny-gated", False)])
def test_clicking_a_pixel_shows_its_conditional_and_receptive_field(make_window, tiny_checkpoints, wait_for,
                                                                     checkpoint, blind):
    window = make_window(checkpoint)
    view = inspect_view(window)
    image = (np.random.default_rng(0).random((1, 28, 28)) > 0.6).astype(np.uint8)
    view.set_image(image, "a random image")
    click(view, ROW, COL)
    result = inspected(view, wait_for, ROW, COL)
    model = window.context.loaded.model
    x = torch.as_tensor(image.astype(np.float32))
    expected_probs = conditional_at(model, x, (0, ROW, COL)).probs
    np.testing.assert_allclose(view.plot.heights, expected_probs, rtol=1e-6)
    field = receptive_field(model, x, (0, ROW, COL)).sum(0)
    np.testing.assert_allclose(result.field, field)
    rank = model.resolve_ordering(None).rank
    assert not field[rank >= rank[ROW, COL]].any(), "no later pixel is ever seen"
    assert field[ROW - 1, COL] > 0 and field[ROW, COL - 1] > 0  # the neighbours above and to the left
    # up and to the right: PixelCNN's blind spot (exact zeros), seen by Gated PixelCNN
    assert bool(field[ROW - 1, COL + 2] == 0) is blind
    assert (result.summary.blind > 0) is blind
    assert ("Blind spot" in view.summary.text()) is blind
    assert view.field_view.image.shape == (28, 28, 3)
    colour = tuple(view.field_view.image[ROW - 1, COL + 2])
    assert (colour == (235, 64, 52)) is blind  # drawn in the blind-spot red


def test_follow_the_mouse_and_images_from_other_views(make_window, tiny_checkpoints, wait_for):
    window = make_window("tiny-gated")
    view = inspect_view(window)
    view.follow.setChecked(True)
    view.image_view.pixel_hovered.emit(3, 9)
    inspected(view, wait_for, 3, 9)
    assert "row 3, col 9" in view.pixel_text.text()
    image = np.zeros((1, 28, 28), np.uint8)
    image[0, 5:20, 10] = 1
    window.context.send_image("inspect", image, "a test stroke", (0, 12, 10))
    assert window.tabs.currentWidget() is view
    inspected(view, wait_for, 12, 10)
    np.testing.assert_array_equal(view.values, image)
    assert "a test stroke" in view.source_label.text()
