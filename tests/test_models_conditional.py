"""Conditional models: the class-conditional and super-resolution Gated PixelCNNs, the grayscale hierarchy
(colour given grey, and the exactness of p(grey) p(colour | grey)), and colour MNIST."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from app.cli.main import main
from app.core.checkpoints import save_checkpoint
from app.core.conditions import derive_condition
from app.core.datasets import DataSplit
from app.core.errors import ModelError
from app.core.sampling import sample
from app.core.synthetic import synthetic_digits
from app.core.training import TrainConfig, train
from plugins import colour_datasets
from plugins.conditional import CLASS_CONDITIONAL, SUPER_RESOLUTION
from plugins.hierarchy import COLOUR_STAGE, GrayscaleHierarchy, feasibility_table, load_hierarchy
from plugins.pixelcnn import SPEC as PIXELCNN

SMALL = {"channels": 12, "layers": 3, "kernel": 3, "first_kernel": 5, "head_channels": 12, "cond_channels": 8}


def small(spec) -> dict:
    """SMALL, less the keys ``spec`` does not take (a model's typed hyperparameters refuse them)."""
    return {key: value for key, value in SMALL.items() if key in spec.known_hparams}


@pytest.fixture(scope="module")
def digits14():
    """1024 binary 14x14 synthetic digits with labels (14x14 keeps training and sampling quick on a CPU)."""
    images, labels = synthetic_digits(1024, seed=5, size=14)
    return DataSplit((images > 127).astype(np.uint8), labels)


def _fit(spec, data: DataSplit, steps: int, hparams: dict | None = None):
    torch.manual_seed(0)
    model = spec.create(spec.make_config(data.images.shape[1:], 2, {**small(spec), **(hparams or {})}))
    cfg = TrainConfig(epochs=steps * 32 / len(data), batch_size=32, lr=2e-2, warmup_steps=5, log_every=10**6)
    for _ in train(model, data, None, cfg, None):
        pass
    return model


def _nll(model, x, cond) -> float:
    with torch.no_grad():
        return float(-model.log_prob(x, cond).flatten(1).sum(1).mean())


# class-conditional ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def class_model(digits14):
    return _fit(CLASS_CONDITIONAL, digits14, steps=60)


def test_class_conditional_model_uses_the_label(class_model):
    model = class_model
    images, labels = synthetic_digits(200, seed=9, size=14)
    x = torch.as_tensor((images > 127).astype(np.float32))
    right = torch.as_tensor(labels)
    wrong = (right + 1) % 10
    assert _nll(model, x, right) < _nll(model, x, wrong) - 0.5


def _save_untrained(spec, path: Path, shape, num_values: int = 2, dataset: str = "synthetic-digits", **extra):
    torch.manual_seed(1)
    model = spec.create(spec.make_config(shape, num_values, small(spec)))
    save_checkpoint(model, path, {"dataset": dataset, "binarization": "test", **extra})
    return model


def test_cli_samples_a_digit_on_demand_and_refuses_a_bad_label(tmp_path, capsys):
    ckpt = tmp_path / "cond"
    _save_untrained(CLASS_CONDITIONAL, ckpt, (1, 14, 14))
    out = tmp_path / "seven.png"
    args = ["sample", "--checkpoint", str(ckpt) + ".safetensors", "--n", "3", "--device", "cpu"]
    assert main([*args, "--label", "7", "--out", str(out), "--npy", str(tmp_path / "seven.npy")]) == 0
    assert out.is_file() and np.load(tmp_path / "seven.npy").shape == (3, 1, 14, 14)
    bad = tmp_path / "bad.png"
    assert main([*args, "--label", "12", "--out", str(bad)]) == 2
    assert main([*args, "--out", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "between 0 and 9" in err and "give a label" in err and not bad.exists()


def test_the_label_changes_the_samples_of_a_trained_model(class_model):
    model = class_model
    ones = sample(model, 8, seed=3, cond=torch.full((8,), 1))
    eights = sample(model, 8, seed=3, cond=torch.full((8,), 8))
    # A "1" is a thin stroke and an "8" two loops: the same random numbers give fewer on-pixels for 1.
    assert ones.float().mean() < eights.float().mean()


# super-resolution ---------------------------------------------------------------------------------------------


def test_superres_condition_counts_the_on_pixels_of_each_block():
    x = torch.zeros(1, 1, 28, 28)
    x[0, 0, 4:8, 8:12] = 1  # block (1, 2) full
    x[0, 0, 0, 0] = 1  # one pixel of block (0, 0)
    cond = derive_condition(SUPER_RESOLUTION.condition, x, None, 2)
    assert cond.shape == (1, 1, 7, 7)
    assert cond[0, 0, 1, 2] == 16 and cond[0, 0, 0, 0] == 1 and cond.sum() == 17


def test_superres_samples_agree_with_their_7x7_condition(digits14):
    """Samples given a 7x7 condition, downsampled again, match it far better than even perfect unconditional
    samples (other real digits) do."""
    model = _fit(SUPER_RESOLUTION, digits14, steps=60)
    spec = model.config.condition
    images, _ = synthetic_digits(16, seed=9, size=14)
    target = torch.as_tensor((images[:8] > 127).astype(np.float32))
    others = torch.as_tensor((images[8:] > 127).astype(np.float32))
    cond = derive_condition(spec, target, None, 2)
    drawn = sample(model, 8, seed=1, cond=cond).float()

    def error(x):
        return float((derive_condition(spec, x, None, 2) - cond).abs().mean())

    assert error(drawn) < 0.4 * error(others)


def test_cli_superres_from_a_7x7_png_or_a_full_image(tmp_path, capsys):
    ckpt = tmp_path / "sr"
    _save_untrained(SUPER_RESOLUTION, ckpt, (1, 14, 14))
    image = np.zeros((14, 14), dtype=np.uint8)
    image[2:12, 6:8] = 255
    Image.fromarray(image).save(tmp_path / "full.png")
    low = image.reshape(7, 2, 7, 2).astype(float).mean((1, 3))
    Image.fromarray(low.round().astype(np.uint8)).save(tmp_path / "low.png")
    args = ["sample", "--checkpoint", str(ckpt) + ".safetensors", "--n", "2", "--device", "cpu"]
    for name in ("low", "full"):
        assert main([*args, "--condition", str(tmp_path / f"{name}.png"), "--out", str(tmp_path / f"{name}-s.png"),
                     "--npy", str(tmp_path / f"{name}.npy")]) == 0
    # The 7x7 image and the full image it summarises are the same condition: the same samples.
    assert np.array_equal(np.load(tmp_path / "low.npy"), np.load(tmp_path / "full.npy"))
    (tmp_path / "junk.png").write_text("not an image")
    assert main([*args, "--condition", str(tmp_path / "junk.png"), "--out", str(tmp_path / "x.png")]) == 2
    assert main([*args, "--out", str(tmp_path / "x.png")]) == 2
    assert not (tmp_path / "x.png").exists()
    assert "give one" in capsys.readouterr().err


# the grayscale hierarchy --------------------------------------------------------------------------------------


def test_feasibility_table_of_two_bit_colour_and_binary_grey():
    table = feasibility_table(COLOUR_STAGE.condition, 3, 4)  # (C, K^2, K, G)
    assert table.shape == (3, 16, 4, 2)
    assert bool(table[0, 0].bool().all())  # every red value can still end in either grey level
    # After R = 0, G = 0: only B <= 3 is possible, and grey 1 needs R + G + B >= 5: impossible.
    assert table[2, 0, :, 1].sum() == 0 and table[2, 0, :, 0].sum() == 4
    # After R = 3, G = 3: B >= 0 reaches grey 1 always; grey 0 (sum <= 4) never.
    assert table[2, 15, :, 0].sum() == 0 and table[2, 15, :, 1].sum() == 4


def _tiny_pair(shape_hw=(1, 2), seed=0):
    torch.manual_seed(seed)
    grey = PIXELCNN.create(PIXELCNN.make_config((1, *shape_hw), 2, tiny=True))
    colour = COLOUR_STAGE.create(COLOUR_STAGE.make_config((3, *shape_hw), 4, tiny=True))
    for model in (grey, colour):
        model.eval()
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.3 * torch.randn_like(p))  # away from the initialisation: a non-trivial distribution
    return GrayscaleHierarchy(grey, colour)


def test_hierarchy_is_an_exact_distribution_over_colour_images():
    """Summed over all 4^6 colour images of 1x2 pixels, p(grey(c)) p(c | grey(c)) is exactly 1."""
    hierarchy = _tiny_pair()
    colours = torch.tensor(list(itertools.product(range(4), repeat=6)), dtype=torch.float32).view(-1, 3, 1, 2)
    result = hierarchy.score(colours)
    total = torch.logsumexp(-torch.as_tensor(result.total_nats), 0)
    assert abs(float(total)) < 1e-4
    # Without the constraint the same networks would only give a lower bound: the colour stage alone spreads
    # mass over colours of every grey, and all of it is kept here.
    grey = hierarchy.grey_of(colours)
    with torch.no_grad():
        inconsistent = hierarchy.colour.log_prob(colours, 1 - grey).flatten(1).sum(1)
    assert float(inconsistent.max()) < -1000  # a colour image whose grey disagrees has probability 0


def test_hierarchy_samples_both_stages_and_colour_matches_grey():
    hierarchy = _tiny_pair((4, 4), seed=2)
    steps = list(hierarchy.sample_steps(6, seed=4, every=4))
    stages = [s.stage for s in steps]
    assert stages[0] == "grey" and stages[-1] == "colour" and stages == sorted(stages, key=["grey", "colour"].index)
    assert steps[-1].network_calls == 16 + 48  # 16 grey pixels, then 16 pixels x 3 channels
    grey, colour = steps[-1].grey, steps[-1].step.image
    assert np.array_equal(hierarchy.grey_of(torch.as_tensor(colour)).numpy(), grey)
    again = hierarchy.sample(6, seed=4)
    assert np.array_equal(again[0], grey) and np.array_equal(again[1], colour)


def test_hierarchy_refuses_stages_that_do_not_fit():
    pair = _tiny_pair()
    with pytest.raises(ModelError, match="grey stage models"):
        GrayscaleHierarchy(PIXELCNN.create(PIXELCNN.make_config((1, 3, 3), 2, tiny=True)), pair.colour)
    with pytest.raises(ModelError, match="no colour stage"):
        GrayscaleHierarchy(pair.grey, pair.grey)


def test_load_hierarchy_finds_the_grey_stage_by_its_dataset(tmp_path, monkeypatch):
    from app.core.session import Session

    folder = Path(tmp_path / "ckpts")
    monkeypatch.setenv("AR_EXPLORER_CHECKPOINTS", str(folder))
    pair = _tiny_pair((28, 28))
    save_checkpoint(pair.colour, folder / "colour", {"dataset": "colour-mnist"})
    session = Session(device="cpu")
    # only the checkpoints of this test's folder: the shipped ones include a grey stage of their own
    shipped_and_ours = session.checkpoints
    monkeypatch.setattr(session, "checkpoints", lambda: [i for i in shipped_and_ours() if folder in i.weights.parents])
    with pytest.raises(ModelError, match="colour-mnist-grey"):
        load_hierarchy(session, "colour")
    save_checkpoint(pair.grey, folder / "grey", {"dataset": "colour-mnist-grey", "test_nll_nats": 80.0})
    hierarchy = load_hierarchy(session, "colour")
    assert tuple(hierarchy.grey.shape) == (1, 28, 28) and tuple(hierarchy.colour.shape) == (3, 28, 28)


# colour MNIST -------------------------------------------------------------------------------------------------


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def tiny_idx(tmp_path):
    """A data folder with MNIST-format IDX files of 40 training and 20 test synthetic digits."""
    folder = tmp_path / "idx"
    folder.mkdir()
    for prefix, n, seed in (("train", 40, 1), ("t10k", 20, 2)):
        images, labels = synthetic_digits(n, seed)
        _write_idx(folder / f"{prefix}-images-idx3-ubyte", images[:, 0])
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels)
    return folder


def _check_colouring(colour: np.ndarray, strokes: np.ndarray) -> None:
    assert colour.dtype == np.uint8 and colour.shape[1] == 3 and colour.max() <= 3
    for image, on in zip(colour, strokes[:, 0].astype(bool), strict=True):
        fg = np.unique(image[:, on].T, axis=0)
        bg = np.unique(image[:, ~on].T, axis=0)
        assert len(fg) == 1 and len(bg) == 1  # one colour for the strokes, one for the background
        assert fg.sum() >= 5 and bg.sum() <= 2


def test_colour_mnist_from_idx_files(tiny_idx, registry):
    spec = registry.dataset("colour-mnist")
    data = spec.load("train", tiny_idx)
    threshold = registry.dataset("mnist-threshold").load("train", tiny_idx)
    assert data.images.shape == (40, 3, 28, 28) and spec.num_values == 4
    assert np.array_equal(data.labels, threshold.labels)
    _check_colouring(data.images, threshold.images)
    grey = registry.dataset("colour-mnist-grey").load("train", tiny_idx)
    assert np.array_equal(grey.images, threshold.images)  # the grey stage is the thresholded digit
    test = spec.load("test", tiny_idx)
    assert test.images.shape == (20, 3, 28, 28)


def test_colouring_is_seeded_and_varied():
    strokes = (synthetic_digits(200, seed=4)[0] > 127).astype(np.uint8)
    first = colour_datasets.colourize(strokes, seed=7)
    assert np.array_equal(first, colour_datasets.colourize(strokes, seed=7))
    assert not np.array_equal(first, colour_datasets.colourize(strokes, seed=8))
    _check_colouring(first, strokes)
    foregrounds = {tuple(img[:, on].T[0]) for img, on in zip(first, strokes[:, 0].astype(bool), strict=True)}
    assert len(foregrounds) > 20  # of the 32 possible bright colours


def test_synthetic_colour_digits_and_their_grey_stage(registry):
    data = registry.dataset("synthetic-colour-digits").load("test", Path("."))
    grey = registry.dataset("synthetic-colour-digits-grey").load("test", Path("."))
    binary = registry.dataset("synthetic-digits").load("test", Path("."))
    assert data.images.shape == (2000, 3, 28, 28)
    assert np.array_equal(grey.images, binary.images)
    _check_colouring(data.images[:50], binary.images[:50])
    assert math.isclose(float(grey.images.mean()), float(binary.images.mean()))


def test_cli_samples_the_hierarchy_in_two_exact_steps(tmp_path, capsys):
    """The grey stage's --npy output is the colour stage's --condition: every colour sample has that grey."""
    pair = _tiny_pair((6, 6), seed=3)
    save_checkpoint(pair.grey, tmp_path / "grey", {"dataset": "colour-mnist-grey"})
    save_checkpoint(pair.colour, tmp_path / "colour", {"dataset": "colour-mnist"})
    common = ["--n", "3", "--device", "cpu", "--seed", "5"]
    assert main(["sample", "--checkpoint", str(tmp_path / "grey.safetensors"), *common,
                 "--out", str(tmp_path / "grey.png"), "--npy", str(tmp_path / "grey.npy")]) == 0
    assert main(["sample", "--checkpoint", str(tmp_path / "colour.safetensors"), *common,
                 "--condition", str(tmp_path / "grey.npy"), "--out", str(tmp_path / "colour.png"),
                 "--npy", str(tmp_path / "colour.npy")]) == 0
    grey, colour = np.load(tmp_path / "grey.npy"), np.load(tmp_path / "colour.npy")
    assert colour.shape == (3, 3, 6, 6)
    assert np.array_equal(pair.grey_of(torch.as_tensor(colour)).numpy(), grey)


@pytest.mark.parametrize(("array", "message"), [
    (np.zeros((2, 1, 6, 6), np.uint8), "one per sample (3)"),
    (np.zeros((1, 5, 5), np.uint8), "shape"),
    (np.full((1, 6, 6), 2, np.uint8), "from 0 to 1"),
    (np.full((1, 6, 6), 0.5), "whole numbers"),
    (np.array([{"a": 1}], dtype=object), "not a readable .npy"),
])
def test_cli_refuses_a_bad_npy_condition_in_one_line(tmp_path, capsys, array, message):
    pair = _tiny_pair((6, 6))
    save_checkpoint(pair.colour, tmp_path / "colour", {"dataset": "colour-mnist"})
    np.save(tmp_path / "cond.npy", array, allow_pickle=True)
    out = tmp_path / "out.png"
    code = main(["sample", "--checkpoint", str(tmp_path / "colour.safetensors"), "--n", "3", "--device", "cpu",
                 "--condition", str(tmp_path / "cond.npy"), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1 and not out.exists()
