"""Session files in the app: save, close, open, and the same state is on screen; a session naming what this
machine lacks says what is missing and opens the rest; a file that is not valid changes nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from app.core.session_file import FORMAT, load_session  # noqa: E402
from app.ui import session_io  # noqa: E402
from app.ui.preferences import Preferences  # noqa: E402


def set_up_a_demo(window, wait_for) -> dict:
    """Every part of a session changed from its default, as a lecturer would the night before."""
    window.context.set_scale(1.5)
    sample = window.show_view("sample")
    c = sample.controls
    c.seed.setValue(4321)
    c.temperature.setValue(70)
    c.count.setValue(4)
    c.mode.setCurrentIndex(c.mode.findData("naive"))
    c.speed.setValue(7)  # 5 pixels/s: slow motion
    sample.step(5)
    wait_for(lambda: sample.frame is not None and sample.frame.step.index == 4)
    score = window.show_view("score")
    score.canvas.stroke([(10, 8), (11, 9), (12, 10), (13, 11)], finished=True)
    orderings = window.show_view("orderings")
    orderings.tools.paint.setChecked(True)
    orderings._on_stroke([(3, 3), (3, 4), (4, 4)], True)
    fisher = window.show_view("fisher")
    rng = np.random.default_rng(0)
    a, b = (rng.integers(0, 2, size=(1, 28, 28)).astype(np.uint8) for _ in range(2))
    fisher.slot_a.set_image(a, "image a")
    fisher.slot_b.set_image(b, "image b")
    fisher.steps.setValue(6)
    window.show_view("orderings")
    return {"samples": sample.frame.step.image.copy(), "drawing": score.canvas.values.copy(),
            "ordering": orderings.editor.ordering, "a": a, "b": b}


def test_a_session_round_trips_save_close_open(make_window, tiny_checkpoints, wait_for, tmp_path):
    first = make_window("tiny-pixelcnn")
    demo = set_up_a_demo(first, wait_for)
    path = tmp_path / "lecture"
    assert session_io.save_to(first, path)
    path = path.with_suffix(".arsession")
    saved = json.loads(path.read_text())
    assert saved["format"] == FORMAT and saved["checkpoint"]["ref"] == "tiny-pixelcnn"
    assert path.stat().st_size < 20_000, "a session is one small file"
    first.close()

    # A fresh window with its own settings, so nothing can come from the first window's preferences.
    second = make_window(None, preferences=Preferences(tmp_path / "elsewhere.ini"), session=str(path))
    ctx = second.context
    assert ctx.loaded.name == "tiny-pixelcnn" and ctx.scale == 1.5
    assert session_io.current_view_name(second) == "orderings"
    assert second.views["orderings"].editor.ordering == demo["ordering"]
    score = second.views["score"]
    np.testing.assert_array_equal(score.canvas.values, demo["drawing"])
    assert score.source == "your drawing"
    fisher = second.views["fisher"]
    np.testing.assert_array_equal(fisher.slot_a.canvas.values, demo["a"])
    np.testing.assert_array_equal(fisher.slot_b.canvas.values, demo["b"])
    assert (fisher.slot_a.source, fisher.slot_b.source, fisher.steps.value()) == ("image a", "image b", 6)
    sample = second.show_view("sample")  # the run comes back when its tab is shown: paused after 5 pixels
    c = sample.controls
    assert (c.seed_value, c.temperature_value, c.count_value, c.mode_value) == (4321, 0.7, 4, "naive")
    assert c.speed.value() == 7
    wait_for(lambda: sample.frame is not None and sample.frame.step.index == 4)
    np.testing.assert_array_equal(sample.frame.step.image, demo["samples"])  # same seed: the same pixels
    assert not sample.worker.playing
    sample.stop()
    assert not [n for n in ctx.notices if n.level in ("error", "warning")], [n.message for n in ctx.notices]


def test_a_session_naming_a_missing_checkpoint_and_plugin_says_so_and_opens_the_rest(make_window,
                                                                                    tiny_checkpoints, tmp_path):
    drawing = ["0" * 28] * 10 + ["0" * 10 + "1" * 8 + "0" * 10] * 8 + ["0" * 28] * 10
    path = tmp_path / "from-a-friend.arsession"
    path.write_text(json.dumps({
        "format": FORMAT, "version": 1, "view": "score",
        "checkpoint": {"ref": "friends-model", "model": "my-model", "plugin": "my_plugin", "module": "my_plugin",
                       "dataset": "binarized-mnist", "title": "My Model"},
        "ordering": {"height": 28, "width": 28, "order": [[r, c] for r in range(28) for c in range(28)][::-1],
                     "preset": "backwards"},
        "drawing": {"shape": [1, 28, 28], "levels": 2, "rows": drawing, "source": "a square"},
        "sampling": {"seed": 99},
    }))
    window = make_window("tiny-gated", preferences=Preferences(tmp_path / "p.ini"))
    assert session_io.open_from(window, path)
    ctx = window.context
    warnings = [n.message for n in ctx.notices if n.level == "warning"]
    assert any("the checkpoint friends-model (My Model, trained on binarized-mnist) is not on this machine" in w
               for w in warnings)
    assert any("the model 'my-model' comes from plugin my_plugin" in w and "AR_EXPLORER_PLUGINS" in w
               for w in warnings)
    assert any("the ordering preset 'backwards' is not available here" in w for w in warnings)
    assert any("opens on tiny-gated" in w for w in warnings)
    # ... and the rest opened: on the model that is here
    assert ctx.loaded.name == "tiny-gated" and session_io.current_view_name(window) == "score"
    score = window.views["score"]
    assert score.canvas.values[0, 12, 12] == 1 and score.canvas.values.sum() == 64 and score.source == "a square"
    assert window.views["orderings"].editor.ordering.order[0].tolist() == [27, 27]
    assert window.views["sample"].controls.seed_value == 99


def test_a_drawing_for_another_number_of_levels_is_converted(make_window, tiny_checkpoints, tmp_path):
    rows = ["00" * 28] * 27 + ["ff" * 14 + "40" * 14]
    path = tmp_path / "grey.arsession"
    path.write_text(json.dumps({"format": FORMAT, "version": 1,
                                "drawing": {"shape": [1, 28, 28], "levels": 256, "rows": rows}}))
    window = make_window("tiny-gated")
    assert session_io.open_from(window, path)
    values = window.views["score"].canvas.values
    assert values[0, 27, :14].tolist() == [1] * 14 and values[0, 27, 14:].sum() == 0 and values.sum() == 14
    assert any("converted from 256 to 2 levels" in n.message for n in window.context.notices)


def test_a_file_that_is_not_a_session_changes_nothing(make_window, tiny_checkpoints, tmp_path):
    window = make_window("tiny-gated")
    sample = window.views["sample"]
    sample.controls.seed.setValue(17)
    bad = tmp_path / "broken.arsession"
    bad.write_text(json.dumps({"format": FORMAT, "version": 1, "sampling": {"seed": 5, "images": "many"}}))
    assert not session_io.open_from(window, bad)
    errors = [n.message for n in window.context.notices if n.level == "error"]
    assert errors == ["broken.arsession: sampling.images must be an integer from 1 to 1024, not 'many'"]
    assert sample.controls.seed_value == 17 and window.context.loaded.name == "tiny-gated"


def test_the_command_line_opens_a_session_and_its_options_win(make_window, tiny_checkpoints, tmp_path):
    first = make_window("tiny-pixelcnn")
    first.show_view("score")
    assert session_io.save_to(first, tmp_path / "s.arsession")
    first.close()
    state = load_session(tmp_path / "s.arsession")
    assert state.view == "score" and state.checkpoint.ref == "tiny-pixelcnn"
    second = make_window("tiny-gated", preferences=Preferences(tmp_path / "q.ini"), session=str(tmp_path / "s.arsession"),
                         view="sample")
    assert second.context.loaded.name == "tiny-gated"  # --checkpoint named on the command line wins
    assert session_io.current_view_name(second) != "score"


def test_a_bad_session_argument_is_one_line_and_the_app_opens(make_window, tiny_checkpoints, tmp_path, capsys):
    window = make_window("tiny-gated", session=str(tmp_path / "absent.arsession"))
    assert window.context.loaded.name == "tiny-gated"
    err = capsys.readouterr().err
    assert err.strip() == f"error: no session file at {tmp_path / 'absent.arsession'}"
    assert any(n.level == "error" and "no session file" in n.message for n in window.context.notices)
