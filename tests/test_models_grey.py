"""The discretized logistic mixture head and PixelCNN++ on grey images."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from app.core.datasets import DataSplit
from app.core.likelihoods import DiscretizedLogisticMixture
from app.core.training import TrainConfig, train
from app.testing.conformance import check_autoregressive
from plugins.pixelcnnpp import SPEC


def _reference_probs(params: torch.Tensor, k: int, m: int) -> torch.Tensor:
    """Bin masses in float64 straight from the definition: sum_i pi_i (CDF_i(upper) - CDF_i(lower)).

    Each difference is taken on the side of the mean where both CDF values are small (sigmoid(b) - sigmoid(a)
    below the mean, sigmoid(-a) - sigmoid(-b) above it), so that float64 keeps its digits in both tails.
    """
    p = params.double()
    weights = torch.softmax(p[..., :m], -1)[..., None, :]
    means = p[..., m : 2 * m][..., None, :]
    scales = p[..., 2 * m :].clamp(*DiscretizedLogisticMixture.LOG_SCALE_RANGE).exp()[..., None, :]
    values = torch.arange(k, dtype=torch.float64)
    centre = values * 2 / (k - 1) - 1
    upper = torch.where(values == k - 1, math.inf, centre + 1 / (k - 1))[:, None]
    lower = torch.where(values == 0, -math.inf, centre - 1 / (k - 1))[:, None]
    b, a = (upper - means) / scales, (lower - means) / scales
    mass = torch.where(a + b < 0, torch.sigmoid(b) - torch.sigmoid(a), torch.sigmoid(-a) - torch.sigmoid(-b))
    return (weights * mass).sum(-1)


def _hard_params(m: int = 5, n: int = 300) -> torch.Tensor:
    """Mixture parameters with ordinary, very sharp, very broad and far-off components."""
    g = torch.Generator().manual_seed(0)
    params = torch.randn(n, 3 * m, generator=g) * 2
    params[:60, 2 * m :] = -7.0  # a component narrower than a grey level
    params[60:120, m : 2 * m] = 3.0 + 0.2 * torch.randn(60, m, generator=g)  # means far right of the range
    params[120:180, 2 * m :] = 4.0  # flatter than the range
    params[180:240, 2 * m :] = -3.0 - 2.0 * torch.rand(60, m, generator=g)
    return params


@pytest.mark.parametrize("k", [4, 256])
def test_dmol_probabilities_sum_to_one_and_match_float64(k):
    m = 5
    head = DiscretizedLogisticMixture(k, m)
    params = _hard_params(m)
    logp = head.log_probs_all(params)
    reference = _reference_probs(params, k, m)
    assert torch.allclose(logp.exp().sum(-1).double(), torch.ones(len(params), dtype=torch.float64), atol=1e-5)
    assert float((logp.exp().double() - reference).abs().max()) < 5e-5
    # Relative accuracy holds in the tails too, down to masses of 1e-30.
    seen = reference > 1e-30
    assert float((logp.double() - reference.log())[seen].abs().max()) < 1e-3


def test_dmol_log_prob_equals_the_gathered_table_without_renormalising():
    head = DiscretizedLogisticMixture(256, 5)
    params = _hard_params(5)
    x = torch.randint(0, 256, (len(params),), generator=torch.Generator().manual_seed(1)).float()
    direct = head.log_prob(params, x)
    table = head.log_probs_all(params).gather(-1, x.long()[:, None])[:, 0]
    assert float((direct - table).abs().max()) < 1e-4
    reference = _reference_probs(params, 256, 5).gather(-1, x.long()[:, None])[:, 0].log()
    # Far in a tail (log p of -387, say) float32 inputs alone shift log p by ~1e-6 of itself; where even
    # float64 underflows (log p of -1380), only the log-space computation still has a value.
    finite = torch.isfinite(reference)
    assert torch.isfinite(direct).all() and finite.float().mean() > 0.9
    error = (direct.double() - reference).abs() / reference.abs().clamp(min=1.0)
    assert float(error[finite].max()) < 1e-4


def test_dmol_gradients_stay_finite_at_extreme_parameters():
    head = DiscretizedLogisticMixture(256, 3)
    params = torch.tensor([[0.0, 1.0, -1.0, 5.0, -5.0, 0.3, -7.0, 50.0, -50.0]] * 256, requires_grad=True)
    x = torch.arange(256).float()
    loss = -head.log_prob(params, x).sum() - head.log_probs_all(params).sum()
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(params.grad).all()


def test_dmol_accepts_bfloat16_parameters_in_float32():
    head = DiscretizedLogisticMixture(256, 5)
    params = _hard_params(5)[:10]
    out = head.log_probs_all(params.bfloat16())
    assert out.dtype == torch.float32
    assert torch.allclose(out.exp().sum(-1), torch.ones(10), atol=1e-5)


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 7, 5)])
def test_pixelcnnpp_down_and_up_sampling_keep_the_autoregressive_property(shape):
    result = check_autoregressive(SPEC, shape, 4)
    assert result.passed, result.message


def _dependencies(model, x: torch.Tensor, row: int, col: int) -> np.ndarray:
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model.params(x)[:, 0, row, col].sum(), x)
    return (grad[0, 0].abs() > 0).numpy()


def test_pixelcnnpp_has_no_blind_spot():
    torch.manual_seed(0)
    model = SPEC.create(SPEC.make_config((1, 8, 8), 4, tiny=True)).eval()
    x = torch.randint(0, 4, (1, 1, 8, 8)).float()
    seen = _dependencies(model, x, 4, 4)
    before = np.zeros((8, 8), dtype=bool)
    before[:4] = True
    before[4, :4] = True
    # Every pixel before (4, 4) in raster order reaches it, including those above and to the right that
    # a PixelCNN's stacked masks never see.
    np.testing.assert_array_equal(seen, before)


def test_pixelcnnpp_shipped_size_is_small():
    model = SPEC.create(SPEC.make_config((1, 28, 28), 256))
    assert sum(p.numel() for p in model.parameters()) < 1_500_000


def test_pixelcnnpp_refuses_colour_images():
    with pytest.raises(ValueError, match="single-channel"):
        SPEC.create(SPEC.make_config((3, 8, 8), 4, tiny=True))


def test_pixelcnnpp_learns_grey_images():
    from app.core.synthetic import synthetic_digits

    images, _ = synthetic_digits(64, seed=5, size=12)
    data = DataSplit(images)
    torch.manual_seed(0)
    model = SPEC.create(SPEC.make_config((1, 12, 12), 256, tiny=True))
    with torch.no_grad():
        before = -float(model.log_prob(torch.as_tensor(images).float()).sum()) / len(images)
    cfg = TrainConfig(epochs=5, batch_size=16, lr=5e-3, warmup_steps=0, log_every=1000)
    for _ in train(model, data, None, cfg, None):
        pass
    with torch.no_grad():
        after = -float(model.log_prob(torch.as_tensor(images).float()).sum()) / len(images)
    assert after < before - 0.2 * 144  # at least 0.2 nats per pixel better than at initialisation
