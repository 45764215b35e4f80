"""The Score view: strokes change the score, odd image files work or say why, units and data are named,
every compatible checkpoint is compared, and hovering shows a pixel's conditional."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from event_loop import pump  # noqa: E402
from PIL import Image  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

from app.core.scoring import conditional_at, score  # noqa: E402


def score_view(window):
    view = window.show_view("score")
    pump(100)  # let the newly shown tab take its final size before pixels are mapped to the screen
    return view


def scored(view, wait_for, values: np.ndarray | None = None):
    """Wait until the score on screen is the score of the canvas as it is now."""
    target = view.canvas.values.copy() if values is None else values
    expected = score(view.loaded.model, target[None].astype(np.float32)).nll_nats[0]
    wait_for(lambda: view.result is not None and abs(view.result.nll_nats - expected) < 1e-6)
    return view.result


def drag(canvas, points: list[tuple[int, int]]) -> None:
    """Press, move through ``points`` (row, col) and release, with real mouse events."""
    viewport = canvas.viewport()
    spots = [canvas.scene_point(r, c) for r, c in points]
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, spots[0])
    for spot in spots[1:]:
        QTest.mouseMove(viewport, spot, 10)
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, spots[-1], 10)


def test_strokes_change_the_score_and_its_map(make_window, tiny_checkpoints, wait_for):
    window = make_window("tiny-pixelcnn")
    view = score_view(window)
    blank = scored(view, wait_for)
    assert blank.per_pixel_nll.shape == (28, 28)
    drag(view.canvas, [(5, 14), (10, 14), (15, 14), (20, 14)])
    assert view.canvas.values[0, 5:21, 14].all(), "the drag drew a vertical stroke"
    stroked = scored(view, wait_for)
    assert stroked.nll_nats != blank.nll_nats
    assert not np.array_equal(stroked.per_pixel_nll, blank.per_pixel_nll)
    # the heat map on screen is the per-pixel NLL, aligned with the canvas
    assert view.heatmap.image.shape[:2] == view.canvas.image.shape[:2] == (28, 28)
    assert "nats per image" in view.nll.text() and "bits/dim" in view.bpd.text()
    assert "Binarized MNIST" in view.data.text() and "binarization" in view.data.text()
    assert "your drawing" in view.data.text()
    # the percentile comes from the recorded test quantiles (300..700 nats)
    expected = 100.0 * np.mean(np.linspace(300, 700, 101) < stroked.nll_nats)
    assert stroked.percentile == pytest.approx(expected)
    assert "test images of Binarized MNIST" in view.rank.text()


def test_eraser_clear_and_invert(make_window, tiny_checkpoints, wait_for):
    window = make_window("tiny-gated")
    view = score_view(window)
    canvas = view.canvas
    canvas.stroke([(10, 10)], finished=True)
    assert canvas.values[0, 10, 10] == 1 and canvas.values[0, 9, 10] == 1  # size 2: a plus
    canvas.erasing = True
    canvas.stroke([(10, 10)], finished=True)
    assert canvas.values.sum() == 0
    canvas.invert()
    assert canvas.values.all()
    inverted = scored(view, wait_for)
    canvas.erase_all()
    assert canvas.values.sum() == 0
    assert scored(view, wait_for).nll_nats != inverted.nll_nats


@pytest.mark.parametrize(
    "name, make, ok",
    [
        ("tiny.png", lambda p: Image.new("L", (1, 1), 255).save(p), True),
        ("huge.png", lambda p: Image.new("RGB", (2400, 1800), (255, 255, 255)).save(p), True),
        ("rgba.png", lambda p: _rgba_digit().save(p), True),
        ("corrupt.png", lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40), False),
        ("empty.jpg", lambda p: p.write_bytes(b""), False),
        ("notes.png", lambda p: p.write_text("not an image"), False),
    ],
)
def test_odd_image_files_load_with_a_preview_or_say_why(make_window, tiny_checkpoints, wait_for, tmp_path,
                                                        name, make, ok):
    window = make_window("tiny-pixelcnn")
    view = score_view(window)
    view.canvas.stroke([(3, 3)], finished=True)
    before = view.canvas.values.copy()
    path = tmp_path / name
    make(path)
    assert view.load_file(path) is ok
    if ok:
        assert view.canvas.values.shape == (1, 28, 28) and view.canvas.values.max() <= 1
        assert name in view.notes.text() and "binarized at 0.5" in view.notes.text()
        scored(view, wait_for)
    else:
        np.testing.assert_array_equal(view.canvas.values, before)  # nothing changed
        message = window.context.notices[-1].message
        assert name in message and "\n" not in message
        assert message in view.notes.text()


def _rgba_digit() -> Image.Image:
    image = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    for y in range(10, 54):
        for x in range(28, 36):
            image.putpixel((x, y), (20, 20, 20, 255))
    return image


def test_every_compatible_checkpoint_is_compared(make_window, tiny_checkpoints, wait_for):
    window = make_window("tiny-pixelcnn")
    view = score_view(window)
    view.canvas.stroke([(8, 8), (9, 9), (10, 10)], finished=True)
    view.compare()
    names = {"tiny-pixelcnn", "tiny-gated"}
    wait_for(lambda: {r.name for r in view.table.rows} == names
             and np.array_equal(view.table.last_values, view.canvas.values))
    for name in names:
        expected = score(window.context.model(name).model, view.canvas.values[None].astype(np.float32)).nll_nats[0]
        assert view.table.value(name) == pytest.approx(expected)
    assert view.table.table.rowCount() == 2  # the 8x8 checkpoint does not fit a 28x28 image
    header = [view.table.table.horizontalHeaderItem(i).text() for i in range(view.table.table.columnCount())]
    assert "NLL (nats per image)" in header and "bits/dim" in header


def test_the_comparison_fills_in_as_it_goes_and_greys_checkpoints_of_other_data(
        make_window, tiny_checkpoints, checkpoint_dir, wait_for):
    """Rows arrive one checkpoint at a time; a checkpoint trained on other data (here, thresholded MNIST) sorts
    after those on the current one's data and is greyed, since NLLs compare only on the same data."""
    from checkpoint_factory import save_tiny

    save_tiny(checkpoint_dir, "tiny-threshold", "pixelcnn",
              meta={"dataset": "mnist-threshold", "binarization": "thresholded at 0.5"})
    window = make_window("tiny-gated")
    view = score_view(window)
    partial = []
    view.background.partial.connect(lambda result: partial.append(len(result.value[0])))
    view.canvas.stroke([(8, 8), (9, 9), (10, 10)], finished=True)
    view.compare()
    names = {"tiny-pixelcnn", "tiny-gated", "tiny-threshold"}
    wait_for(lambda: {r.name for r in view.table.rows} == names)
    assert partial and partial[0] == 1  # the first row was on screen before the others were scored
    order = [r.name for r in view.table.rows]
    # the two of the open checkpoint's data come first, likelier first (the open one holds no place of its own)
    assert set(order[:2]) == {"tiny-gated", "tiny-pixelcnn"}
    assert view.table.rows[0].nll_nats <= view.table.rows[1].nll_nats
    assert order[-1] == "tiny-threshold"
    assert "1 trained on other data" in view.table.caption.text()
    last = view.table.table.item(2, 1)
    assert last.foreground().color().alphaF() < 1.0 and "does not compare" in last.toolTip()
    assert view.table.table.item(0, 1).foreground().color().alphaF() == 1.0 or \
        view.table.table.item(0, 1).foreground().style() == Qt.BrushStyle.NoBrush


def test_a_comparison_asked_for_while_the_scorer_is_busy_runs_once_it_is_free(
        make_window, tiny_checkpoints, wait_for):
    """Asked for while the scorer has work queued (here a pixel's conditional), the comparison waits for it
    and then runs; it used to wait for a score that never came, and the table stayed empty."""
    import threading

    window = make_window("tiny-gated")
    view = score_view(window)
    view.canvas.stroke([(8, 8), (9, 9)], finished=True)
    scored(view, wait_for)
    view.compare_timer.stop()
    view.table.auto.setChecked(False)
    gate = threading.Event()
    view.scorer.submit(lambda: gate.wait(5.0) and None, "hold")
    wait_for(lambda: not view.scorer.has_pending())  # the hold runs
    view._submit_pixel(view.loaded)  # queued behind it
    assert view.scorer.has_pending()
    view.table.clear()
    view.compare()
    assert view.table.rows == []  # deferred: the scorer has work queued
    gate.set()
    wait_for(lambda: {r.name for r in view.table.rows} == {"tiny-pixelcnn", "tiny-gated"})


def test_hovering_a_pixel_shows_its_conditional(make_window, tiny_checkpoints, wait_for):
    window = make_window("tiny-gated")
    view = score_view(window)
    view.canvas.stroke([(12, 12), (13, 12)], finished=True)
    scored(view, wait_for)
    view.canvas.pixel_hovered.emit(13, 12)
    import torch

    expected = conditional_at(view.loaded.model, torch.as_tensor(view.canvas.values), (0, 13, 12)).probs
    wait_for(lambda: view.pixel_plot.heights.shape == (2,) and np.allclose(view.pixel_plot.heights, expected))
    assert "row 13, col 12" in view.pixel_text.text() and "nats" in view.pixel_text.text()


def test_a_test_image_needs_the_data(make_window, tiny_checkpoints, tiny_binarized, monkeypatch, wait_for):
    window = make_window("tiny-pixelcnn")
    assert not score_view(window).tools.test_button.isEnabled()  # no data in the isolated data folder
    window.close()
    monkeypatch.setenv("AR_EXPLORER_DATA", str(tiny_binarized))
    window = make_window("tiny-pixelcnn")
    view = score_view(window)
    assert view.tools.test_button.isEnabled()
    assert view.load_test_image(5)
    from app.core.session import Session

    images = Session(device="cpu").split("binarized-mnist", "test").images
    np.testing.assert_array_equal(view.canvas.values, images[5])
    scored(view, wait_for)
    assert "test image #5" in view.data.text()


def test_mouse_position_maps_to_pixels(make_window, tiny_checkpoints):
    window = make_window("tiny-gated")
    canvas = score_view(window).canvas
    clicked = []
    spot = canvas.scene_point(4, 20)
    QTest.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, spot)
    assert canvas.values[0, 4, 20] == 1 and canvas.values.sum() == 5
    canvas.pixel_clicked.connect(lambda r, c, b: clicked.append((r, c)))
    QTest.mouseClick(canvas.viewport(), Qt.MouseButton.RightButton, Qt.KeyboardModifier.NoModifier,
                     canvas.scene_point(7, 3))
    assert clicked == [(7, 3)]
    assert window.tabs.currentWidget() is window.views["inspect"]  # right click: inspect that pixel


def test_a_dropped_file_is_loaded(make_window, tiny_checkpoints, wait_for, tmp_path):
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDropEvent

    window = make_window("tiny-gated")
    view = score_view(window)
    path = tmp_path / "seven.png"
    image = Image.new("L", (28, 28), 0)
    for y in range(4, 24):
        image.putpixel((18, y), 255)
    image.save(path)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                       Qt.KeyboardModifier.NoModifier)
    view.dropEvent(event)
    assert view.canvas.values[0, 4:24, 18].all() and view.canvas.values.sum() == 20
    scored(view, wait_for)
    assert "seven.png" in view.data.text() and "seven.png" in view.notes.text()


def test_a_sample_fills_the_canvas_and_test_data_gives_a_percentile(make_window, tiny_checkpoints, tiny_binarized,
                                                                     monkeypatch, wait_for):
    monkeypatch.setenv("AR_EXPLORER_DATA", str(tiny_binarized))
    window = make_window("small-pixelcnn")  # 8x8: no test data of its size, so no percentile
    view = score_view(window)
    view.load_sample()
    wait_for(lambda: "a sample of small-pixelcnn" in view.notes.text())
    assert view.canvas.values.shape == (1, 8, 8)
    scored(view, wait_for)
    assert "no test scores" in view.rank.text().lower()
    window.context.load("tiny-gated")  # no recorded quantiles: its percentile comes from the test images here
    wait_for(lambda: view._references.get("tiny-gated") is not None)
    view.load_test_image(3)
    result = scored(view, wait_for)
    reference = view._references["tiny-gated"]
    assert len(reference) == 64 and result.percentile == pytest.approx(100 * np.mean(reference < result.nll_nats))
    assert "test images of Binarized MNIST" in view.rank.text()


def test_the_drawing_is_kept_across_models_converted_as_each_needs(make_window, tiny_checkpoints, checkpoint_dir,
                                                                   wait_for):
    """Switching to PixelCNN++ (256 grey levels) erased the drawing, and coming back to a binary model did not
    bring it back."""
    from checkpoint_factory import save_tiny

    save_tiny(checkpoint_dir, "tiny-grey", "pixelcnn++", num_values=256, meta={"dataset": "mnist"})
    window = make_window("tiny-gated")
    view = score_view(window)
    view.canvas.stroke([(8, 8), (9, 9), (10, 10), (11, 11)], finished=True)
    drawn = view.canvas.values.copy()
    assert drawn.any() and view.source == "your drawing"
    window.context.load("tiny-grey")
    assert view.canvas.num_values == 256
    np.testing.assert_array_equal(view.canvas.values, drawn * 255)  # the same strokes at full brightness
    assert view.source == "your drawing" and "converted for this model" in view.notes.text()
    wait_for(lambda: view.result is not None and view.result.checkpoint == "tiny-grey")
    window.context.load("tiny-pixelcnn")
    np.testing.assert_array_equal(view.canvas.values, drawn)  # exactly the binary drawing again

    window.context.load("tiny-grey")
    view.canvas.brush_size = 3
    view.canvas.stroke([(20, 5)], finished=True)  # a soft grey stroke
    grey = view.canvas.values.copy()
    assert 0 < int(grey[0, 20, 3]) < 255  # its soft edge
    window.context.load("tiny-gated")
    np.testing.assert_array_equal(view.canvas.values, (grey > 127).astype(np.uint8))  # binarized at 0.5
    window.context.load("tiny-grey")
    np.testing.assert_array_equal(view.canvas.values, grey)  # the grey levels come back


def test_clearing_the_canvas_is_kept_across_models(make_window, tiny_checkpoints, checkpoint_dir):
    from checkpoint_factory import save_tiny

    save_tiny(checkpoint_dir, "tiny-grey", "pixelcnn++", num_values=256, meta={"dataset": "mnist"})
    window = make_window("tiny-gated")
    view = score_view(window)
    view.canvas.stroke([(8, 8)], finished=True)
    view._clear()
    window.context.load("tiny-grey")
    assert not view.canvas.values.any() and view.source == "a blank canvas"
