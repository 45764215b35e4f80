"""Sampling seen in stages, for a view: the stages a model declares (:meth:`ARModel.sampling_stages`: the
parallel multiscale PixelCNN's base grid, then every doubling of the resolution; one stage for most models),
after those of the model that draws its condition first, if it names one (:meth:`ARModel.prior_stage`: the
grey stage of the grayscale hierarchy); with the network calls each stage takes beside the calls of a sampler
that draws one dimension per call.

Qt-free: :meth:`StagedSampling.steps` is a generator of plain numpy frames that a worker thread iterates. Any
model, built-in or a plugin's, takes part through those two methods alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from app.core.errors import ModelError
from app.core.model import ARModel
from app.core.sampling import SampleStep, sample_steps
from app.core.stages import PriorStage, Stage, StageSources


@dataclass
class StagedFrame:
    """The state after one step of a staged run.

    ``images[k]`` is stage k's image ``(N, C, h, w)`` so far (None before the stage starts) and ``drawn[k]``
    its drawn positions ``(h, w)``; ``dims`` are the step's flat dimensions in the image of the step's model.
    """

    index: int
    total: int
    stage: int
    step: SampleStep
    images: list[np.ndarray | None]
    drawn: list[np.ndarray]
    network_calls: int
    dims: np.ndarray

    @property
    def done(self) -> bool:
        return self.index == self.total - 1


class StagedSampling:
    """How ``model`` samples, stage by stage, after its ``prior`` (the model that draws its condition), if any.

    Refuses (:class:`ModelError`) stages that do not cover the model's sampling plan or do not fit its image.
    """

    def __init__(self, model: ARModel, prior: PriorStage | None = None) -> None:
        self.model = model
        self.prior = prior
        own = list(model.sampling_stages())
        check_stages(model, own)
        if prior is not None:
            check_stages(prior.model, list(prior.stages))
        self._own_stages = own
        self.stages: list[Stage] = [*(prior.stages if prior is not None else ()), *own]

    @classmethod
    def for_model(cls, model: ARModel, sources: StageSources) -> StagedSampling:
        """The staged sampling of ``model``, with the prior it names found in ``sources``."""
        return cls(model, model.prior_stage(sources))

    @property
    def total_calls(self) -> int:
        return sum(stage.network_calls for stage in self.stages)

    @property
    def one_per_call(self) -> int:
        """Network calls of a sampler that draws the final image one dimension per call."""
        return int(np.prod(self.model.shape))

    def stage_ends(self) -> list[int]:
        """The index of the last step of every stage."""
        return list(np.cumsum([stage.network_calls for stage in self.stages]) - 1)

    def steps(
        self, n: int, *, seed: int = 0, temperature: float = 1.0, cond: Tensor | None = None, mode: str = "auto"
    ) -> Iterator[StagedFrame]:
        """Every step of every stage, as frames. With a prior, ``cond`` is the prior's finished image."""
        if self.prior is None:
            run = sample_steps(self.model, n, seed=seed, temperature=temperature, cond=cond, mode=mode)
            return self._frames(run, self._own_stages, 0, [], 0)
        return self._prior_then_own(n, seed, temperature, mode)

    def _prior_then_own(self, n: int, seed: int, temperature: float, mode: str) -> Iterator[StagedFrame]:
        prior = self.prior
        assert prior is not None
        stages = list(prior.stages)
        last: StagedFrame | None = None
        run = sample_steps(prior.model, n, seed=seed, temperature=temperature, mode=mode_for_stage(prior.model, mode))
        for last in self._frames(run, stages, 0, [], 0, after=self._own_stages):
            yield last
        assert last is not None
        image = last.step.image
        done_images = [image[:, :, :: s.stride, :: s.stride] for s in stages]
        cond = torch.as_tensor(image, dtype=torch.float32, device=self.model.device)
        # The second model draws from the next seed: the two runs never share their random numbers.
        run = sample_steps(self.model, n, seed=seed + 1, temperature=temperature, cond=cond,
                           mode=mode_for_stage(self.model, mode))
        yield from self._frames(run, self._own_stages, len(stages), list(zip(done_images, last.drawn[: len(stages)], strict=True)),
                                last.network_calls, offset=last.index + 1)

    def _frames(self, run: Iterator[SampleStep], stages: list[Stage], first: int,
                before: list[tuple[np.ndarray, np.ndarray]], calls_before: int, offset: int = 0,
                after: Sequence[Stage] = ()) -> Iterator[StagedFrame]:
        """Frames of one model's run over its ``stages`` (global numbers from ``first``), after the finished
        stages ``before`` (their images and drawn masks) and before the stages ``after``, not started."""
        ends = np.cumsum([stage.network_calls for stage in stages])
        drawn: np.ndarray | None = None
        for step in run:
            if drawn is None:
                drawn = np.zeros(step.image.shape[2:], dtype=bool)
            drawn[step.positions[:, 1], step.positions[:, 2]] = True
            local = int(np.searchsorted(ends, step.index, side="right"))
            images = [*(image for image, _ in before)]
            images += [step.image[:, :, :: s.stride, :: s.stride] if k <= local else None for k, s in enumerate(stages)]
            masks = [*(mask for _, mask in before), *(drawn[:: s.stride, :: s.stride].copy() for s in stages)]
            images += [None] * len(after)
            masks += [np.zeros(stage.shape[1:], dtype=bool) for stage in after]
            yield StagedFrame(offset + step.index, self.total_calls, first + local, step, images, masks,
                              calls_before + step.network_calls, step.dims)


def check_stages(model: ARModel, stages: Sequence[Stage]) -> None:
    """Refuse stages that do not take exactly the steps of ``model``'s sampling plan or do not fit its image."""
    title = model.spec.title if getattr(model, "spec", None) is not None else type(model).__name__
    if not stages:
        raise ModelError(f"{title} declares no sampling stages")
    steps = len(model.sampling_plan())
    calls = sum(stage.network_calls for stage in stages)
    if calls != steps:
        raise ModelError(f"{title}'s sampling stages take {calls} network calls; its sampling plan has {steps} steps")
    c, h, w = model.shape
    for stage in stages:
        expected = (c, len(range(0, h, stage.stride)), len(range(0, w, stage.stride))) if stage.stride >= 1 else None
        if expected is None or tuple(stage.shape) != expected:
            raise ModelError(
                f"{title}'s stage {stage.name!r} has the shape {tuple(stage.shape)}; its {c}x{h}x{w} image "
                f"subsampled by stride {stage.stride} is {expected}"
            )


def mode_for_stage(model: ARModel, mode: str) -> str:
    """``mode`` where the stage's model has it, else its own default: the two models may offer different ones."""
    return mode if mode in ("naive", "auto") or mode in model.spec.sampler_modes else "auto"


__all__ = ["Stage", "StagedFrame", "StagedSampling", "check_stages", "mode_for_stage"]
