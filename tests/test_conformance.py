"""Every registered model passes the conformance kit; the kit itself catches broken models, says where, and
cannot be fooled by a bug that only shows at the real size, a checkpoint that only loads before a forward pass,
or a NaN."""

import dataclasses

import pytest
import torch

from app.core.registry import Registry
from app.testing import ALL_CHECKS, check_model

_REGISTRY = Registry()

#: Models whose real-size check takes more than a few seconds of CPU (attention over 784 positions for 785
#: images, order-agnostic NADE's one pass per step, 3x28x28 colour images).
_SLOW_AT_REAL_SIZE = {"any-order-attention", "attention", "colour-given-grey-pixelcnn", "order-agnostic-nade"}
_SMALL_CHECKS = [c for c in ALL_CHECKS if c != "autoregressive-real-size"]


@pytest.mark.parametrize("name", sorted(_REGISTRY.models))
def test_registered_model_conforms(name):
    report = check_model(_REGISTRY.model(name), checks=_SMALL_CHECKS)
    assert report.passed, str(report)


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n in _SLOW_AT_REAL_SIZE else n for n in sorted(_REGISTRY.models)],
)
def test_registered_model_is_autoregressive_at_its_real_size(name):
    report = check_model(_REGISTRY.model(name), checks=["autoregressive-real-size"])
    assert report.passed, str(report)


def test_no_plugin_problems():
    assert [s.to_dict() for s in _REGISTRY.problems()] == []


def _variant(build):
    from plugins.pixelcnn import SPEC

    return dataclasses.replace(SPEC, name="variant", build=build)


def test_kit_reports_which_position_sees_which():
    from plugins.layers import MaskedConv2d
    from plugins.pixelcnn import PixelCNN

    class SeesItself(PixelCNN):
        def __init__(self, config):
            super().__init__(config)
            self.first = MaskedConv2d(1, self.first.out_channels, 3, "B")

    result = check_model(_variant(SeesItself), checks=["autoregressive"]).results[0]
    assert not result.passed
    assert "sees position" in result.message and "ordering 'raster'" in result.message


def test_kit_catches_a_model_that_looks_ahead_under_a_random_ordering():
    from plugins.made import MADE, SPEC

    class LooksAhead(MADE):
        def forward(self, x, cond=None, ordering=None):
            out = super().forward(x, cond, ordering)
            return out + 0.01 * x.flip(-1).unsqueeze(-1)  # leaks later pixels into earlier ones

    result = check_model(dataclasses.replace(SPEC, build=LooksAhead), checks=["autoregressive"]).results[0]
    assert not result.passed and "not before it" in result.message


def test_kit_catches_unnormalised_probabilities():
    from plugins.pixelcnn import PixelCNN

    class Unnormalised(PixelCNN):
        def log_conditionals(self, x, cond=None, ordering=None):
            return super().log_conditionals(x, cond, ordering) + 0.1

        def log_prob(self, x, cond=None, ordering=None):
            return super().log_prob(x, cond, ordering) + 0.1

    result = check_model(_variant(Unnormalised), checks=["normalization"]).results[0]
    assert not result.passed and "sum" in result.message


def test_kit_catches_a_sampler_that_disagrees():
    from app.core.sampling import NaiveSampler
    from plugins.pixelcnn import PixelCNN

    class Skewed(NaiveSampler):
        def probs(self, step):
            p = super().probs(step)
            return torch.softmax(torch.log(p) * 2, -1)

    class WithBadSampler(PixelCNN):
        def make_sampler(self, x, cond=None, ordering=None, mode="naive"):
            return Skewed(self, x, cond, ordering)

    result = check_model(_variant(WithBadSampler), checks=["sampler"]).results[0]
    assert not result.passed and "differ" in result.message


def test_kit_reports_exceptions_as_failures():
    from plugins.pixelcnn import PixelCNN

    class Raises(PixelCNN):
        def forward(self, x, cond=None, ordering=None):
            raise RuntimeError("forward is broken")

    report = check_model(_variant(Raises))
    assert not report.passed and all("forward is broken" in r.message for r in report.results)


def test_unknown_check_is_refused_with_the_list():
    from plugins.pixelcnn import SPEC

    with pytest.raises(ValueError, match="no check named 'autoregresive'; the checks are purity, autoregressive"):
        check_model(SPEC, checks=["autoregresive"])


# a mask bug that only exists at the real size ---------------------------------------------------------------------


def _example(module: str, monkeypatch):
    monkeypatch.setenv("AR_EXPLORER_PLUGINS", f"example_plugins.{module}")
    registry = Registry()
    problems = [s.to_dict() for s in registry.problems()]
    assert problems == []
    return registry


def test_a_mask_bug_at_pixel_400_passes_the_small_checks_and_fails_at_the_real_size(monkeypatch):
    spec = _example("mask_bug", monkeypatch).model("leaky-fvsbn")
    report = check_model(spec)
    assert [r.name for r in report.failures] == ["autoregressive-real-size"], str(report)
    message = report.result("autoregressive-real-size").message
    assert message.startswith(
        "position 400 (row 14, col 8) sees position 401 (row 14, col 9), which is not before it, at 1x28x28 "
        "(ordering 'raster'): changing position 401 (row 14, col 9) changed its conditional by"
    ), message
    assert message.endswith("(step 400 sees step 401; 1 such pair(s) in all)")


@pytest.mark.parametrize("leak", [(0, 783), (782, 783), (27, 28), (783, 783), (401, 400 + 28)])
def test_the_real_size_check_finds_a_mask_bug_anywhere_in_28x28(leak, monkeypatch):
    spec = _example("mask_bug", monkeypatch).model("leaky-fvsbn")
    spec = dataclasses.replace(spec, tiny_hparams={"leak": list(leak)})
    result = check_model(spec, checks=["autoregressive-real-size"]).results[0]
    assert not result.passed
    assert (result.details["dim"], result.details["sees"]) == leak, result.message


def test_the_real_size_check_passes_a_correct_model_and_says_what_it_did():
    from plugins.gated_pixelcnn import SPEC

    result = check_model(SPEC, checks=["autoregressive-real-size"]).results[0]
    assert result.passed, result.message
    assert result.message.startswith("changing each of the 784 dimensions at 1x28x28 (ordering 'raster')")


def test_the_real_size_check_uses_a_random_ordering_for_models_built_for_one():
    from plugins.made import SPEC

    result = check_model(SPEC, checks=["autoregressive-real-size"]).results[0]
    assert result.passed and "ordering 'random-5'" in result.message, result.message


# save and load after the model has run ----------------------------------------------------------------------------


def test_the_kit_catches_a_checkpoint_that_only_loads_before_the_first_forward_pass(monkeypatch, tmp_path):
    from app.core.checkpoints import load_checkpoint, save_checkpoint

    registry = _example("lazy_buffer", monkeypatch)
    spec = registry.model("lazy-fvsbn")
    result = check_model(spec, checks=["roundtrip"]).results[0]
    assert not result.passed
    assert "after a forward pass and a training step, its checkpoint does not load into a freshly built model" in (
        result.message
    )
    assert "1 tensor(s) the model lacks (mask)" in result.message and "not on the first forward pass" in result.message
    # What fooled the kit before: a model that never ran saves and loads.
    fresh = spec.create(spec.make_config((1, 3, 3), 2))
    save_checkpoint(fresh, tmp_path / "never-ran", {"dataset": "none"})
    load_checkpoint(tmp_path / "never-ran.safetensors", registry)


# no check passes on a NaN -----------------------------------------------------------------------------------------


def test_the_sampler_check_fails_when_the_exact_marginals_are_nan():
    from plugins.pixelcnn import PixelCNN

    class NaNOnOneImage(PixelCNN):
        def log_prob(self, x, cond=None, ordering=None):
            out = super().log_prob(x, cond, ordering)
            full = (x.flatten(1) == 1).all(1)  # the all-ones image: enumerated, almost never sampled
            return torch.where(full[:, None, None, None], torch.nan, out)

    result = check_model(_variant(NaNOnOneImage), checks=["sampler"]).results[0]
    assert not result.passed and "by nan standard errors" in result.message, result.message


def test_a_passing_result_that_measured_nan_is_turned_into_a_failure(monkeypatch):
    from app.testing import conformance
    from app.testing.report import CheckResult
    from plugins.pixelcnn import SPEC

    monkeypatch.setitem(
        conformance.CHECKS, "sampler", lambda *a, **k: CheckResult("sampler", True, "fine", {"z": float("nan")})
    )
    result = check_model(SPEC, checks=["sampler"]).results[0]
    assert not result.passed and result.message == "measured z = nan: fine"


# messages that say where ------------------------------------------------------------------------------------------


def test_normalization_names_the_dimension():
    from plugins.pixelcnn import PixelCNN

    class OnePixelUnnormalised(PixelCNN):
        def log_conditionals(self, x, cond=None, ordering=None):
            out = super().log_conditionals(x, cond, ordering)
            out[:, :, 1, 2] += 0.1
            return out

    result = check_model(_variant(OnePixelUnnormalised), checks=["normalization"]).results[0]
    assert not result.passed and result.details["dim"] == 7
    assert result.message.startswith("the conditional of position 7 (row 1, col 2) sums to 1.10517, not 1 (image ")


def _with_cached_sampler(probs=None, commit=None):
    from app.core.sampling import NaiveSampler
    from plugins.pixelcnn import PixelCNN

    class Cached(NaiveSampler):
        def probs(self, step):
            p = super().probs(step)
            return probs(step, p) if probs else p

        def commit(self, step, values):
            super().commit(step, commit(step, values) if commit else values)

    class WithCache(PixelCNN):
        def make_sampler(self, x, cond=None, ordering=None, mode="naive"):
            if mode == "cached":
                return Cached(self, x, cond, ordering)
            return super().make_sampler(x, cond, ordering, mode)

    return _variant(WithCache)


def test_a_cached_sampler_that_disagrees_is_named_with_its_first_step():
    spec = _with_cached_sampler(probs=lambda step, p: torch.softmax(torch.log(p) * 2, -1) if step >= 5 else p)
    result = check_model(spec, checks=["sampler"]).results[0]
    assert not result.passed
    assert result.message.startswith("the cached sampler's conditionals differ from the model's by")
    assert result.message.endswith("first at step 5 (position 5 (row 1, col 0))"), result.message


def test_a_cached_sampler_that_draws_other_images_is_named_with_its_first_step():
    spec = _with_cached_sampler(commit=lambda step, v: 1 - v if step == 7 else v)
    result = check_model(spec, checks=["sampler"]).results[0]
    assert not result.passed
    assert result.message == (
        "the cached sampler drew other images than naive for the same seed, first at step 7 (position 7 (row 1, col 2))"
    )


def test_a_knock_on_failure_says_it_follows_from_the_first():
    from plugins.pixelcnn import PixelCNN

    class LooksAhead(PixelCNN):
        def forward(self, x, cond=None, ordering=None):
            return super().forward(x, cond, ordering) + 0.5 * x.flip(-1).unsqueeze(-1)

    report = check_model(_variant(LooksAhead), checks=["autoregressive", "sampler"])
    first, sampler = report.results
    assert not first.passed and not sampler.passed
    assert "follows" not in first.message
    assert sampler.message.endswith(
        "(this follows from the autoregressive failure above: a model whose conditionals see later dimensions "
        "gives other conditionals once those are drawn)"
    ), sampler.message
    assert sampler.details["follows_from"] == "autoregressive"


# forward must be pure -----------------------------------------------------------------------------------------------


def _purity_of(forward_change):
    from plugins.pixelcnn import PixelCNN

    class Variant(PixelCNN):
        def forward(self, x, cond=None, ordering=None):
            return forward_change(self, x, super().forward(x, cond, ordering))

    return check_model(_variant(Variant), checks=["purity", "roundtrip"]).results


def test_purity_passes_the_built_in_models_forward():
    purity, _ = _purity_of(lambda model, x, out: out)
    assert purity.passed and purity.message.startswith("forward is pure"), purity.message


def test_purity_catches_randomness_in_eval_mode():
    purity, roundtrip = _purity_of(lambda model, x, out: out + 1e-3 * torch.randn_like(out))
    assert not purity.passed
    assert purity.message.startswith("two calls of forward on the same input differ by up to")
    assert "first at position 0 (row 0, col 0)" in purity.message and "must be pure" in purity.message
    assert not roundtrip.passed and "follows from the purity failure" in roundtrip.message


def test_purity_catches_a_forward_that_writes_into_its_input():
    def clamps_in_place(model, x, out):
        x[:, :, 2:] = 0
        return out

    purity, _ = _purity_of(clamps_in_place)
    assert not purity.passed
    assert purity.message.startswith("forward changed its input in place (first at position"), purity.message


def test_purity_catches_images_that_depend_on_their_batch():
    purity, _ = _purity_of(lambda model, x, out: out + x.mean(0, keepdim=True).unsqueeze(-1))
    assert not purity.passed and "depend on the other images of its batch" in purity.message, purity.message
