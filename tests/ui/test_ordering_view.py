"""The ordering editor: presets and transforms, painting with undo and validation, save and load, what a pixel
may see, live samples and scores under the edited ordering, training with it, and the NLL table."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from checkpoint_factory import save_tiny  # noqa: E402

from app.core.orderings import columns, raster, spiral  # noqa: E402
from app.ui.ordering_editor import ordering_rgb  # noqa: E402


@pytest.fixture
def ordering_checkpoints(checkpoint_dir):
    return {
        "tiny-any": save_tiny(checkpoint_dir, "tiny-any", "any-order-attention", shape=(1, 8, 8)),
        "tiny-made": save_tiny(checkpoint_dir, "tiny-made", "made"),
    }


def orderings_view(window):
    return window.show_view("orderings")


def test_presets_and_transforms_change_the_ordering_and_the_picture(make_window, ordering_checkpoints):
    view = orderings_view(make_window("tiny-any"))
    view.apply_preset("columns")
    assert view.editor.ordering == columns(8, 8) and view.tools.presets.currentText() == "columns"
    np.testing.assert_array_equal(view.grid.image, ordering_rgb(view.editor))
    view.tools.buttons["reverse"].click()
    assert view.editor.ordering.flat.tolist() == columns(8, 8).flat[::-1].tolist()
    view.tools.buttons["transpose"].click()
    assert view.editor.ordering.flat.tolist() == raster(8, 8).flat[::-1].tolist()
    view.tools.buttons["flip_h"].click()
    assert view.editor.ordering.order[0].tolist() == [7, 0]
    view.undo()
    view.undo()
    assert view.editor.ordering.flat.tolist() == columns(8, 8).flat[::-1].tolist()
    view._on_hover(0, 1)
    assert "row 0, col 1: step" in view.cell_label.text()


def test_painting_gives_the_next_steps_and_reports_what_is_missing(make_window, ordering_checkpoints):
    view = orderings_view(make_window("tiny-any"))
    view.tools.paint.setChecked(True)
    view.grid.stroked.emit([(3, 3), (3, 4)], False)
    view.grid.stroked.emit([(4, 4)], False)
    view.grid.stroked.emit([], True)
    rank = view.editor.rank()
    assert (rank[3, 3], rank[3, 4], rank[4, 4]) == (0, 1, 2)
    assert rank[0, 0] == 3  # the rest in raster order
    assert "3 of 64 positions painted" in view.validation.text()
    view.tools.fill.setChecked(False)
    assert "61 position(s) are missing" in view.validation.text()
    assert view.editor.usable() is None and not view.save_to("unused.json")
    view.grid.stroked.emit([(0, 0)], True)
    assert view.editor.rank()[0, 0] == 3
    view.undo()  # the last stroke only
    assert view.editor.num_painted == 3


def test_save_and_load_round_trip_and_bad_files_change_nothing(make_window, ordering_checkpoints, tmp_path):
    view = orderings_view(make_window("tiny-any"))
    view.set_ordering(spiral(8, 8))
    path = tmp_path / "my-spiral.json"
    assert view.save_to(path)
    view.apply_preset("raster")
    assert view.load_from(path)
    assert view.editor.ordering == spiral(8, 8) and view.editor.ordering.name == "my-spiral"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"height": 8, "width": 8, "order": [[0, 0]] * 64}))
    assert not view.load_from(bad)
    assert "appear more than once" in view.validation.text()
    assert view.editor.ordering == spiral(8, 8)


def test_a_selected_pixel_shows_what_it_may_see(make_window, ordering_checkpoints):
    view = orderings_view(make_window("tiny-any"))
    view.apply_preset("raster")
    view.grid.stroked.emit([(2, 5)], True)  # a click, not painting
    assert view.selected == (2, 5)
    assert "may see the 21 positions before it" in view.cell_label.text()
    image = view.grid.image
    plain = ordering_rgb(view.editor)
    assert (image[0, 0] == plain[0, 0]).all() and (image[7, 7] < plain[7, 7]).all()


def test_any_order_model_samples_and_scores_under_the_edit(make_window, ordering_checkpoints, wait_for):
    view = orderings_view(make_window("tiny-any"))
    assert view.live_box.isVisibleTo(view) and not view.train_box.isVisibleTo(view)
    view.set_ordering(spiral(8, 8))
    wait_for(lambda: "nats per image" in view.score_label.text() and "spiral" in view.score_label.text())
    wait_for(lambda: view.sampler is not None and view.sampler.latest is not None)
    frame = view.sampler.latest
    steps_done = frame.step.index + 1
    np.testing.assert_array_equal(frame.drawn, spiral(8, 8).rank < steps_done)


def test_the_table_measures_every_preset_with_the_any_order_model(make_window, ordering_checkpoints, wait_for):
    view = orderings_view(make_window("tiny-any"))
    view.measure_presets()
    registry_count = len(view.context.session.registry.orderings)
    wait_for(lambda: view.table.rowCount() >= registry_count + 1)
    names = {view.table.item(i, 0).text() for i in range(view.table.rowCount())}
    assert {"raster", "spiral", "columns"} <= names
    assert all(float(view.table.item(i, 2).text()) > 0 for i in range(view.table.rowCount()))
    assert "Measured now" in view.table_note.text()


def test_a_build_time_model_trains_with_the_edited_ordering(make_window, ordering_checkpoints, tiny_binarized,
                                                           monkeypatch, wait_for, checkpoint_dir):
    monkeypatch.setenv("AR_EXPLORER_DATA", str(tiny_binarized))
    view = orderings_view(make_window("tiny-made"))
    assert view.train_box.isVisibleTo(view) and not view.live_box.isVisibleTo(view)
    assert "raster" in view.capability.text()
    view.apply_preset("columns")
    view.epochs.setValue(2)
    view.train()
    wait_for(lambda: not view.training.running and "the checkpoint is in the model list" in view.train_label.text(),
             timeout=60000)
    out = checkpoint_dir / "made-binarized-mnist-columns-trained.safetensors"  # never a shipped checkpoint's name
    assert out.is_file()
    assert out.stem in {info.name for info in view.context.checkpoints()}  # "in the model list", as it says
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["config"]["ordering"]["order"] == columns(28, 28).order.tolist()


def _slowly(generator_function, delay_s=0.05):
    """The measuring generator, a batch every ``delay_s`` at least: slow enough to be stopped half way."""
    import time

    def slowed(*args, **kwargs):
        for progress in generator_function(*args, **kwargs):
            time.sleep(delay_s)
            yield progress

    return slowed


def test_measuring_the_presets_shows_progress_and_stops_between_batches(make_window, ordering_checkpoints,
                                                                        wait_for, monkeypatch):
    """It took minutes with no progress bar and no Stop; the live score waited behind it."""
    import app.ui.views.qt_ordering_view as ordering_view

    monkeypatch.setattr(ordering_view, "measure_orderings", _slowly(ordering_view.measure_orderings))
    view = orderings_view(make_window("tiny-any"))
    view.measure_presets()
    assert view.measure_progress.isVisibleTo(view) and view.measure_stop.isEnabled()
    assert not view.measure_button.isEnabled()
    wait_for(lambda: view.measure_progress.value() >= 9)  # past the first ordering's 8 batches
    assert view.measure_progress.maximum() == 8 * (len(view.context.session.registry.orderings) + 1)
    wait_for(lambda: len(view.measured) >= 1)  # finished orderings show while the rest are measured
    view.set_ordering(spiral(8, 8))  # the live score does not wait for the table
    wait_for(lambda: "spiral" in view.score_label.text() and "nats per image" in view.score_label.text())
    assert view.measuring.running
    view.measure_stop.click()
    wait_for(lambda: not view.measuring.running and view.measure_button.isEnabled())
    assert not view.measure_progress.isVisibleTo(view)
    done = len(view.measured)
    assert 1 <= done < len(view.context.session.registry.orderings) + 1
    assert "(stopped)" in view.table_note.text()
    names = {view.table.item(i, 0).text() for i in range(view.table.rowCount())}
    assert {row.ordering for row in view.measured} <= names


@pytest.fixture
def recorded_orderings(checkpoint_dir):
    """Checkpoints with long names and a recorded test NLL, as the shipped MADE and attention ones."""
    for name in ("made-binarized-mnist-top-bottom-to-middle", "attention-binarized-mnist-even-then-odd",
                 "order-agnostic-nade-binarized-mnist"):
        save_tiny(checkpoint_dir, name, "made", quantiles=np.linspace(90, 110, 101))
    return checkpoint_dir


def _cut_columns(table):
    header = table.horizontalHeader()
    return [table.horizontalHeaderItem(j).text() for j in range(table.columnCount())
            if header.sectionSize(j) < table.sizeHintForColumn(j)]


@pytest.mark.parametrize(("size", "scale"), [((1280, 720), 1.0), ((1920, 1080), 2.0)])
def test_the_nll_table_shows_every_column_whole(make_window, recorded_orderings, size, scale):
    """Cut off at 100% (the NLL columns out of sight) and elided at 250%."""
    window = make_window("made-binarized-mnist-top-bottom-to-middle", scale=scale)
    window.resize(*size)
    view = orderings_view(window)
    from event_loop import pump

    pump(50)
    table = view.table
    assert table.rowCount() == 3
    assert "made-top-bottom-to-middle" in {table.item(i, 1).text() for i in range(3)}  # the data is in the note
    assert _cut_columns(table) == []
    assert table.horizontalScrollBar().maximum() == 0, "part of the table is out of sight"


def test_the_nll_table_is_never_elided_after_the_scale_changes(make_window, recorded_orderings):
    window = make_window("made-binarized-mnist-top-bottom-to-middle", scale=1.0)
    view = orderings_view(window)
    window.context.set_scale(2.5)
    from event_loop import pump

    pump(50)
    assert _cut_columns(view.table) == []


def test_the_default_spiral_is_not_a_black_square(make_window, ordering_checkpoints):
    """The screenshot's spiral selected a pixel near its start, which dimmed nearly every cell to a quarter."""
    view = orderings_view(make_window("tiny-made"))
    view.default_action()
    assert view.editor.ordering.name.startswith("spiral") and view.selected is not None
    assert view.grid.image.mean() > 60  # of 255; it was 28


@pytest.mark.parametrize(("size", "scale"), [((1280, 720), 1.0), ((1920, 1080), 2.0)], ids=["1280x720", "200%"])
def test_samples_button_and_table_never_overprint_each_other(make_window, ordering_checkpoints, size, scale,
                                                             wait_for):
    """With an any-order model the column holds samples, their score and the table; on a projector at 200% they
    once overlapped (the samples drawn under "Sample again" and its score line)."""
    from event_loop import pump
    from PySide6.QtCore import QRect

    window = make_window("tiny-any", scale=scale)
    window.resize(*size)
    view = orderings_view(window)
    # The score line arrives from a worker and may wrap onto more lines than "scoring…": measure after it.
    wait_for(lambda: "nats per image" in view.score_label.text())
    pump(40)
    assert (window.width(), window.height()) == size

    def rect(widget):
        return QRect(widget.mapTo(view, widget.rect().topLeft()), widget.size())

    parts = {"samples": view.samples, "button": view.sample_button, "score": view.score_label, "table": view.table,
             "measure": view.measure_button}
    rects = {name: rect(widget) for name, widget in parts.items()}
    names = list(rects)
    for i, a in enumerate(names):
        assert rects[a].height() > 0, f"{a} has no room"
        for b in names[i + 1:]:
            assert not rects[a].intersects(rects[b]), f"{a} {rects[a]} overprints {b} {rects[b]}"
    # Everything is on screen, not scrolled out of the column.
    column = view.right_scroll.viewport()
    visible = QRect(column.mapTo(view, column.rect().topLeft()), column.size())
    for name in ("samples", "button", "table"):
        assert visible.contains(rects[name].center()), f"{name} is scrolled out of sight"


def test_the_ensemble_option_scores_the_mixture_over_k_random_orderings(make_window, ordering_checkpoints, wait_for):
    from app.core.scoring import ensemble_nll, random_orderings
    from app.ui.example_images import example_images

    window = make_window("tiny-any")
    view = orderings_view(window)
    assert view.ensemble.value() == 1 and view.ensemble_label.text() == ""
    view.ensemble.setValue(3)
    wait_for(lambda: "over 3 random orderings" in view.ensemble_label.text())
    loaded = view.loaded
    images = example_images(window.context.session, loaded, 64, seed=0).images
    expected = float(ensemble_nll(loaded.model, images, random_orderings(3, 8, 8, window.context.session.registry)).mean())
    assert f"{expected:.1f} nats per image" in view.ensemble_label.text()
    # An edit of the ordering re-scores under it and leaves the ensemble's figure alone.
    view.set_ordering(spiral(8, 8))
    wait_for(lambda: "spiral" in view.score_label.text())
    assert f"{expected:.1f} nats per image" in view.ensemble_label.text()
    view.ensemble.setValue(1)
    assert view.ensemble_label.text() == ""
