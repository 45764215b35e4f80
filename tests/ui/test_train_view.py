"""The Train view: a plan from the form, a run with its curves and progress, the result in the checkpoint
list one click from being opened; Stop ends a run at once; a plan that cannot run says why."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from event_loop import pump  # noqa: E402


def train_view(window, dataset="synthetic-digits"):
    view = window.show_view("train")
    pump(50)
    view.model_box.setCurrentIndex(view.model_box.findData("pixelcnn"))
    view.dataset_box.setCurrentIndex(view.dataset_box.findData(dataset))
    view.size_box.setCurrentIndex(1)  # tiny
    view.epochs.setValue(0.25)
    view.minutes.setValue(2.0)
    view.batch.setValue(64)
    return view


def test_a_run_draws_its_curves_and_its_checkpoint_opens(make_window, tiny_checkpoints, checkpoint_dir, wait_for):
    """The run's checkpoint gets a name of its own, beside a shipped one of the same model and data (it was
    saved under the shipped one's name, so the list showed the shipped one and never the new one); opened, the
    toolbar and the model card both describe it."""
    from checkpoint_factory import save_tiny

    shipped = save_tiny(checkpoint_dir.parent / "shipped", "pixelcnn-synthetic-digits", "pixelcnn",
                        quantiles=[123.4] * 101, meta={"dataset": "synthetic-digits"})
    window = make_window("tiny-pixelcnn")
    view = train_view(window)
    assert view.train_button.isEnabled(), view.state.text()
    view.start()
    assert not view.train_button.isEnabled() and view.stop_button.isEnabled()
    assert not view.model_box.isEnabled()  # the form shows the running plan
    wait_for(lambda: not view._running, timeout=120_000)
    xs, ys = view.valid_curve.getData()
    assert len(xs) >= 2 and all(x > 0 for x in xs)  # validation points against images seen
    assert len(view.train_curve.getData()[0]) >= 2
    assert view.progress.value() == 1000
    text = view.result.text()
    assert "Done" in text and "nats per image" in text and "bits/dim" in text and "synthetic-digits" in text
    out = view.record.out
    assert out.parent == checkpoint_dir and out.exists()
    assert out.stem in {info.name for info in window.context.checkpoints()}
    picker = window.toolbar.checkpoints
    assert picker.findData(out.stem) >= 0  # listed in the picker at once, with no reload
    assert view.open_button.isEnabled()
    assert out.stem != shipped.name and shipped.name in {info.name for info in window.context.checkpoints()}
    view.open_result()
    wait_for(lambda: window.context.loaded is not None and window.context.loaded.name == out.stem)
    nats = window.context.loaded.info.meta["test_nll_nats"]
    assert nats > 0 and nats != pytest.approx(123.4)
    assert picker.currentText().startswith(out.stem) and f"{nats:.1f} nats" in picker.currentText()
    assert f"{nats:.2f}" in picker.itemData(picker.currentIndex(), 3)  # the tooltip: this checkpoint's NLL
    assert out.stem in window.card.title.text() and f"{nats:.2f}" in window.card.nll.text()


def test_stop_ends_a_run_and_the_window_closes_clean(make_window, tiny_checkpoints, checkpoint_dir, wait_for):
    window = make_window("tiny-pixelcnn")
    view = train_view(window)
    view.epochs.setValue(50.0)
    view.start()
    wait_for(lambda: view.record is not None and len(view.record.events) > 0, timeout=60_000)
    view.stop()
    wait_for(lambda: not view._running, timeout=30_000)
    assert "Stopped" in view.result.text()
    assert view.train_button.isEnabled()
    view.start()  # a second run, closed mid-way: the window's teardown checks that no thread is left


def test_a_plan_that_cannot_run_says_why(make_window, tiny_checkpoints, checkpoint_dir):
    window = make_window("tiny-pixelcnn")
    view = train_view(window, dataset="binarized-mnist")  # no data in the isolated data folder
    assert not view.train_button.isEnabled()
    assert "ar-explorer data download binarized-mnist" in view.state.text()
    view.dataset_box.setCurrentIndex(view.dataset_box.findData("synthetic-digits"))
    view.hparams.setText('{"channels": 4,')
    view.hparams.textEdited.emit(view.hparams.text())
    assert not view.train_button.isEnabled() and "not valid JSON" in view.state.text()
    view.hparams.setText('{"channels": 4, "kernel": 4}')
    view.hparams.textEdited.emit(view.hparams.text())
    assert not view.train_button.isEnabled()
    assert "kernel=4 is not allowed; it takes an odd whole number >= 1" in view.state.text()
    view.hparams.setText('{"channels": 4}')
    view.hparams.textEdited.emit(view.hparams.text())
    assert view.train_button.isEnabled()


def test_continuing_is_offered_only_for_the_open_checkpoints_model_and_data(make_window, tiny_checkpoints,
                                                                             checkpoint_dir):
    window = make_window("tiny-pixelcnn")
    view = window.show_view("train")
    pump(50)
    assert view.model_box.currentData() == "pixelcnn" and view.dataset_box.currentData() == "binarized-mnist"
    assert view.continue_box.isEnabled()
    view.model_box.setCurrentIndex(view.model_box.findData("made"))
    assert not view.continue_box.isEnabled() and view.ordering_box.isEnabled()
    assert view.ordering_box.findData("even-then-odd") >= 0
