"""Every registered model passes the conformance kit; the kit itself catches broken models."""

import dataclasses

import pytest
import torch

from app.core.registry import Registry
from app.testing import check_model

_REGISTRY = Registry()


@pytest.mark.parametrize("name", sorted(_REGISTRY.models))
def test_registered_model_conforms(name):
    report = check_model(_REGISTRY.model(name))
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
