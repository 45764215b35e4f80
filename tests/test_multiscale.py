"""The parallel multiscale PixelCNN: its groups, O(log N) network calls at 28x28 and 56x56, its samplers, and
the 56x56 datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from app.core.errors import ModelError
from app.core.sampling import sample, sample_steps
from plugins.datasets_56 import upsample_threshold
from plugins.multiscale import SPEC, multiscale_plan, num_levels

FAST = {"base_channels": 8, "base_layers": 1, "base_kernel": 3, "channels": 8, "dilations": [1, 2]}


def _model(size: int, **hparams):
    torch.manual_seed(0)
    model = SPEC.create(SPEC.make_config((1, size, size), 2, {**FAST, **hparams}))
    return model.eval()


@pytest.mark.parametrize(("size", "levels", "calls"), [(28, 2, 49 + 6), (56, 3, 49 + 9)])
def test_plan_is_the_base_grid_then_three_groups_per_doubling(size, levels, calls):
    plan = multiscale_plan(size, size, levels)
    assert len(plan) == calls
    flat = np.concatenate(plan)
    assert np.array_equal(np.sort(flat), np.arange(size * size))  # every pixel exactly once
    assert all(len(group) == 1 for group in plan[:49])
    rows, cols = np.divmod(np.concatenate(plan[:49]), size)
    stride = 2**levels
    assert (rows % stride == 0).all() and (cols % stride == 0).all()
    sizes = [len(group) for group in plan[49:]]
    assert sizes == [n for level in range(1, levels + 1) for n in [49 * 4 ** (level - 1)] * 3]


@pytest.mark.parametrize(("size", "naive_raster"), [(28, 784), (56, 3136)])
def test_network_calls_grow_with_log_n(size, naive_raster):
    model = _model(size)
    counts = {}
    for mode in ("naive", "partial"):
        last = list(sample_steps(model, 2, seed=1, mode=mode, every=100))[-1]
        counts[mode] = (last.network_calls, last.image)
    expected = 49 + 3 * num_levels(size, size, 7)
    assert counts["naive"][0] == counts["partial"][0] == expected
    assert expected < naive_raster / 14
    # The partial sampler runs only the needed sub-network, and draws exactly the same images.
    assert np.array_equal(counts["naive"][1], counts["partial"][1])


def test_a_group_depends_only_on_earlier_groups_at_28x28():
    """The kit checks a 4x4 instance; here the real 7x7 base and two doublings: flipping every pixel of the
    first group of the last doubling changes no conditional of that group or of any earlier one (pixels of a
    group are drawn in parallel), and changes those of the groups after it."""
    model = _model(28)
    plan = model.sampling_plan()
    x = torch.randint(0, 2, (2, 1, 28, 28), generator=torch.Generator().manual_seed(3)).float()
    changed = x.clone().view(2, -1)
    changed[:, plan[-3]] = 1 - changed[:, plan[-3]]
    with torch.no_grad():
        before = model.log_conditionals(x).view(2, -1, 2)
        after = model.log_conditionals(changed.view_as(x)).view(2, -1, 2)
    up_to_group = np.concatenate(plan[:-2])
    assert torch.equal(before[:, up_to_group], after[:, up_to_group])
    assert not torch.allclose(before[:, plan[-1]], after[:, plan[-1]])


def test_sizes_that_are_not_a_doubled_base_are_refused():
    with pytest.raises(ModelError, match="not a multiple of the base size 7"):
        _model(30)
    with pytest.raises(ModelError, match="power of two"):
        _model(21)
    assert num_levels(14, 14, 7) == 1 and num_levels(7, 7, 7) == 0


def test_a_base_only_model_is_a_plain_pixelcnn_of_the_base_grid():
    model = _model(7)
    assert len(model.sampling_plan()) == 49
    assert sample(model, 3, seed=0).shape == (3, 1, 7, 7)


def test_the_ordering_is_the_plan_and_other_orderings_are_refused():
    model = _model(28)
    assert model.ordering.name == "multiscale"
    assert np.array_equal(model.ordering.flat, np.concatenate(model.sampling_plan()))
    from app.core.orderings import raster

    with pytest.raises(Exception, match="multiscale"):
        model.sampling_plan(raster(28, 28))


def test_upsampled_digits_keep_the_shape_of_the_28x28_digit():
    from app.core.synthetic import synthetic_digits

    grey, _ = synthetic_digits(20, seed=6)
    big = upsample_threshold(grey)
    small = (grey > 127).astype(np.uint8)
    assert big.shape == (20, 1, 56, 56) and set(np.unique(big)) <= {0, 1}
    pooled = big.reshape(20, 1, 28, 2, 28, 2).mean((3, 5))
    agree = ((pooled >= 0.5) == small.astype(bool)).mean()
    assert agree > 0.95
    assert 0 < (pooled % 1 != 0).mean() < 0.2  # some 2x2 blocks are mixed: detail at the finer resolution


def test_synthetic_digits_56_dataset(registry):
    spec = registry.dataset("synthetic-digits-56")
    data = spec.load("test", Path("."))
    assert data.images.shape == (2000, 1, 56, 56) and spec.shape == (1, 56, 56) and spec.offline
    assert data.labels is not None and len(data.labels) == 2000
