"""The ensemble over orderings of an any-order model: exactly -log of the mean of p(x | ordering k)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from app.cli.main import main
from app.core.checkpoints import save_checkpoint
from app.core.errors import ModelError
from app.core.registry import get_registry
from app.core.scoring import ensemble_nll, random_orderings, score


def _model(name: str = "order-agnostic-nade", shape=(1, 6, 6)):
    spec = get_registry().model(name)
    torch.manual_seed(0)
    model = spec.create(spec.make_config(shape, 2, tiny=True))
    with torch.no_grad():  # weights away from zero, so that the orderings disagree
        for p in model.parameters():
            p.normal_(0, 0.3)
    return model


def test_the_ensemble_is_the_log_mean_of_the_members_probabilities():
    model = _model()
    x = (np.random.default_rng(0).random((5, 1, 6, 6)) < 0.4).astype(np.uint8)
    members = random_orderings(4, 6, 6, get_registry())
    each = np.stack([score(model, x, None, o).nll_nats for o in members])  # (K, B)
    assert np.ptp(each, axis=0).max() > 0.1  # the members differ, so the mixture is not one of them
    expected = -(np.logaddexp.reduce(-each, axis=0) - np.log(4))
    np.testing.assert_allclose(ensemble_nll(model, x, members), expected, rtol=1e-9)
    # one member is that member; the mixture lies between its best member and that plus log K
    np.testing.assert_allclose(ensemble_nll(model, x, members[:1]), each[0], rtol=1e-9)
    mix = ensemble_nll(model, x, members)
    assert (mix >= each.min(0) - 1e-9).all() and (mix <= each.min(0) + np.log(4) + 1e-9).all()


def test_far_apart_members_do_not_underflow():
    model = _model()
    x = (np.random.default_rng(1).random((2, 1, 6, 6)) < 0.5).astype(np.uint8)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(8)  # NLLs of hundreds of nats: exp(-NLL) is 0 in float64
    members = random_orderings(3, 6, 6, get_registry())
    each = np.stack([score(model, x, None, o).nll_nats for o in members])
    assert each.min() > 745  # below exp(-745) float64 is zero
    mix = ensemble_nll(model, x, members)
    # the best member dominates: the mixture is it plus log K, to float64 precision
    np.testing.assert_allclose(mix, each.min(0) + np.log(3), rtol=1e-9)


def test_a_model_with_one_ordering_has_no_ensemble():
    with pytest.raises(ModelError, match="any ordering"):
        ensemble_nll(_model("pixelcnn", (1, 8, 8)), np.zeros((1, 1, 8, 8), np.uint8), random_orderings(2, 8, 8, get_registry()))


def test_eval_and_score_take_an_ensemble_and_never_record_it(tmp_path, tiny_binarized, capsys):
    spec = get_registry().model("order-agnostic-nade")
    torch.manual_seed(0)
    model = spec.create(spec.make_config((1, 28, 28), 2, tiny=True))
    info = save_checkpoint(model, tmp_path / "tiny-oanade", {"dataset": "binarized-mnist"})
    base = ["--checkpoint", str(info.weights), "--data-dir", str(tiny_binarized)]
    assert main(["eval", *base, "--limit", "4", "--ensemble", "3", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["ordering"].startswith("an ensemble of 3 random orderings") and stats["num_images"] == 4
    test = np.load(tiny_binarized / "binarized_mnist.npz")["test"][:4][:, None]
    expected = ensemble_nll(model, test, random_orderings(3, 28, 28, get_registry())).mean()
    assert abs(stats["nll_nats"] - expected) < 1e-3
    assert main(["eval", *base, "--ensemble", "3", "--json"]) == 0  # the whole test split: still not recorded
    capsys.readouterr()
    assert "test_nll_nats" not in json.loads(info.json_path.read_text())
    assert main(["eval", *base, "--ensemble", "2", "--ordering", "raster"]) == 2
    assert "not both" in capsys.readouterr().err


def test_a_fixed_order_checkpoint_refuses_an_ensemble(tmp_path, tiny_binarized, capsys):
    spec = get_registry().model("pixelcnn")
    info = save_checkpoint(spec.create(spec.make_config((1, 28, 28), 2, tiny=True)), tmp_path / "tiny-pcnn",
                           {"dataset": "binarized-mnist"})
    assert main(["eval", "--checkpoint", str(info.weights), "--data-dir", str(tiny_binarized), "--ensemble", "2"]) == 2
    assert "takes any ordering" in capsys.readouterr().err
