"""The shorthands that wrapped models need: probability heads, (B, C, H, W) outputs, a declared fixed
ordering other than raster, and a model's own sample() as a sampler mode — on a NADE plugin written as a
foreign model is, which passes the kit."""

from __future__ import annotations

import dataclasses
import re

import pytest
import torch

from app.core.errors import ModelError
from app.core.likelihoods import Bernoulli, Categorical
from app.core.registry import Registry
from app.core.sampling import prepare_run, resolve_mode, sample
from app.testing import assert_conforms, check_model


@pytest.fixture
def nade_spec(monkeypatch):
    monkeypatch.setenv("AR_EXPLORER_PLUGINS", "example_plugins.nade_columns")
    registry = Registry()
    assert registry.statuses["example_plugins.nade_columns"].status == "ok"
    return registry.model("column-nade")


def _nade(spec, shape=(1, 4, 3), seed=0):
    torch.manual_seed(seed)
    return spec.create(spec.make_config(shape, 2, tiny=True)).eval()


# probability heads ---------------------------------------------------------------------------------------------


def test_a_bernoulli_head_on_probabilities_equals_the_one_on_logits():
    # Logits within +-4: beyond that sigmoid's float32 result near 1 no longer holds log(1 - p) to 1e-5.
    logits = torch.linspace(-4, 4, 35).reshape(5, 7, 1)
    x = (torch.arange(35).reshape(5, 7) % 3 == 0).float()
    by_probs, by_logits = Bernoulli(inputs="probs"), Bernoulli()
    probs = torch.sigmoid(logits)
    assert torch.allclose(by_probs.log_probs_all(probs), by_logits.log_probs_all(logits), atol=1e-5)
    assert torch.allclose(by_probs.log_prob(probs, x), by_logits.log_prob(logits, x), atol=1e-5)


def test_a_saturated_probability_gives_a_finite_log_likelihood():
    head = Bernoulli(inputs="probs")
    out = head.log_probs_all(torch.tensor([[0.0], [1.0]]))
    assert torch.isfinite(out).all() and torch.allclose(out.exp().sum(-1), torch.ones(2))


def test_a_categorical_head_on_probabilities_equals_the_softmax_of_logits():
    logits = torch.randn(4, 6, 5)
    head = Categorical(5, inputs="probs")
    assert torch.allclose(head.log_probs_all(torch.softmax(logits, -1)), torch.log_softmax(logits, -1), atol=1e-5)
    assert head.describe()["inputs"] == "probs"


@pytest.mark.parametrize(
    "head, params, problem",
    [
        (Bernoulli(inputs="probs"), torch.tensor([[0.2], [1.7]]), "p(x = 1) is 1.7, outside [0, 1]"),
        (Categorical(3, inputs="probs"), torch.tensor([[0.2, 0.3, 0.9]]), "sum to 1.4, not 1"),
        (Categorical(3, inputs="probs"), torch.tensor([[0.2, -0.3, 1.1]]), "a probability is -0.3, outside [0, 1]"),
    ],
)
def test_a_probability_head_says_what_is_wrong_with_its_parameters(head, params, problem):
    assert problem in head.validate(params)
    assert head.validate(params.clamp(0, 1) / params.clamp(0, 1).sum(-1, keepdim=True)) is None


def test_a_head_refuses_an_unknown_kind_of_input():
    with pytest.raises(ValueError, match="inputs must be 'logits' or 'probs', not 'log-probs'"):
        Bernoulli(inputs="log-probs")


def test_the_kit_refuses_logits_given_to_a_probability_head(nade_spec):
    from example_plugins.nade_columns import ColumnNADE

    class ReturnsLogits(ColumnNADE):
        def forward(self, x, cond=None, ordering=None):
            return torch.logit(super().forward(x, cond, ordering)) * 3

    result = check_model(dataclasses.replace(nade_spec, build=ReturnsLogits), checks=["purity"]).results[0]
    assert not result.passed
    assert result.message.startswith("forward's output does not fit its bernoulli head: p(x = 1) is"), result.message


# the NADE plugin: (B, C, H, W) probabilities, column order, its own sampler -----------------------------------


def test_the_nade_plugin_passes_the_kit(nade_spec):
    report = assert_conforms(nade_spec)
    assert "ordering 'columns'" in report.result("autoregressive-real-size").message
    assert "own draws the same images for a seed" in report.result("sampler").message
    assert "s.e. (own)" in report.result("sampler").message


def test_its_output_of_shape_bchw_is_taken_as_one_parameter_per_dimension(nade_spec):
    model = _nade(nade_spec)
    x = torch.randint(0, 2, (3, 1, 4, 3)).float()
    assert model(x).shape == (3, 1, 4, 3)
    assert model.params(x).shape == (3, 1, 4, 3, 1)


def test_its_declared_ordering_is_the_one_everything_uses(nade_spec):
    model = _nade(nade_spec)
    assert model.ordering.name == "columns"
    plan = [int(dims[0]) for dims in model.sampling_plan()]
    assert plan[:5] == [0, 3, 6, 9, 1]  # down the first column of a 4x3 image, then the second


def test_its_conditionals_are_nades_by_definition(nade_spec):
    model = _nade(nade_spec)
    net = model.net
    x = torch.randint(0, 2, (2, 1, 4, 3)).float()
    flat = x.reshape(2, -1)[:, model.order]
    a = net.c.expand(2, -1)
    expected = []
    for i in range(flat.shape[1]):  # the textbook recursion, one dimension at a time
        expected.append(torch.sigmoid(net.b[i] + torch.sigmoid(a) @ net.V[i]))
        a = a + flat[:, i : i + 1] * net.W[:, i]
    probs = model.conditionals(x)[..., 1].reshape(2, -1)[:, model.order]
    assert torch.allclose(probs, torch.stack(expected, 1), atol=1e-6)


def test_its_own_sampler_is_a_mode_that_auto_never_picks(nade_spec):
    model = _nade(nade_spec)
    assert resolve_mode(model, "auto") == "naive"
    first = sample(model, 6, seed=4, mode="own")
    assert torch.equal(first, sample(model, 6, seed=4, mode="own"))
    assert not torch.equal(first, sample(model, 6, seed=5, mode="own"))
    run = prepare_run(model, 6, seed=4, mode="own")
    with torch.no_grad():
        for step in range(run.total):
            probs, tempered, values, _ = run.step(step)
    assert torch.equal(run.canvas.round().long(), first)  # step by step: the same images, and the model's probs
    assert run.sampler.network_calls == 1


@pytest.mark.parametrize(
    "kwargs, message",
    [({"temperature": 0.7}, "draws at temperature 1 only (asked for 0.7)"),
     ({"known": torch.ones(4, 3, dtype=torch.bool), "init": torch.zeros(1, 1, 4, 3)}, "cannot complete an image")],
)
def test_its_own_sampler_refuses_what_it_cannot_do(nade_spec, kwargs, message):
    with pytest.raises(ModelError, match=re.escape(message)):
        prepare_run(_nade(nade_spec), 2, mode="own", **kwargs)


def test_the_kit_catches_an_own_sampler_that_draws_from_another_distribution(nade_spec):
    from example_plugins.nade_columns import ColumnNADE

    class RasterOwnSampler(ColumnNADE):  # the zoo's sample() runs in raster order: another distribution
        def own_sample(self, n, cond=None):
            return self.net.sample(n).reshape(n, *self.shape)

    result = check_model(dataclasses.replace(nade_spec, build=RasterOwnSampler), checks=["sampler"]).results[0]
    assert not result.passed
    assert result.message.startswith("the own sampler's frequencies differ from the exact marginals by"), result.message


def test_the_kit_catches_an_own_sampler_that_ignores_the_seed(nade_spec):
    from example_plugins.nade_columns import ColumnNADE

    class Unseeded(ColumnNADE):
        def own_sample(self, n, cond=None):
            generator = torch.Generator().manual_seed(int(torch.seed() % 2**31))
            return torch.randint(0, 2, (n, *self.shape), generator=generator).float()

    result = check_model(dataclasses.replace(nade_spec, build=Unseeded), checks=["sampler"]).results[0]
    assert not result.passed and "the own sampler drew other images for the same seed" in result.message


def test_an_own_sampler_that_returns_probabilities_is_refused(nade_spec):
    from example_plugins.nade_columns import ColumnNADE

    class ReturnsProbabilities(ColumnNADE):
        def own_sample(self, n, cond=None):
            return torch.full((n, *self.shape), 0.5)

    with pytest.raises(ModelError, match="not integers"):
        sample(_nade(dataclasses.replace(nade_spec, build=ReturnsProbabilities)), 2, mode="own")


def test_the_kit_catches_an_own_sampler_with_the_right_marginals_and_the_wrong_dependencies(nade_spec):
    from example_plugins.nade_columns import ColumnNADE

    class Independent(ColumnNADE):  # each pixel right on its own, shuffled across the batch: no dependencies
        def own_sample(self, n, cond=None):
            images = super().own_sample(n, cond).reshape(n, -1)
            return torch.stack([column[torch.randperm(n)] for column in images.T], 1).reshape(n, *self.shape)

    result = check_model(dataclasses.replace(nade_spec, build=Independent), checks=["sampler"]).results[0]
    assert not result.passed
    assert result.message.startswith("the own sampler draws from another distribution than the model's conditionals")
    assert result.message.endswith("(on the instance fitted to four patterns)"), result.message
