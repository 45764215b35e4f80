"""Sampling seen in stages, for a view: the grayscale hierarchy (grey, then colour given grey), the parallel
multiscale PixelCNN (the base grid, then every doubling of the resolution), or a single stage for any other
model; with the network calls each stage takes beside the calls of a sampler that draws one dimension per call.

Qt-free: :meth:`StagedSampling.steps` is a generator of plain numpy frames that a worker thread iterates.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from torch import Tensor

from app.core.model import ARModel
from app.core.sampling import SampleStep, sample_steps
from plugins.hierarchy import GrayscaleHierarchy
from plugins.multiscale import GROUP_OFFSETS, MultiscalePixelCNN


@dataclass(frozen=True)
class Stage:
    """One stage: its name, the shape of its image, its network calls, and the dimensions it draws.

    ``dims`` is what a sampler drawing one dimension per network call needs for this stage.
    """

    name: str
    detail: str
    shape: tuple[int, int, int]
    num_values: int
    network_calls: int
    dims: int


@dataclass
class StagedFrame:
    """The state after one step of a staged run.

    ``images[k]`` is stage k's image ``(N, C, h, w)`` so far (None before the stage starts) and ``drawn[k]``
    its drawn positions ``(h, w)``; ``dims`` are the step's flat dimensions in the final image.
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
    """How ``model`` samples, stage by stage. A colour stage of the hierarchy needs its ``grey`` model."""

    def __init__(self, model: ARModel, grey: ARModel | None = None) -> None:
        self.model = model
        self.hierarchy = GrayscaleHierarchy(grey, model) if grey is not None else None
        if self.hierarchy is not None:
            self.stages = _hierarchy_stages(self.hierarchy)
        elif isinstance(model, MultiscalePixelCNN):
            self.stages = _multiscale_stages(model)
        else:
            c, h, w = model.shape
            calls = len(model.sampling_plan())
            detail = "one dimension per network call" if calls == c * h * w else f"{calls} groups of dimensions"
            self.stages = [Stage("image", detail, (c, h, w), model.num_values, calls, c * h * w)]

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
        """Every step of every stage, as frames."""
        if self.hierarchy is not None:
            return self._hierarchy_steps(n, seed, temperature, mode)
        run = sample_steps(self.model, n, seed=seed, temperature=temperature, cond=cond, mode=mode)
        if isinstance(self.model, MultiscalePixelCNN):
            return self._multiscale_steps(run)
        return self._single_steps(run)

    # -- the three kinds of run ----------------------------------------------------------------------------
    def _single_steps(self, run: Iterator[SampleStep]) -> Iterator[StagedFrame]:
        c, h, w = self.model.shape
        drawn = np.zeros((h, w), dtype=bool)
        for step in run:
            drawn[step.positions[:, 1], step.positions[:, 2]] = True
            yield StagedFrame(step.index, step.total, 0, step, [step.image], [drawn.copy()], step.network_calls,
                              step.dims)

    def _multiscale_steps(self, run: Iterator[SampleStep]) -> Iterator[StagedFrame]:
        model = self.model
        _, h, w = model.shape
        drawn = np.zeros((h, w), dtype=bool)
        for step in run:
            level, _ = model.step_part(step.index)
            drawn[step.positions[:, 1], step.positions[:, 2]] = True
            strides = [model.stride(k) for k in range(model.levels + 1)]
            images = [step.image[:, :, ::s, ::s] if k <= level else None for k, s in enumerate(strides)]
            yield StagedFrame(step.index, step.total, level, step, images, [drawn[::s, ::s].copy() for s in strides],
                              step.network_calls, step.dims)

    def _hierarchy_steps(self, n: int, seed: int, temperature: float, mode: str) -> Iterator[StagedFrame]:
        hierarchy = self.hierarchy
        assert hierarchy is not None
        _, h, w = self.model.shape
        total = self.total_calls
        drawn = [np.zeros((h, w), dtype=bool), np.zeros((h, w), dtype=bool)]
        offset = 0
        for index, staged in enumerate(hierarchy.sample_steps(n, seed=seed, temperature=temperature, mode=mode)):
            stage = 0 if staged.stage == "grey" else 1
            step = staged.step
            if stage == 1 and offset == 0:
                offset = index
            drawn[stage][step.positions[:, 1], step.positions[:, 2]] = True
            images = [step.image, None] if stage == 0 else [staged.grey, step.image]
            yield StagedFrame(index, total, stage, step, images, [d.copy() for d in drawn], staged.network_calls,
                              step.dims)


def _multiscale_stages(model: MultiscalePixelCNN) -> list[Stage]:
    _, h, w = model.shape
    stride = model.stride(0)
    bh, bw = h // stride, w // stride
    stages = [Stage(f"{bh}x{bw} base grid", "a PixelCNN, one pixel per network call", (1, bh, bw), model.num_values,
                    bh * bw, bh * bw)]
    for level in range(1, model.levels + 1):
        s = model.stride(level)
        gh, gw = h // s, w // s
        new = gh * gw - (gh // 2) * (gw // 2)
        per_group = new // len(GROUP_OFFSETS)
        stages.append(Stage(f"{gh}x{gw}", f"{len(GROUP_OFFSETS)} network calls of {per_group} pixels drawn in parallel",
                            (1, gh, gw), model.num_values, len(GROUP_OFFSETS), new))
    return stages


def _hierarchy_stages(hierarchy: GrayscaleHierarchy) -> list[Stage]:
    grey, colour = hierarchy.grey, hierarchy.colour
    grey_calls = len(grey.sampling_plan())
    colour_calls = len(colour.sampling_plan())
    return [
        Stage("grey stage", f"{grey.spec.title}: the binary grey image, one pixel per network call",
              tuple(grey.shape), grey.num_values, grey_calls, int(np.prod(grey.shape))),
        Stage("colour stage", "colour given the whole grey image: R, G, B of each pixel in turn",
              tuple(colour.shape), colour.num_values, colour_calls, int(np.prod(colour.shape))),
    ]


__all__ = ["Stage", "StagedFrame", "StagedSampling"]
