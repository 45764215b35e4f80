"""Sampling in stages is the model's own contract: a plugin's model declares its stages with
``sampling_stages()`` and takes part as the built-in multiscale PixelCNN does; stages that do not cover the
model's sampling plan are refused with a message that says so."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from app.core.errors import ModelError
from app.core.registry import Registry
from app.core.sampling_stages import StagedSampling
from app.core.stages import StageSources


@pytest.fixture
def coarse_to_fine():
    registry = Registry(env={"AR_EXPLORER_PLUGINS": "example_plugins.coarse_to_fine"})
    assert [s.to_dict() for s in registry.problems()] == []
    spec = registry.model("coarse-to-fine")
    torch.manual_seed(0)
    model = spec.create(spec.make_config((1, 6, 6), 2))
    torch.nn.init.normal_(model.weight, std=2.0)  # a fresh model draws every pixel at p = 1/2: give it a shape
    return model.eval()


def test_a_plugins_staged_model_is_sampled_stage_by_stage(coarse_to_fine):
    staged = StagedSampling.for_model(coarse_to_fine, StageSources([], None, lambda ref: None))
    assert staged.prior is None
    assert [s.name for s in staged.stages] == ["coarse grid", "fine"] and staged.stage_ends() == [8, 35]
    frames = list(staged.steps(3, seed=2))
    assert [f.stage for f in frames] == [0] * 9 + [1] * 27 and frames[-1].done
    coarse_done = frames[8]
    assert coarse_done.drawn[0].all() and coarse_done.drawn[1].sum() == 9
    assert coarse_done.images[1] is None and frames[9].images[1] is not None  # the fine stage starts after it
    final = frames[-1].step.image
    np.testing.assert_array_equal(frames[-1].images[0], final[:, :, ::2, ::2])
    np.testing.assert_array_equal(frames[-1].images[1], final)
    # the stages split the model's own sampling: the same images as sampling it whole
    from app.core.sampling import sample

    np.testing.assert_array_equal(final, sample(coarse_to_fine, 3, seed=2).numpy())


def test_stages_that_miss_the_sampling_plan_are_refused(coarse_to_fine, monkeypatch):
    good = coarse_to_fine.sampling_stages()
    short = [good[0], dataclasses.replace(good[1], network_calls=20)]
    monkeypatch.setattr(coarse_to_fine, "sampling_stages", lambda: short)
    with pytest.raises(ModelError, match="sampling stages take 29 network calls; its sampling plan has 36 steps"):
        StagedSampling(coarse_to_fine)
    misshapen = [dataclasses.replace(good[0], shape=(1, 6, 6)), good[1]]
    monkeypatch.setattr(coarse_to_fine, "sampling_stages", lambda: misshapen)
    with pytest.raises(ModelError, match=r"stage 'coarse grid' has the shape \(1, 6, 6\); .* stride 2 is \(1, 3, 3\)"):
        StagedSampling(coarse_to_fine)


def test_the_coarse_to_fine_example_is_autoregressive():
    from app.testing import check_model

    registry = Registry(env={"AR_EXPLORER_PLUGINS": "example_plugins.coarse_to_fine"})
    report = check_model(registry.model("coarse-to-fine"), checks=("autoregressive", "normalization", "sampler"))
    assert report.passed, str(report)


def test_a_model_without_stages_of_its_own_is_one_stage(registry):
    spec = registry.model("pixelcnn")
    model = spec.create(spec.make_config((1, 4, 4), 2, tiny=True))
    staged = StagedSampling(model)
    assert [(s.name, s.network_calls, s.stride) for s in staged.stages] == [("image", 16, 1)]
