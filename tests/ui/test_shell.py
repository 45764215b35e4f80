"""The main window: checkpoint picker and model card, no-checkpoint start, notices for plugin problems and model
errors, device choice, projector scale, settings that persist, and a broken view that does not stop the app."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtWidgets import QApplication, QDialog, QMainWindow  # noqa: E402

from app.ui.preferences import Preferences  # noqa: E402


def test_opens_on_the_requested_checkpoint_with_its_card(make_window, tiny_checkpoints):
    window = make_window("tiny-pixelcnn")
    assert window.context.loaded.name == "tiny-pixelcnn"
    card = window.card
    assert "PixelCNN" in card.title.text() and "blind spot" in card.title.text()  # the lecture section
    assert "blind spot" in card.description.text()  # the one-paragraph description
    nll = card.nll.text()
    assert "test NLL 500.00 nats per image" in nll and "bits/dim" in nll
    assert "Binarized MNIST" in nll and "binarization" in nll
    combo = window.toolbar.checkpoints
    assert {combo.itemData(i) for i in range(combo.count())} == set(tiny_checkpoints)
    assert "CPU" in window.device_label.text()


def test_choosing_another_checkpoint_updates_every_view(make_window, tiny_checkpoints):
    window = make_window("tiny-pixelcnn")
    combo = window.toolbar.checkpoints
    combo.setCurrentIndex(combo.findData("tiny-gated"))
    combo.activated.emit(combo.currentIndex())
    assert window.context.loaded.name == "tiny-gated"
    assert "Gated PixelCNN" in window.card.title.text()
    assert "not measured yet" in window.card.nll.text()  # no test NLL recorded for this one
    assert window.views["score"].loaded.name == "tiny-gated"


def test_no_checkpoint_at_all_still_opens_and_says_how_to_get_one(make_window, checkpoint_dir):
    window = make_window(None)
    assert window.context.loaded is None
    text = window.card.nll.text()
    assert "ar-explorer train" in text and str(checkpoint_dir) in text
    assert not window.toolbar.checkpoints.isEnabled()
    window.views["sample"].play_pause()  # does nothing, raises nothing
    assert window.views["sample"].worker is None


def test_plugin_problems_are_non_modal_notices_with_details(make_window, tiny_checkpoints, monkeypatch):
    from app.core import registry

    monkeypatch.setenv("AR_EXPLORER_PLUGINS", "no_such_plugin_module_for_tests")
    monkeypatch.setattr(registry, "_DEFAULT", None)
    window = make_window("tiny-gated")
    rows = [r for r in window.notices.rows if "no_such_plugin_module_for_tests" in r.notice.message]
    assert len(rows) == 1 and window.notice_dock.isVisible()
    assert "ModuleNotFoundError" in rows[0].notice.details
    dialog = window.notices.show_details(rows[0].notice)
    assert not dialog.isModal() and dialog.isVisible()
    assert "Traceback" in dialog.text.toPlainText()
    assert QApplication.activeModalWidget() is None
    dialog.close()
    window.context.load("tiny-pixelcnn")  # the rest of the app works
    assert window.context.loaded.name == "tiny-pixelcnn"


def test_a_model_error_during_sampling_becomes_a_notice(make_window, tiny_checkpoints, wait_for):
    window = make_window("tiny-gated")
    model = window.context.loaded.model

    def broken(*args, **kwargs):
        raise RuntimeError("the weights caught fire")

    model.forward = broken
    view = window.views["sample"]
    view.controls.mode.setCurrentIndex(view.controls.mode.findData("naive"))  # re-runs forward at every step
    view.step(1)
    wait_for(lambda: any("the weights caught fire" in n.message for n in window.context.notices))
    notice = [n for n in window.context.notices if "caught fire" in n.message][-1]
    assert notice.level == "error" and "Traceback" in notice.details
    wait_for(lambda: not view.worker.isRunning())
    assert window.isVisible()


def test_a_broken_checkpoint_is_a_notice_and_the_old_model_stays(make_window, tiny_checkpoints, checkpoint_dir):
    window = make_window("tiny-gated")
    (checkpoint_dir / "broken.safetensors").write_bytes(b"not a safetensors file at all")
    assert not window.context.load(str(checkpoint_dir / "broken.safetensors"))
    assert window.context.loaded.name == "tiny-gated"
    assert "broken.safetensors" in window.context.notices[-1].message
    (checkpoint_dir / "tiny-pixelcnn.safetensors").write_bytes(b"truncated")  # listed, but broken since
    combo = window.toolbar.checkpoints
    combo.setCurrentIndex(combo.findData("tiny-pixelcnn"))
    combo.activated.emit(combo.currentIndex())
    assert window.context.loaded.name == "tiny-gated" and combo.currentData() == "tiny-gated"
    assert "tiny-pixelcnn" in window.context.notices[-1].message


def test_an_unavailable_device_is_refused_and_cpu_is_kept(make_window, tiny_checkpoints):
    import torch

    window = make_window("tiny-gated")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert not window.context.set_device("cuda")
    assert "CUDA" in window.context.notices[-1].message and window.context.notices[-1].level == "warning"
    assert window.context.session.device.type == "cpu"
    assert window.context.set_device("cpu")
    assert window.context.loaded.model.device.type == "cpu"


def test_scale_settings_and_geometry_persist(make_window, tiny_checkpoints, tmp_path):
    prefs_path = tmp_path / "persist.ini"
    window = make_window("tiny-pixelcnn", preferences=Preferences(prefs_path))
    base = QApplication.font().pointSizeF()
    window.context.set_scale(2.0)
    assert QApplication.font().pointSizeF() == pytest.approx(base * 2.0)
    window.resize(1800, 1150)
    QApplication.processEvents()
    window.close()
    saved = Preferences(prefs_path).geometry
    probe = QMainWindow()
    assert saved is not None and probe.restoreGeometry(saved)
    probe.deleteLater()
    # a new run: no --checkpoint, so the last one, the scale and the size come back
    window = make_window(None, preferences=Preferences(prefs_path))
    assert window.context.loaded.name == "tiny-pixelcnn"
    assert window.context.scale == 2.0
    assert window.toolbar.scales.currentData() == 2.0
    window.context.set_scale(1.0)
    assert QApplication.font().pointSizeF() == pytest.approx(base)


def test_no_arguments_opens_the_default_checkpoint(make_window, checkpoint_dir):
    from checkpoint_factory import save_tiny

    save_tiny(checkpoint_dir, "pixelcnn-binarized-mnist", "pixelcnn")
    save_tiny(checkpoint_dir, "gated-pixelcnn-binarized-mnist", "gated-pixelcnn")
    window = make_window(None)
    assert window.context.loaded.name == "gated-pixelcnn-binarized-mnist"


def test_a_broken_view_does_not_keep_the_window_from_opening(make_window, tiny_checkpoints, monkeypatch):
    from app.ui import views

    def broken_factory(context):
        raise ValueError("this view is unfinished")

    monkeypatch.setattr(views, "EXTRA_VIEWS", [views.ViewSpec("broken", "Broken", broken_factory)])
    window = make_window("tiny-gated")
    assert "broken" in window.views and "sample" in window.views
    assert any("this view is unfinished" in n.message for n in window.context.notices)


def test_shortcut_help_is_not_modal(make_window, tiny_checkpoints):
    window = make_window("tiny-gated")
    dialog = window.show_shortcuts()
    assert isinstance(dialog, QDialog) and not dialog.isModal() and "Space" in dialog.findChild(
        type(window.device_label)).text()
    dialog.close()


def test_an_error_in_the_event_loop_becomes_a_notice(make_window, tiny_checkpoints, qapp):
    from event_loop import pump
    from PySide6.QtCore import QTimer

    from app.ui.launch import install_exception_hook

    window = make_window("tiny-gated")
    restore = install_exception_hook(window.context)
    try:
        def broken_slot():
            raise ZeroDivisionError("a bug in a slot")

        QTimer.singleShot(0, broken_slot)
        pump(50)
    finally:
        restore()
    notice = window.context.notices[-1]
    assert "ZeroDivisionError: a bug in a slot" in notice.message and "Traceback" in notice.details
    assert window.isVisible()


def test_a_checkpoint_rewritten_on_disk_is_read_again(make_window, tiny_checkpoints, checkpoint_dir):
    """``train --resume`` or ``eval`` rewrites a checkpoint the app has open: opened again, the app shows what the
    files hold now, not what it read before."""
    from checkpoint_factory import save_tiny

    window = make_window("tiny-pixelcnn")
    context = window.context
    assert context.load("tiny-gated") and "test_nll_nats" not in context.loaded.info.meta
    save_tiny(checkpoint_dir, "tiny-gated", "gated-pixelcnn", quantiles=[321.0] * 101)
    assert context.load("tiny-pixelcnn") and context.load("tiny-gated")
    assert context.loaded.info.meta["test_nll_nats"] == pytest.approx(321.0)
    assert "321.00" in window.card.nll.text()
