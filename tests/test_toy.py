"""The 1-D and 2-D demos: toy datasets, histogram, discretized logistic mixture, p(x1) p(x2 | x1)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.core.datasets import DataSplit
from app.core.sampling import sample
from app.core.training import TrainConfig, train
from plugins.toy import HISTOGRAM, MIXTURE, TWO_DIM, value_counts
from plugins.toy_datasets import MISSING_BAND, TOY_2D_VALUES, in_missing_band, load_toy_1d, load_toy_2d


def _nll(model, images: np.ndarray) -> np.ndarray:
    """NLL in nats of each example."""
    with torch.no_grad():
        return -model.log_prob(torch.as_tensor(images).float()).flatten(1).sum(1).double().numpy()


def _fit(spec, data: DataSplit, shape, k, steps: int, lr: float, seed: int = 0):
    torch.manual_seed(seed)
    model = spec.create(spec.make_config(shape, k))
    epochs = steps * 100 / len(data)
    cfg = TrainConfig(epochs=epochs, batch_size=100, lr=lr, warmup_steps=0, schedule="constant", log_every=10_000,
                      seed=seed)
    for _ in train(model, data, None, cfg, None):
        pass
    return model


def test_toy_1d_train_and_valid_never_show_the_band_that_test_contains():
    train_split, valid, test = (load_toy_1d(s, None) for s in ("train", "valid", "test"))
    for split in (train_split, valid, test):
        assert split.images.shape[1:] == (1, 1, 1) and split.images.dtype == np.uint8
        assert split.images.max() < 100
    assert not in_missing_band(train_split.images).any() and not in_missing_band(valid.images).any()
    band_share = in_missing_band(test.images).mean()
    assert 0.05 < band_share < 0.3
    np.testing.assert_array_equal(load_toy_1d("train", None).images, train_split.images)  # reproducible


def test_toy_2d_is_pairs_on_the_grid():
    split = load_toy_2d("train", None)
    assert split.images.shape[1:] == (1, 1, 2) and split.images.max() < TOY_2D_VALUES


def test_histogram_maximum_likelihood_gives_the_unseen_band_infinite_nll():
    train_split, test = load_toy_1d("train", None), load_toy_1d("test", None)
    band = in_missing_band(test.images.reshape(-1))
    model = HISTOGRAM.create(HISTOGRAM.make_config((1, 1, 1), 100))
    model.fit_counts(train_split.images)
    frequencies = value_counts(train_split.images, 100)[0] / len(train_split)
    np.testing.assert_allclose(model.conditionals(torch.zeros(1, 1, 1, 1))[0, 0, 0, 0].detach().numpy(), frequencies, atol=1e-6)
    nll = _nll(model, test.images)
    assert np.isinf(nll[band]).all()
    model.fit_counts(train_split.images, pseudo_count=1.0)  # Laplace smoothing
    smoothed = _nll(model, test.images)
    assert np.isfinite(smoothed).all()
    # One pseudo-count among 1000 examples: an unseen value costs -log(1/1100), more than any seen one.
    assert smoothed[band].min() == pytest.approx(np.log(len(train_split) + 100), rel=1e-5)


def test_trained_histogram_keeps_losing_the_band_while_the_mixture_generalises_to_it():
    train_split, test = load_toy_1d("train", None), load_toy_1d("test", None)
    band = in_missing_band(test.images.reshape(-1))
    short = _nll(_fit(HISTOGRAM, train_split, (1, 1, 1), 100, steps=100, lr=0.1), test.images)
    long = _nll(_fit(HISTOGRAM, train_split, (1, 1, 1), 100, steps=400, lr=0.1), test.images)
    mixture = _nll(_fit(MIXTURE, train_split, (1, 1, 1), 100, steps=200, lr=0.02), test.images)
    # Gradient descent drives the logits of unseen values down for as long as it runs (towards the
    # maximum-likelihood zero), so the band's NLL grows with training; the mixture's stays moderate.
    assert long[band].mean() > short[band].mean() + 1.0
    assert np.isfinite(mixture).all()
    assert mixture[band].mean() < long[band].mean() - 3.0
    assert mixture[band].mean() < np.log(100) + 1.5  # not far from a uniform guess, let alone infinite
    assert abs(mixture[~band].mean() - long[~band].mean()) < 0.3  # the seen values fit about as well


def _tv_distance(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """Total variation distance between the empirical distributions of pairs ``a`` and ``b``."""
    ha = value_counts(a[:, 0] * k + a[:, 1], k * k)[0] / len(a)
    hb = value_counts(b[:, 0] * k + b[:, 1], k * k)[0] / len(b)
    return 0.5 * float(np.abs(ha - hb).sum())


def test_two_dim_model_captures_the_dependence_that_marginals_miss():
    k = TOY_2D_VALUES
    train_split, test = load_toy_2d("train", None), load_toy_2d("test", None)
    joint = _fit(TWO_DIM, train_split, (1, 1, 2), k, steps=500, lr=0.01)
    marginals = _fit(HISTOGRAM, train_split, (1, 1, 2), k, steps=500, lr=0.05)
    assert _nll(joint, test.images).mean() < _nll(marginals, test.images).mean() - 0.3
    pairs = test.images.reshape(-1, 2).astype(np.int64)
    from_joint = sample(joint, len(pairs), seed=1).reshape(-1, 2).numpy()
    from_marginals = sample(marginals, len(pairs), seed=1).reshape(-1, 2).numpy()
    tv_joint, tv_marginals = _tv_distance(from_joint, pairs, k), _tv_distance(from_marginals, pairs, k)
    assert tv_joint < tv_marginals - 0.1


def test_two_dim_density_is_the_joint_of_its_conditionals():
    torch.manual_seed(0)
    model = TWO_DIM.create(TWO_DIM.make_config((1, 1, 2), 7))
    density = model.density()
    assert density.shape == (7, 7)
    assert float(density.sum()) == pytest.approx(1.0, abs=1e-5)
    pair = torch.tensor([[[[3.0, 5.0]]]])
    assert float(density[3, 5]) == pytest.approx(float(model.log_prob(pair).detach().sum().exp()), rel=1e-5)


def test_two_dim_model_refuses_other_shapes():
    with pytest.raises(ValueError, match="exactly 2 dimensions"):
        TWO_DIM.create(TWO_DIM.make_config((1, 2, 2), 5))


def test_histogram_fit_refuses_bad_input():
    model = HISTOGRAM.create(HISTOGRAM.make_config((1, 1, 1), 10))
    before = model.logits.detach().clone()
    with pytest.raises(ValueError, match="0..9"):
        model.fit_counts(np.array([[[[12]]]]))
    with pytest.raises(ValueError, match="pseudo_count"):
        model.fit_counts(np.array([[[[1]]]]), pseudo_count=-1)
    assert torch.equal(model.logits, before)


@pytest.mark.parametrize(("model", "dataset"), [("histogram", "toy-1d"), ("dmol", "toy-1d"), ("ar2d", "toy-2d")])
def test_cli_trains_the_toy_models(model, dataset, tmp_path, capsys):
    from app.cli.main import main

    out = tmp_path / f"{model}.safetensors"
    code = main(["train", "--model", model, "--dataset", dataset, "--epochs", "1", "--batch-size", "256",
                 "--lr", "0.02", "--out", str(out), "--device", "cpu"])
    assert code == 0 and out.exists()
    printed = capsys.readouterr().out
    assert "test NLL" in printed and "nats/image" in printed and "bits/dim" in printed
    assert MISSING_BAND[0] > 0  # the band is inside the value range


def test_demo_frames_follow_training_and_stop_between_steps():
    from app.core.registry import get_registry
    from app.core.toy_demos import build_model, count_frame, load_demo_data, train_frames

    registry = get_registry()
    setup = registry.demo("dmol-1d")
    data = load_demo_data(registry.dataset("toy-1d"), band=setup.unseen_band)
    model = build_model(registry.model(setup.model), data)
    frames = list(train_frames(model, data, steps=40, lr=setup.lr, every=10))
    assert [f.step for f in frames] == [0, 10, 20, 30, 40] and frames[-1].done
    assert all(abs(f.density.sum() - 1) < 1e-5 for f in frames)
    # each frame's NLL is the mean -log p of the test values under that frame's density
    last = frames[-1]
    assert last.test_nll == pytest.approx(float(-np.log(last.density[data.test[:, 0]]).mean()))
    assert last.test_nll < frames[0].test_nll
    calls = []
    stopped = list(train_frames(build_model(registry.model("histogram"), data), data, steps=10_000, lr=0.1,
                                every=5, should_stop=lambda: calls.append(1) or len(calls) > 20))
    assert stopped[-1].done and stopped[-1].step < 10_000
    counted = count_frame(registry.demo("histogram-1d"), build_model(registry.model("histogram"), data), data)
    assert np.isinf(counted.band_nll) and np.isfinite(counted.train_nll)
