"""Session files (app.core.session_file), without Qt: a full session round-trips exactly, images stay
readable, a file that is not valid is refused with one line naming the field, and a session naming what a
machine lacks says what is missing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.core.orderings import painted, spiral
from app.core.session_file import (
    FORMAT,
    CheckpointRef,
    FisherPair,
    OrderingChoice,
    SamplingSettings,
    SessionError,
    SessionImage,
    SessionState,
    checkpoint_ref,
    fit_image,
    load_session,
    missing_parts,
    resolve_checkpoint,
    save_session,
    session_to_dict,
)


def digit(num_values: int = 2, shape=(1, 6, 5), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, num_values, size=shape).astype(np.uint8)


def full_state() -> SessionState:
    return SessionState(
        checkpoint=CheckpointRef("gated-pixelcnn-binarized-mnist", "gated-pixelcnn", "gated_pixelcnn",
                                 "plugins.gated_pixelcnn", "binarized-mnist", "Gated PixelCNN"),
        view="orderings",
        scale=2.0,
        sampling=SamplingSettings(seed=1234, temperature=0.8, images=9, mode="compare", label=None, run="paused",
                                  step=57, speed="max"),
        ordering=OrderingChoice(painted(6, 5, [(3, 2), (3, 3), (2, 3)]), None),
        drawing=SessionImage(digit(), 2, "your drawing", label=3),
        fisher=FisherPair(SessionImage(digit(seed=1), 2, "test image #2"), SessionImage(digit(seed=2), 2, "b"), 6),
        views={"my-plugin-view": {"zoom": 3}},
    )


def test_a_full_session_round_trips_exactly(tmp_path):
    state = full_state()
    path = save_session(state, tmp_path / "demo.arsession")
    back = load_session(path)
    assert back.checkpoint == state.checkpoint
    assert (back.view, back.scale, back.sampling, back.views) == ("orderings", 2.0, state.sampling, state.views)
    assert back.ordering.ordering == state.ordering.ordering and back.ordering.preset is None
    for got, want in ((back.drawing, state.drawing), (back.fisher.a, state.fisher.a), (back.fisher.b, state.fisher.b)):
        np.testing.assert_array_equal(got.values, want.values)
        assert (got.num_values, got.source, got.label) == (want.num_values, want.source, want.label)
    assert back.fisher.steps == 6 and back.notes == []
    assert session_to_dict(back) == session_to_dict(state)


def test_images_are_rows_of_digits_that_read_as_a_picture(tmp_path):
    values = np.zeros((1, 3, 4), np.uint8)
    values[0, 1, 1:3] = 1
    data = session_to_dict(SessionState(drawing=SessionImage(values, 2)))
    assert data["drawing"]["rows"] == ["0000", "0110", "0000"]
    text = save_session(SessionState(drawing=SessionImage(values, 2)), tmp_path / "d.arsession").read_text()
    assert '\n      "0110",\n' in text, "each row on a line of its own: the drawing reads as a picture"
    grey = np.array([[[0, 255], [16, 7]]], np.uint8)
    data = session_to_dict(SessionState(drawing=SessionImage(grey, 256)))
    assert data["drawing"]["rows"] == ["00ff", "1007"]  # two hex digits per pixel over 16 levels
    save_session(SessionState(drawing=SessionImage(grey, 256)), tmp_path / "g.arsession")
    np.testing.assert_array_equal(load_session(tmp_path / "g.arsession").drawing.values, grey)


def test_a_preset_ordering_keeps_its_name_and_its_order(tmp_path):
    state = SessionState(ordering=OrderingChoice(spiral(5, 5), "spiral"))
    back = load_session(save_session(state, tmp_path / "s.arsession"))
    assert back.ordering.preset == "spiral" and back.ordering.ordering == spiral(5, 5)


def write(tmp_path, data) -> str:
    path = tmp_path / "bad.arsession"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def valid() -> dict:
    return session_to_dict(full_state())


@pytest.mark.parametrize("change, expected", [
    (lambda d: d.update(format="ordering"), "not an AR Explorer session"),
    (lambda d: d.update(version="one"), "version must be a positive integer"),
    (lambda d: d["sampling"].update(seed=-1), "sampling.seed must be an integer"),
    (lambda d: d["sampling"].update(temperature="hot"), "sampling.temperature must be a number"),
    (lambda d: d["sampling"].update(images=0), "sampling.images must be an integer from 1"),
    (lambda d: d["sampling"].update(run="sprinting"), "sampling.run must be idle or paused"),
    (lambda d: d["sampling"].update(speed=-3), "sampling.speed must be pixels per second"),
    (lambda d: d.update(scale=40), "scale must be a number from 0.5 to 4.0"),
    (lambda d: d["drawing"]["rows"].__setitem__(0, "zz0z0"), "drawing.rows[0] holds a character that is not a hex"),
    (lambda d: d["drawing"]["rows"].__setitem__(1, "01"), "drawing.rows[1] must be a string of 5 hex digits"),
    (lambda d: d["drawing"]["rows"].__setitem__(2, "00300"), "drawing.rows[2] holds the value 3; the image has 2"),
    (lambda d: d["drawing"].update(shape=[1, 6]), "drawing.shape must be [channels, height, width]"),
    (lambda d: d["fisher"]["b"].update(levels=1), "fisher.b.levels must be an integer from 2"),
    (lambda d: d["fisher"].update(steps=1000), "fisher.steps must be an integer from 2 to 64"),
    (lambda d: d["ordering"]["order"].pop(), "ordering:"),
    (lambda d: d["checkpoint"].update(ref=""), "checkpoint.ref must be a checkpoint name or path"),
    (lambda d: d.update(view=3), "view must be the name of a view"),
])
def test_an_invalid_session_is_refused_in_one_line_naming_the_field(tmp_path, change, expected):
    data = valid()
    change(data)
    with pytest.raises(SessionError) as caught:
        load_session(write(tmp_path, data))
    message = str(caught.value)
    assert expected in message and "\n" not in message and message.startswith("bad.arsession: ")


@pytest.mark.parametrize("text, expected", [
    ("{not json", "bad.arsession is not valid JSON"),
    ("[1, 2]", "the session must be a JSON object"),
    ("[" * 100000, "nested too deeply"),
])
def test_a_file_that_is_not_a_session_is_refused(tmp_path, text, expected):
    with pytest.raises(SessionError, match=expected):
        load_session(write(tmp_path, text))


def test_missing_files_and_folders_are_one_line(tmp_path):
    with pytest.raises(SessionError, match="no session file at"):
        load_session(tmp_path / "nope.arsession")
    with pytest.raises(SessionError, match="is a folder"):
        load_session(tmp_path)
    (tmp_path / "file").write_text("")
    with pytest.raises(SessionError, match="cannot write the session x.arsession"):
        save_session(SessionState(), tmp_path / "file" / "x.arsession")  # a file where a folder should be


def test_a_newer_version_loads_with_a_note(tmp_path):
    data = valid()
    data["version"] = 7
    data["from the future"] = True
    state = load_session(write(tmp_path, data))
    assert state.sampling.seed == 1234 and "newer AR Explorer" in state.notes[0]


def test_a_hand_written_session_may_name_just_the_checkpoint(tmp_path):
    state = load_session(write(tmp_path, {"format": FORMAT, "version": 1, "checkpoint": "pixelcnn-binarized-mnist",
                                          "sampling": {"seed": 5}}))
    assert state.checkpoint.ref == "pixelcnn-binarized-mnist" and state.sampling == SamplingSettings(seed=5)


def test_what_is_missing_is_said_one_sentence_each():
    state = full_state()
    state.ordering = OrderingChoice(spiral(6, 5), "snail-shell")
    here = missing_parts(state, ["pixelcnn-binarized-mnist"], {"pixelcnn"}, {"raster", "spiral"})
    assert here == [
        "the checkpoint gated-pixelcnn-binarized-mnist (Gated PixelCNN, trained on binarized-mnist) is not on this "
        "machine",
        "the model 'gated-pixelcnn' comes from plugin gated_pixelcnn (module plugins.gated_pixelcnn), which is not "
        "loaded here: install it, or name its module in AR_EXPLORER_PLUGINS",
        "the ordering preset 'snail-shell' is not available here; its 6x5 order, saved in the session, is used",
    ]
    assert missing_parts(full_state(), ["gated-pixelcnn-binarized-mnist"], {"gated-pixelcnn"}, set()) == []


def test_a_checkpoint_path_is_found_beside_the_session_file(tmp_path):
    (tmp_path / "mine.safetensors").write_bytes(b"")
    ref = CheckpointRef("mine.safetensors")
    assert resolve_checkpoint(ref, [], tmp_path) == str(tmp_path / "mine.safetensors")
    assert resolve_checkpoint(CheckpointRef("mine"), [], tmp_path) == str(tmp_path / "mine.safetensors")
    assert resolve_checkpoint(CheckpointRef("/elsewhere/gated.safetensors"), ["gated"]) == "gated"
    # saved with an absolute path on another machine, sent with its checkpoint file in the same folder
    assert resolve_checkpoint(CheckpointRef("/home/ann/mine.safetensors"), [], tmp_path) == str(tmp_path / "mine.safetensors")
    assert resolve_checkpoint(CheckpointRef("absent"), ["gated"], tmp_path) is None


def test_the_checkpoint_reference_names_the_plugin_that_provides_the_model():
    from app.core.registry import get_registry

    ref = checkpoint_ref("x", {"model": "gated-pixelcnn", "dataset": "binarized-mnist"}, get_registry(), "Gated")
    assert (ref.model, ref.plugin, ref.dataset, ref.title) == ("gated-pixelcnn", "gated_pixelcnn", "binarized-mnist",
                                                               "Gated")
    assert ref.module == "plugins.gated_pixelcnn"


def test_an_image_is_fitted_to_another_model_where_it_can_be():
    binary = SessionImage(np.array([[[0, 1], [1, 0]]], np.uint8), 2)
    values, note = fit_image(binary, (1, 2, 2), 256)
    np.testing.assert_array_equal(values, [[[0, 255], [255, 0]]])
    assert "converted from 2 to 256 levels" in note
    grey = SessionImage(np.array([[[0, 127], [128, 255]]], np.uint8), 256)
    np.testing.assert_array_equal(fit_image(grey, (1, 2, 2), 2)[0], [[[0, 0], [1, 1]]])
    same, note = fit_image(grey, (1, 2, 2), 256)
    np.testing.assert_array_equal(same, grey.values)
    assert note == "" and same is not grey.values  # a copy: restoring never aliases the session's arrays
    values, note = fit_image(binary, (1, 28, 28), 2)
    assert values is None and note == "the image is 2x2; the model takes 28x28"
