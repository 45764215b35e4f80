"""Completion: masks, validation, known pixels kept exactly, the any-order model conditioning on all of them,
and the ``complete`` command end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from app.cli.main import main
from app.core.checkpoints import save_checkpoint
from app.core.completion import (
    MASK_PRESETS,
    CompletionError,
    complete,
    complete_steps,
    completion_figure,
    completion_notes,
    mask_from_image,
    mask_preset,
    resolve_mask,
    validate_mask,
)
from app.core.orderings import raster
from plugins.attention import ANY_ORDER_ATTENTION, ATTENTION
from plugins.made import SPEC as MADE

SHAPE = (1, 6, 6)


def _model(spec, ordering=None, seed=0):
    torch.manual_seed(seed)
    model = spec.create(spec.make_config(SHAPE, 2, ordering=ordering, tiny=True))
    return model.eval()


def _image(seed=0):
    return np.random.default_rng(seed).integers(0, 2, SHAPE).astype(np.uint8)


@pytest.mark.parametrize("name", list(MASK_PRESETS))
def test_presets_leave_known_and_unknown(name):
    mask = mask_preset(name, 7, 6)
    assert mask.shape == (7, 6) and mask.any() and not mask.all()


def test_opposite_halves_partition_an_even_grid():
    assert np.array_equal(mask_preset("top-half", 6, 6), ~mask_preset("bottom-half", 6, 6))
    assert np.array_equal(mask_preset("left-half", 6, 6), ~mask_preset("right-half", 6, 6))
    assert mask_preset("top-half", 6, 6)[:3].all() and not mask_preset("top-half", 6, 6)[3:].any()


@pytest.mark.parametrize(
    ("mask", "message"),
    [
        (np.zeros((6, 6), bool), "empty"),
        (np.ones((6, 6), bool), "every pixel is known"),
        (np.ones((5, 6), bool), "5x6"),
    ],
)
def test_bad_masks_are_refused_with_the_reason(mask, message):
    with pytest.raises(CompletionError, match=message):
        validate_mask(mask, 6, 6)


def test_unknown_preset_names_the_presets():
    with pytest.raises(CompletionError, match="top-half"):
        resolve_mask("upper-half", 6, 6)


def test_mask_from_image_white_is_known_and_is_resized(tmp_path):
    array = np.zeros((60, 60), dtype=np.uint8)
    array[:20] = 255  # the top third known
    path = tmp_path / "mask.png"
    Image.fromarray(array).save(path)
    mask = mask_from_image(path, 6, 6)
    assert mask[:2].all() and not mask[2:].any()
    assert np.array_equal(resolve_mask(str(path), 6, 6), mask)


@pytest.mark.parametrize(
    ("spec", "ordering"), [(ANY_ORDER_ATTENTION, None), (ATTENTION, raster(6, 6)), (MADE, raster(6, 6))]
)
@pytest.mark.parametrize("preset", ["bottom-half", "centre"])
def test_completions_keep_the_known_pixels_exactly(spec, ordering, preset):
    model = _model(spec, ordering)
    image = _image(1)
    known = mask_preset(preset, 6, 6)
    result = complete(model, image, known, n=8, seed=3)
    assert result.completions.shape == (8, *SHAPE)
    kept = result.completions[:, 0][:, known]
    assert np.array_equal(kept, np.broadcast_to(image[0][known], kept.shape))
    unknown = result.completions[:, 0][:, ~known]
    assert len({row.tobytes() for row in unknown}) > 1, "eight completions of an untrained model all agree"


def test_any_order_model_visits_the_known_pixels_first():
    model = _model(ANY_ORDER_ATTENTION)
    known = mask_preset("bottom-half", 6, 6)
    steps = list(complete_steps(model, _image(2), known, n=2, seed=0))
    flags = [step.known for step in steps]
    assert flags == [True] * int(known.sum()) + [False] * int((~known).sum())
    visited = [tuple(step.positions[0, 1:]) for step in steps[: int(known.sum())]]
    assert all(known[r, c] for r, c in visited)


def test_notes_say_when_a_fixed_ordering_cannot_see_the_known_region():
    known_top = mask_preset("top-half", 6, 6)
    made = _model(MADE, raster(6, 6))
    assert completion_notes(made, known_top) == []
    assert "before it" in completion_notes(made, ~known_top)[0]
    assert completion_notes(_model(ANY_ORDER_ATTENTION), ~known_top) == []


def test_figure_shows_the_input_then_each_completion():
    model = _model(ANY_ORDER_ATTENTION)
    result = complete(model, _image(3), mask_preset("left-half", 6, 6), n=3, seed=1)
    figure = completion_figure(result, scale=2)
    assert figure.height == 6 * 2 + 4
    assert figure.width > 4 * 6 * 2
    pixels = np.asarray(figure)
    tint = pixels[2 : 2 + 12, 2 : 2 + 12]  # the first tile: its right half is tinted blue
    assert (tint[:, 6:, 2] > tint[:, 6:, 0]).all()


@pytest.fixture
def checkpoint_dir(tmp_path, monkeypatch):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    monkeypatch.setenv("AR_EXPLORER_CHECKPOINTS", str(folder))
    return folder


def test_complete_command_keeps_the_known_half(checkpoint_dir, tmp_path, capsys):
    save_checkpoint(_model(ANY_ORDER_ATTENTION), checkpoint_dir / "tiny-any", {"dataset": "none"})
    image = np.zeros((6, 6), dtype=np.uint8)
    image[1:5, 2] = 255
    image_path = tmp_path / "digit.png"
    Image.fromarray(image).save(image_path)
    out, npy = tmp_path / "out.png", tmp_path / "out.npy"
    code = main(["complete", str(image_path), "--checkpoint", "tiny-any", "--known", "top-half", "--n", "5",
                 "--out", str(out), "--npy", str(npy), "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    completions = np.load(npy)
    assert completions.shape == (5, *SHAPE)
    expected_top = (image[:3] > 127).astype(np.uint8)
    assert np.array_equal(completions[:, 0, :3], np.broadcast_to(expected_top, (5, 3, 6)))
    assert Image.open(out).size[0] > 5 * 6
    assert "keeping 18 of 36 pixels" in capsys.readouterr().out


def test_complete_command_refuses_a_bad_mask_and_writes_nothing(checkpoint_dir, tmp_path, capsys):
    save_checkpoint(_model(ANY_ORDER_ATTENTION), checkpoint_dir / "tiny-any", {"dataset": "none"})
    image_path = tmp_path / "digit.png"
    Image.fromarray(np.zeros((6, 6), dtype=np.uint8)).save(image_path)
    empty = tmp_path / "empty.png"
    Image.fromarray(np.zeros((6, 6), dtype=np.uint8)).save(empty)
    out = tmp_path / "out.png"
    for known in ("no-such-preset", str(empty)):
        code = main(["complete", str(image_path), "--checkpoint", "tiny-any", "--known", known, "--out", str(out)])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("error:") and len(err.strip().splitlines()) == 1
    assert not out.exists()
