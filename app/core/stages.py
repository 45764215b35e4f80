"""The stages of a model's sampling, as the model declares them: what the Stages view shows side by side.

A model describes its own sampling plan in stages (:meth:`app.core.model.ARModel.sampling_stages`): the
parallel multiscale PixelCNN draws a base grid, then every doubling of the resolution; most models draw one
stage, the whole image. A model whose condition is drawn first by another model (the colour stage of the
grayscale hierarchy, after its grey stage) names that model (:meth:`~app.core.model.ARModel.prior_stage`).
Plain data only: :mod:`app.core.sampling_stages` runs the stages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.core.model import ARModel


@dataclass(frozen=True)
class Stage:
    """One stage of a sampling run.

    Attributes
    ----------
    name, detail
        What the stage is called, and how it draws (one line each).
    shape
        ``(C, h, w)`` of the stage's image.
    num_values
        K of its values.
    network_calls
        Steps of the model's sampling plan that the stage takes (consecutive, in plan order).
    dims
        Dimensions it draws: what a sampler drawing one dimension per network call needs for this stage.
    stride
        The stage shows the model's image subsampled by this stride in both directions (a coarser grid of a
        multiscale model); 1 shows the whole image.
    """

    name: str
    detail: str
    shape: tuple[int, int, int]
    num_values: int
    network_calls: int
    dims: int
    stride: int = 1


@dataclass(frozen=True)
class StageSources:
    """What a model may draw on to find the model that samples before it.

    Attributes
    ----------
    checkpoints
        Every :class:`~app.core.checkpoints.CheckpointInfo` found.
    info
        The model's own ``CheckpointInfo`` (None for a model built in memory).
    load
        ``load(reference) -> ARModel``: a checkpoint by name or path, loaded (and cached by the caller).
    """

    checkpoints: Sequence[Any]
    info: Any | None
    load: Callable[[str], ARModel]


@dataclass(frozen=True)
class PriorStage:
    """A model that draws another model's condition before it: the grey stage of the grayscale hierarchy.

    The prior is sampled to the end first; its finished image is the condition of the model that named it.

    Attributes
    ----------
    model
        The prior model (unconditional).
    stages
        How its run is shown: its stages, with names that say what they are for the pair.
    condition_title, condition_note
        What the view says about the condition (a title and a sentence).
    """

    model: ARModel
    stages: tuple[Stage, ...]
    condition_title: str
    condition_note: str


def whole_image_stage(model: ARModel, name: str = "image", detail: str | None = None) -> Stage:
    """The one stage of a model that draws its whole image by its own sampling plan."""
    c, h, w = model.shape
    calls = len(model.sampling_plan())
    if detail is None:
        detail = "one dimension per network call" if calls == c * h * w else f"{calls} groups of dimensions"
    return Stage(name, detail, (c, h, w), model.num_values, calls, c * h * w)


__all__ = ["PriorStage", "Stage", "StageSources", "whole_image_stage"]
