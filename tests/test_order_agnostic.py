"""Order-agnostic NADE: one network, any ordering at run time."""

import numpy as np
import torch

from app.core.orderings import random, raster, spiral
from app.core.registry import Registry
from app.core.sampling import sample

SPEC = Registry().model("order-agnostic-nade")


def model(shape=(1, 5, 5)):
    torch.manual_seed(0)
    m = SPEC.create(SPEC.make_config(shape, 2, {"hidden": [24, 24]}))
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return m.eval()


def test_changing_a_pixel_never_changes_earlier_conditionals_under_any_ordering():
    m = model()
    x = torch.randint(0, 2, (1, 1, 5, 5)).float()
    for ordering in (raster(5, 5), spiral(5, 5), random(5, 5, 3)):
        base = m.log_prob(x, ordering=ordering)[0, 0]
        r, c = ordering.order[12]
        flipped = x.clone()
        flipped[0, 0, r, c] = 1 - flipped[0, 0, r, c]
        after = m.log_prob(flipped, ordering=ordering)[0, 0]
        earlier = torch.as_tensor(ordering.rank < 12)
        later = torch.as_tensor(ordering.rank > 12)
        assert torch.equal(base[earlier], after[earlier])
        assert not torch.allclose(base[later], after[later])


def test_different_orderings_give_different_but_normalised_models():
    m = model((1, 2, 3))
    images = torch.tensor(list(np.ndindex(*(2,) * 6)), dtype=torch.float32).reshape(-1, 1, 2, 3)
    totals = []
    for ordering in (raster(2, 3), spiral(2, 3)):
        with torch.no_grad():
            logp = m.log_prob(images, ordering=ordering).flatten(1).sum(1)
        assert abs(float(torch.logsumexp(logp, 0))) < 1e-4
        totals.append(logp)
    assert not torch.allclose(totals[0], totals[1])


def test_training_objective_estimates_the_nll_averaged_over_orderings():
    m = model((1, 2, 2))
    x = torch.tensor([[[[1.0, 0.0], [1.0, 1.0]]]])
    with torch.no_grad():
        exact = [-float(m.log_prob(x, ordering=random(2, 2, seed)).sum()) for seed in range(200)]
        torch.manual_seed(1)
        estimate = float(torch.stack([m.loss(x.expand(2000, -1, -1, -1)) for _ in range(5)]).mean())
    assert abs(estimate - np.mean(exact)) < 0.05 * np.mean(exact)


def test_completion_under_a_spiral_keeps_the_known_pixels():
    m = model((1, 6, 6))
    image = torch.randint(0, 2, (1, 1, 6, 6)).float()
    known = np.zeros((6, 6), bool)
    known[:, :3] = True
    out = sample(m, 4, seed=2, ordering=spiral(6, 6), init=image, known=known)
    assert torch.equal(out[:, 0, :, :3], image[0, 0, :, :3].long().expand(4, -1, -1))


def test_the_running_sum_gives_the_conditionals_of_the_network_run_at_every_step():
    m = model((1, 6, 5))
    x = torch.randint(0, 2, (3, 1, 6, 5)).float()
    ordering = spiral(6, 5)
    with torch.no_grad():
        fast = m(x, None, ordering).reshape(3, -1)
        rank = torch.as_tensor(ordering.rank.reshape(-1).copy())
        slow = torch.empty_like(fast)
        for t, p in enumerate(ordering.flat):
            slow[:, p] = m.logits(x.reshape(3, -1), (rank < t).float().expand(3, -1))[:, p]
    assert torch.allclose(fast, slow, atol=1e-5)


def test_the_incremental_sampler_draws_the_images_of_naive_sampling():
    m = model((1, 6, 6))
    for ordering in (raster(6, 6), spiral(6, 6), random(6, 6, 2)):
        fast = sample(m, 5, seed=7, ordering=ordering, mode="single-pass")
        naive = sample(m, 5, seed=7, ordering=ordering, mode="naive")
        assert torch.equal(fast, naive)


def test_structured_training_draws_orderings_from_the_families():
    torch.manual_seed(0)
    m = SPEC.create(SPEC.make_config((1, 6, 6), 2, {"hidden": [16, 16], "structured": 1.0}))
    ranks = m.families.sample(64, torch.Generator().manual_seed(0))
    assert ranks.shape == (64, 36)
    assert torch.equal(ranks.sort(dim=1).values, torch.arange(36).expand(64, -1))
    # Structured orderings are spatially coherent: consecutive steps are mostly neighbours; random ones are not.
    def mean_jump(r):
        steps = r.argsort(dim=1)
        rows, cols = steps // 6, steps % 6
        return float(((rows[:, 1:] - rows[:, :-1]).abs() + (cols[:, 1:] - cols[:, :-1]).abs()).float().mean())

    uniform = torch.rand(64, 36, generator=torch.Generator().manual_seed(1)).argsort(dim=1).argsort(dim=1)
    assert mean_jump(ranks) < 0.75 * mean_jump(uniform)
    x = torch.randint(0, 2, (8, 1, 6, 6)).float()
    assert torch.isfinite(m.loss(x))
