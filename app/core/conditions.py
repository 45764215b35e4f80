"""How a conditional model's condition is made from a batch of data (labels, low-resolution or grey images).

A :class:`~app.core.model.ConditionSpec` names its derivation (``derive``); the training loop, the
evaluation and the views call :func:`derive_condition` with the batch. Plugins may add derivations with
:func:`register_derivation`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor

from app.core.errors import ModelError
from app.core.model import ConditionSpec

Derivation = Callable[[ConditionSpec, Tensor, "Tensor | None", int], Tensor]
_DERIVATIONS: dict[str, Derivation] = {}


def register_derivation(name: str, function: Derivation) -> None:
    """Make ``derive=name`` available: ``function(spec, images (B,C,H,W) float values, labels, K) -> cond``."""
    _DERIVATIONS[name] = function


def derive_condition(spec: ConditionSpec | None, images: Tensor, labels: Tensor | None, num_values: int) -> Tensor | None:
    """The condition of ``images`` (values ``0 .. num_values-1``) for a model conditioned by ``spec``."""
    if spec is None:
        return None
    try:
        function = _DERIVATIONS[spec.derive]
    except KeyError:
        raise ModelError(f"unknown condition derivation {spec.derive!r}") from None
    return function(spec, images, labels, num_values)


def condition_error(spec: ConditionSpec, images: Tensor, cond: Tensor, num_values: int) -> Tensor:
    """``(N,)``: how far each image's own condition is from ``cond``, as a mean absolute difference of values.

    For the super-resolution condition: the mean number of on-pixels per 4x4 block by which a sample,
    downsampled again, misses the 7x7 image it was drawn from.
    """
    derived = derive_condition(spec, images.float(), None, num_values)
    return (derived - cond.to(derived).expand_as(derived)).abs().flatten(1).mean(1)


def _label(spec: ConditionSpec, images: Tensor, labels: Tensor | None, num_values: int) -> Tensor:
    if labels is None:
        raise ModelError("this model is conditioned on class labels, and the dataset has none")
    return labels.long()


def _downsample(spec: ConditionSpec, images: Tensor, labels: Tensor | None, num_values: int) -> Tensor:
    """Average-pool to ``spec.shape`` and quantise to ``spec.num_values`` levels."""
    _, h, w = spec.shape[-3:] if len(spec.shape) == 3 else (1, *spec.shape[-2:])
    pooled = F.adaptive_avg_pool2d(images.float() / (num_values - 1), (h, w))
    return (pooled * (spec.num_values - 1)).round()


def _grey(spec: ConditionSpec, images: Tensor, labels: Tensor | None, num_values: int) -> Tensor:
    """The mean over channels, quantised to ``spec.num_values`` levels (the grey stage of a hierarchy)."""
    grey = images.float().mean(dim=1, keepdim=True) / (num_values - 1)
    return (grey * (spec.num_values - 1)).round()


register_derivation("label", _label)
register_derivation("downsample", _downsample)
register_derivation("grey", _grey)
