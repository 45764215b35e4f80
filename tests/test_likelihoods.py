import math

import pytest
import torch

from app.core.likelihoods import Bernoulli, Categorical, DiscretizedLogisticMixture, apply_temperature


@pytest.mark.parametrize(
    "head", [Bernoulli(), Categorical(4), Categorical(256), DiscretizedLogisticMixture(256, 5), DiscretizedLogisticMixture(4, 3)]
)
def test_probabilities_sum_to_one_and_log_prob_agrees(head):
    torch.manual_seed(0)
    params = torch.randn(7, 3, head.params_per_dim) * 3
    logp = head.log_probs_all(params)
    assert logp.shape == (7, 3, head.num_values)
    assert torch.allclose(logp.exp().sum(-1), torch.ones(7, 3), atol=1e-5)
    x = torch.randint(0, head.num_values, (7, 3))
    direct = head.log_prob(params, x)
    gathered = logp.gather(-1, x.unsqueeze(-1)).squeeze(-1)
    assert torch.allclose(direct, gathered, atol=2e-4)


def test_dmol_matches_a_float64_reference():
    head = DiscretizedLogisticMixture(256, 2)
    params = torch.tensor([[0.3, -0.2, 0.1, -0.5, -2.0, -3.0]], dtype=torch.float64)
    logp = head.log_probs_all(params)[0]
    # reference: integrate the mixture density over each bin with the exact CDF
    def cdf(z, mu, s):
        return 1 / (1 + math.exp(-(z - mu) / s))
    weights = torch.softmax(params[0, :2], 0).tolist()
    ref = []
    for k in range(256):
        lo = -math.inf if k == 0 else (2 * k / 255 - 1) - 1 / 255
        hi = math.inf if k == 255 else (2 * k / 255 - 1) + 1 / 255
        p = 0.0
        for w, mu, ls in zip(weights, params[0, 2:4].tolist(), params[0, 4:6].tolist(), strict=True):
            s = math.exp(ls)
            p += w * ((1.0 if hi == math.inf else cdf(hi, mu, s)) - (0.0 if lo == -math.inf else cdf(lo, mu, s)))
        ref.append(p)
    ref = torch.tensor(ref, dtype=torch.float64)
    assert torch.allclose(logp.exp(), ref / ref.sum(), atol=1e-6)


def test_bernoulli_matches_sigmoid():
    head = Bernoulli()
    logit = torch.tensor([[0.7]])
    assert torch.allclose(head.probs(logit)[0, 1], torch.sigmoid(torch.tensor(0.7)))


def test_temperature_reshapes():
    p = torch.tensor([0.2, 0.3, 0.5])
    assert torch.equal(apply_temperature(p, 1.0), p)
    cold = apply_temperature(p, 0.5)
    hot = apply_temperature(p, 3.0)
    assert cold[2] > p[2] > hot[2]
    assert torch.allclose(cold.sum(), torch.tensor(1.0))
    assert apply_temperature(p, 0).tolist() == [0.0, 0.0, 1.0]
