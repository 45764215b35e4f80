"""The core's cached engine samples any model that declares its network in the core's masked layers: a
third-party plugin gets exact cached sampling, one new position per layer and step, with no code of its own."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from app.core.cache_program import INPUT, Activation, CacheProgram, Conv
from app.core.cached_sampling import CachedSampler, build_program
from app.core.errors import ModelError
from app.core.layers import ClassBias, Gate, MaskedConv2d, Residual
from app.core.registry import Registry
from app.core.sampling import prepare_run, sample, sample_steps
from app.testing import check_model

PLUGIN = "example_plugins.masked_convnet"


@pytest.fixture(scope="module")
def spec():
    registry = Registry(env={"AR_EXPLORER_PLUGINS": PLUGIN})
    assert registry.statuses[PLUGIN].status == "ok"
    return registry.model("masked-convnet")


def randomised(spec, shape, k, seed=0, hparams=None):
    """An untrained instance with weights pushed far from the initialisation (varied conditionals)."""
    torch.manual_seed(seed)
    model = spec.create(spec.make_config(shape, k, hparams or {"channels": 12, "blocks": 2})).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model


class Calls:
    """Counts the calls of the model's and every submodule's forward while entered."""

    def __init__(self, model: nn.Module) -> None:
        self.modules = list(model.modules())
        self.count = 0

    def __enter__(self) -> Calls:
        self.handles = [m.register_forward_pre_hook(self._seen) for m in self.modules]
        return self

    def __exit__(self, *exc) -> None:
        for handle in self.handles:
            handle.remove()

    def _seen(self, module, args) -> None:
        self.count += 1


@pytest.mark.parametrize(("shape", "k"), [((1, 12, 12), 2), ((1, 8, 9), 4), ((3, 5, 6), 4)],
                         ids=["binary", "grey-4", "colour-4"])
def test_a_plugin_of_core_layers_samples_the_naive_images_from_the_cache(spec, shape, k):
    model = randomised(spec, shape, k)
    run = prepare_run(model, 3, mode="cached")
    assert isinstance(run.sampler, CachedSampler)  # the plugin has no make_sampler: the core built it
    for seed in (0, 5):
        naive = sample(model, 3, seed=seed, mode="naive")
        with Calls(model) as calls:
            cached = sample(model, 3, seed=seed, mode="cached")
        assert torch.equal(naive, cached)
        assert calls.count == 0  # no forward pass of the model or of any of its layers: the program alone
    # Not trivially equal: another seed draws other images, of every value.
    assert not torch.equal(sample(model, 3, seed=99, mode="cached"), cached)
    assert len(torch.unique(cached)) == k


def test_one_cached_step_per_dimension_against_one_forward_pass_per_dimension(spec):
    model = randomised(spec, (1, 6, 5), 2)
    steps = 6 * 5
    with Calls(model) as calls:
        run = prepare_run(model, 2, seed=1, mode="naive")
        with torch.no_grad():
            for index in range(run.total):
                run.step(index)
    top_level = len(list(model.modules()))  # each naive step runs the model and every layer once
    assert calls.count == steps * top_level and run.sampler.network_calls == steps
    with Calls(model) as calls:
        cached = prepare_run(model, 2, seed=1, mode="cached")
        with torch.no_grad():
            for index in range(cached.total):
                cached.step(index)
    assert calls.count == 0 and cached.sampler.network_calls == steps
    assert torch.equal(cached.canvas, run.canvas)


def test_a_step_computes_only_the_new_position(spec):
    """Each step writes every cached layer at the new position and nowhere else."""
    model = randomised(spec, (1, 5, 4), 2)
    program = build_program(model, 2)
    program.reset(torch.zeros(2, 1, 5, 4), None)
    hidden = [name for name in program.grids if name != INPUT]
    assert hidden  # the residual blocks' convolutions read cached activations
    with torch.no_grad():
        for step in range(7):
            before = {name: program.grids[name].clone() for name in hidden}
            program.step.fill_(step)
            program.compute()
            centre = int(program.indices()["centre"])
            written = []
            for name in hidden:
                changed = (program.grids[name] != before[name]).any(-1).any(0).nonzero().flatten().tolist()
                assert changed in ([centre], []), f"step {step} wrote {name} at {changed}, not only at {centre}"
                written += changed
            assert written, f"step {step} cached nothing at the new position"


def test_the_live_steps_give_the_models_conditionals(spec):
    model = randomised(spec, (3, 4, 5), 4)
    steps = list(sample_steps(model, 2, seed=3, mode="cached", temperature=0.8))
    final = torch.as_tensor(steps[-1].image).float()
    with torch.no_grad():
        expected = model.conditionals(final).reshape(2, -1, 4)
    for step in steps:
        assert torch.allclose(torch.as_tensor(step.probs), expected[:, step.dims], atol=1e-5), f"step {step.index}"
    assert np.array_equal(steps[-1].image, sample(model, 2, seed=3, mode="cached", temperature=0.8).numpy())


def test_completion_keeps_the_known_pixels_and_draws_the_naive_rest(spec):
    model = randomised(spec, (1, 7, 6), 2)
    known = np.zeros((7, 6), dtype=bool)
    known[:3] = True
    init = torch.randint(0, 2, (1, 1, 7, 6)).float()
    kwargs = {"seed": 4, "init": init, "known": known}
    assert torch.equal(sample(model, 2, mode="naive", **kwargs), sample(model, 2, mode="cached", **kwargs))


def test_the_plugin_passes_the_conformance_kit_with_its_cache_program_check(spec):
    report = check_model(spec, checks=["purity", "autoregressive", "sampler", "cache-program"])
    assert report.passed, str(report)
    result = report.results[-1]
    assert result.name == "cache-program" and "no forward pass" in result.message


def test_the_kit_catches_a_program_that_is_not_the_forward_pass(spec):
    class Shifted(spec.build):
        def forward(self, x, cond=None, ordering=None):
            return super().forward(x, cond, ordering) + 0.5  # the program does not know about this

    result = check_model(dataclasses.replace(spec, name="shifted", build=Shifted), checks=["cache-program"]).results[0]
    assert not result.passed and "not the forward pass" in result.message


def test_the_kit_catches_a_program_that_the_spec_does_not_offer(spec):
    result = check_model(dataclasses.replace(spec, sampler_modes=()), checks=["cache-program"]).results[0]
    assert not result.passed and "does not list 'cached'" in result.message


def test_a_model_without_a_program_passes_the_check_and_samples_naively():
    from plugins.made import SPEC as MADE

    result = check_model(MADE, checks=["cache-program"]).results[0]
    assert result.passed and "declares no cache program" in result.message


# what the engine refuses, with one line saying why ---------------------------------------------------------------


def test_a_program_that_sees_the_current_pixel_is_refused():
    net = nn.Sequential(MaskedConv2d(1, 4, 3, "B"), nn.ReLU(), MaskedConv2d(4, 1, 1, "B"))
    with pytest.raises(ModelError, match="no mask-A convolution"):
        CacheProgram.sequential(net).validate(1, 1)


def test_an_unknown_layer_is_refused_by_name():
    net = nn.Sequential(MaskedConv2d(1, 4, 3, "A"), nn.BatchNorm2d(4), MaskedConv2d(4, 1, 1, "B"))
    with pytest.raises(ModelError, match="does not know the layer BatchNorm2d"):
        CacheProgram.sequential(net)


@pytest.mark.parametrize(
    ("net", "channels", "message"),
    [
        (nn.Sequential(MaskedConv2d(3, 6, 3, "A", groups=3), Gate(), MaskedConv2d(3, 3, 1, "B", groups=3)), 3,
         "gate pairs channels"),
        (nn.Sequential(MaskedConv2d(3, 6, 3, "A"), MaskedConv2d(6, 3, 1, "B", groups=3)), 3, "channel groups"),
        (nn.Sequential(MaskedConv2d(1, 4, 3, "A"), nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 1, 1)), 1,
         "without a mask"),
        (nn.Sequential(MaskedConv2d(1, 4, 3, "A"), nn.Conv2d(4, 2, 1)), 1, "the head needs 1"),
        (nn.Sequential(MaskedConv2d(1, 4, 3, "A"), Residual(MaskedConv2d(4, 3, 1, "B")), nn.Conv2d(3, 1, 1)), 1,
         "adds"),
    ],
    ids=["colour-gate", "mask-groups", "unmasked-3x3", "output-size", "residual-shape"],
)
def test_programs_the_engine_cannot_run_exactly_are_refused(net, channels, message):
    with pytest.raises(ModelError, match=message):
        CacheProgram.sequential(net).validate(channels, 1)


def test_a_grey_program_may_gate_and_use_plain_1x1_convolutions():
    net = nn.Sequential(MaskedConv2d(1, 8, 3, "A"), Gate(), Residual(nn.Conv2d(4, 4, 1), nn.ELU()), nn.Conv2d(4, 1, 1))
    program = CacheProgram.sequential(net)
    sizes = program.validate(1, 1)
    assert sizes[program.output] == 1 and [type(op).__name__ for op in program.ops][:2] == ["Conv", "Activation"]
    x = torch.rand(2, 1, 4, 4)
    assert torch.equal(program.evaluate(x), net(x))


def test_a_spatial_condition_is_refused_when_the_program_is_built():
    class PositionBias(nn.Module):
        def forward(self, cond):
            return cond  # (B, C, H, W): a bias per position, which the engine does not take

    from example_plugins.masked_convnet import SPEC, MaskedConvNet

    class Model(MaskedConvNet):
        def cache_program(self):
            first = self.net[0]
            return CacheProgram((Conv(first, INPUT, "h", PositionBias()), Activation("relu", "h", "r"),
                                 Conv(self.net[-1], "r", "out")), "out")

    spec = dataclasses.replace(SPEC, build=Model)
    model = spec.create(spec.make_config((1, 4, 4), 2, {"channels": 6, "blocks": 0}))
    with pytest.raises(ModelError, match="one per image"):
        build_program(model, 2).reset(torch.zeros(2, 1, 4, 4), torch.zeros(2, 6, 4, 4))


def test_a_class_bias_enters_the_cached_program():
    """A declared program with a per-image condition (a ClassBias per convolution) samples naive's images."""
    from example_plugins.masked_convnet import SPEC, MaskedConvNet

    class Conditional(MaskedConvNet):
        def __init__(self, config):
            super().__init__(config)
            self.bias = ClassBias(3, self.net[0].out_channels)
            nn.init.normal_(self.bias.embed.weight)

        def forward(self, x, cond=None, ordering=None):
            b, c, h, w = x.shape
            out = self.net[1:](self.net[0](self.normalize(x)) + self.bias(cond))
            return out.reshape(b, c, -1, h, w).permute(0, 1, 3, 4, 2)

        def cache_program(self):
            rest = CacheProgram.sequential(self.net[1:])
            renamed = {INPUT: "h"}
            ops = [Conv(self.net[0], INPUT, "h", self.bias)]
            for op in rest.ops:  # the rest of the network reads "h" where it read the input
                fields = {f: renamed.get(getattr(op, f), getattr(op, f)) for f in ("src", "a", "b") if hasattr(op, f)}
                ops.append(dataclasses.replace(op, **fields))
            return CacheProgram(tuple(ops), rest.output)

    from app.core.model import ConditionSpec

    spec = dataclasses.replace(SPEC, name="conditional", build=Conditional,
                               condition=ConditionSpec("class", num_classes=3))
    torch.manual_seed(0)
    model = spec.create(spec.make_config((1, 6, 6), 2, {"channels": 8, "blocks": 1})).eval()
    labels = torch.tensor([0, 2, 1])
    naive = sample(model, 3, seed=2, cond=labels, mode="naive")
    assert torch.equal(naive, sample(model, 3, seed=2, cond=labels, mode="cached"))
    assert check_model(spec, checks=["cache-program"]).passed
