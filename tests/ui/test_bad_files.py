"""The desktop app fed the bad-input corpus: each image file is converted or refused with a one-line notice that
names it and changes nothing; each bad checkpoint is refused and the current model kept; no dialog blocks, no
pickle runs, and the Score view still scores afterwards."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the corpus lives in tests/bad_inputs

from bad_inputs.make import checkpoints, images, pickle_that_creates, tiny_checkpoint  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.core.scoring import score  # noqa: E402


def _scored(view, wait_for) -> None:
    expected = score(view.loaded.model, view.canvas.values[None].astype(np.float32)).nll_nats[0]
    wait_for(lambda: view.result is not None and abs(view.result.nll_nats - expected) < 1e-6)


def test_the_score_view_takes_the_whole_corpus(make_window, tiny_checkpoints, wait_for, tmp_path) -> None:
    window = make_window("tiny-pixelcnn")
    view = window.show_view("score")
    QTest.qWait(100)
    view.canvas.stroke([(3, 3)], finished=True)
    _scored(view, wait_for)
    for case in images():
        path = case.write(tmp_path)
        before = view.canvas.values.copy()
        notices = len(window.context.notices)
        ok = view.load_file(path)
        assert QApplication.activeModalWidget() is None, f"{case.name} opened a blocking dialog"
        if case.expect == "converted":
            assert ok, f"{case.name}: {window.context.notices[-1].message if window.context.notices else ''}"
            assert view.canvas.values.shape == (1, 28, 28) and view.canvas.values.max() <= 1
            assert case.name in view.notes.text()
        else:
            assert ok is False, f"{case.name} was accepted"
            np.testing.assert_array_equal(view.canvas.values, before)
            assert len(window.context.notices) == notices + 1
            message = window.context.notices[-1].message
            assert case.name in message and "\n" not in message and case.reason in message.lower()
        QApplication.processEvents()
    view.canvas.erase_all()
    view.canvas.stroke([(10, 14), (14, 14)], finished=True)
    _scored(view, wait_for)


def test_bad_checkpoints_are_refused_and_the_model_kept(make_window, tiny_checkpoints, tmp_path) -> None:
    window = make_window("tiny-pixelcnn")
    context = window.context
    current = context.loaded
    valid = tiny_checkpoint(tmp_path / "valid").read_bytes()  # the corpus mutates a tiny MADE checkpoint
    marker = tmp_path / "pickle-was-executed"
    planted = tmp_path / "planted.safetensors"
    planted.write_bytes(pickle_that_creates(marker))
    (tmp_path / "planted.pt").write_bytes(pickle_that_creates(marker))
    folder = tmp_path / "bad"
    folder.mkdir()
    cases = [(case.write(folder), case.reason) for case in checkpoints(valid)]
    cases += [(planted, "pickle"), (tmp_path / "planted.pt", "pickle")]
    for path, reason in cases:
        notices = len(context.notices)
        assert context.load(str(path)) is False, f"{path.name} was opened"
        assert context.loaded is current
        assert len(context.notices) == notices + 1
        message = context.notices[-1].message
        assert path.name in message and "\n" not in message and reason in message.lower()
        assert QApplication.activeModalWidget() is None
    assert not marker.exists()
    assert context.load("small-pixelcnn") is True


@pytest.mark.skipif(sys.platform == "win32", reason="FIFOs as POSIX makes them")
def test_special_files_never_hang_the_app(make_window, tiny_checkpoints, checkpoint_dir, tmp_path) -> None:
    """A FIFO in the checkpoint folder hung the app before its window opened; one opened as a checkpoint or
    dropped as an image hung it too."""
    import os
    import time

    from bad_inputs.make import special_files

    for item in special_files():
        item.make(checkpoint_dir / f"{item.kind}.safetensors")
    started = time.monotonic()
    window = make_window("tiny-pixelcnn")
    assert time.monotonic() - started < 30
    assert "fifo" not in {info.name for info in window.context.checkpoints()}
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    view = window.show_view("score")
    started = time.monotonic()
    assert view.load_file(fifo) is False
    assert window.context.load(str(checkpoint_dir / "fifo.safetensors")) is False
    assert time.monotonic() - started < 3
    assert "named pipe" in window.context.notices[-1].message
