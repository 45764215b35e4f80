import numpy as np
import pytest
import torch

from app.core.errors import ModelError, OrderingError
from app.core.orderings import random, raster
from app.core.registry import Registry
from app.core.sampling import prepare_run, sample, sample_steps
from app.core.scoring import conditional_at, receptive_field, score

REGISTRY = Registry()


def tiny(name="pixelcnn", shape=(1, 6, 6), k=2, ordering=None, **hp):
    spec = REGISTRY.model(name)
    torch.manual_seed(1)
    return spec.create(spec.make_config(shape, k, hp, ordering=ordering, tiny=True)).eval()


def test_steps_cover_every_dimension_and_end_with_the_image():
    model = tiny()
    steps = list(sample_steps(model, 3, seed=2))
    assert len(steps) == 36 and steps[-1].done
    assert [tuple(s.positions[0]) for s in steps[:2]] == [(0, 0, 0), (0, 0, 1)]
    assert steps[0].probs.shape == (3, 1, 2) and np.allclose(steps[0].probs.sum(-1), 1)
    final = steps[-1].image
    assert final.shape == (3, 1, 6, 6)
    # each step's drawn value is in the final image
    for s in steps:
        c, r, col = s.positions[0]
        assert np.array_equal(final[:, c, r, col], s.values[:, 0])
    # the generator's images equal the headless sampler's for the same seed
    assert np.array_equal(final, sample(model, 3, seed=2).numpy())


def test_every_k_yields_fewer_steps():
    model = tiny()
    steps = list(sample_steps(model, 1, seed=0, every=10))
    assert [s.index for s in steps] == [9, 19, 29, 35]


def test_seed_reproducibility_and_difference():
    model = tiny()
    assert torch.equal(sample(model, 4, seed=5), sample(model, 4, seed=5))
    assert not torch.equal(sample(model, 4, seed=5), sample(model, 4, seed=6))


def test_temperature_zero_is_greedy():
    model = tiny()
    a = sample(model, 2, seed=1, temperature=0)
    b = sample(model, 2, seed=9, temperature=0)
    assert torch.equal(a, b)


def test_completion_keeps_known_pixels_for_a_raster_model():
    model = tiny()
    image = torch.zeros(1, 1, 6, 6)
    image[0, 0, :3] = torch.tensor([[1, 0, 1, 0, 1, 0]] * 3, dtype=torch.float32)
    known = np.zeros((6, 6), bool)
    known[:3] = True
    out = sample(model, 5, seed=3, init=image, known=known)
    assert torch.equal(out[:, 0, :3], image[0, 0, :3].long().expand(5, -1, -1))


def test_ordering_is_honoured_by_a_build_model_and_refused_otherwise():
    ordering = random(6, 6, 2)
    made = tiny("made", ordering=ordering)
    steps = list(sample_steps(made, 1, seed=0))
    assert [tuple(s.positions[0][1:]) for s in steps[:3]] == [tuple(p) for p in ordering.order[:3]]
    with pytest.raises(OrderingError, match="built with"):
        prepare_run(made, 1, ordering=raster(6, 6))
    with pytest.raises(OrderingError):
        prepare_run(tiny(), 1, ordering=ordering)


def test_nan_from_a_model_is_a_model_error():
    model = tiny()
    model.head2.bias.data.fill_(float("nan"))
    with pytest.raises(ModelError, match="NaN"):
        sample(model, 1)
    with pytest.raises(ModelError, match="NaN"):
        score(model, torch.zeros(1, 1, 6, 6))


def test_score_totals_and_units():
    model = tiny()
    x = torch.randint(0, 2, (4, 1, 6, 6))
    result = score(model, x)
    assert result.per_dim_nll.shape == (4, 1, 6, 6)
    assert np.allclose(result.nll_nats, result.per_dim_nll.reshape(4, -1).sum(1))
    assert np.allclose(result.bits_per_dim, result.nll_nats / (36 * np.log(2)))
    with pytest.raises(ModelError, match="do not fit"):
        score(model, torch.zeros(1, 1, 5, 5))


def test_conditional_at_matches_the_score():
    model = tiny()
    x = torch.randint(0, 2, (1, 1, 6, 6))
    c = conditional_at(model, x, (0, 3, 2))
    per_dim = score(model, x).per_dim_nll[0, 0, 3, 2]
    assert np.isclose(c.nll_nats, per_dim, atol=1e-5) and np.isclose(c.probs.sum(), 1)
    assert c.rank == 3 * 6 + 2


def test_blind_spot_in_pixelcnn_and_none_in_gated():
    x = torch.randint(0, 2, (1, 1, 12, 12)).float()
    pixel = REGISTRY.model("pixelcnn")
    torch.manual_seed(0)
    p = pixel.create(pixel.make_config((1, 12, 12), 2)).eval()
    rf = receptive_field(p, x, (0, 8, 6))
    assert rf[0, 8, 6:].max() == 0 and rf[0, 9:].max() == 0  # nothing at or after the pixel
    assert rf[0, 7, 5] > 0
    blind = rf[0, 7, 11]  # above and to the right, far enough from the centre of the stacked masks
    gated_spec = REGISTRY.model("gated-pixelcnn")
    g = gated_spec.create(gated_spec.make_config((1, 12, 12), 2)).eval()
    grf = receptive_field(g, x, (0, 8, 6))
    assert blind == 0 and grf[0, 7, 11] > 0
    assert grf[0, 8, 6:].max() == 0 and grf[0, 9:].max() == 0
