"""Scoring: per-dimension -log p(x_d | x_<d), totals in nats per image and bits per dimension, receptive fields.

Units: natural logarithms throughout. ``bits/dim = nats / (num_dims * ln 2)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from app.core.errors import ModelError
from app.core.model import ARModel
from app.core.orderings import Ordering

LN2 = math.log(2.0)


def bits_per_dim(nats: float | np.ndarray, num_dims: int) -> float | np.ndarray:
    return nats / (num_dims * LN2)


@dataclass
class ScoreResult:
    """Scores of a batch of images.

    ``per_dim_nll`` ``(B, C, H, W)``: -log p(x_d | x_<d) in nats; ``nll_nats`` ``(B,)``: their sum, nats per
    image; ``bits_per_dim`` ``(B,)``: the same in bits per dimension.
    """

    per_dim_nll: np.ndarray
    nll_nats: np.ndarray
    bits_per_dim: np.ndarray

    @property
    def per_pixel_nll(self) -> np.ndarray:
        """``(B, H, W)``: nats per pixel, summed over channels."""
        return self.per_dim_nll.sum(axis=1)


def score(
    model: ARModel,
    x: Tensor | np.ndarray,
    cond: Tensor | None = None,
    ordering: Ordering | None = None,
    batch_size: int = 512,
) -> ScoreResult:
    """Score images ``(B, C, H, W)`` of integer values under ``model`` (and ``ordering``, if it takes one)."""
    x = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x)
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if tuple(x.shape[1:]) != tuple(model.shape):
        raise ModelError(f"images of shape {tuple(x.shape[1:])} do not fit a model of shape {tuple(model.shape)}")
    outputs = []
    device = model.device
    with torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            xb = x[start : start + batch_size].to(device=device, dtype=torch.float32)
            cb = cond[start : start + batch_size].to(device) if cond is not None else None
            logp = model.log_prob(xb, cb, ordering)
            if not torch.isfinite(logp).all():
                raise ModelError(f"{model.spec.title} returned NaN or infinite log-probabilities")
            outputs.append((-logp).double().cpu())
    per_dim = torch.cat(outputs).numpy()
    total = per_dim.reshape(per_dim.shape[0], -1).sum(1)
    return ScoreResult(per_dim, total, bits_per_dim(total, int(np.prod(model.shape))))


def ensemble_nll(
    model: ARModel,
    x: Tensor | np.ndarray,
    orderings: list[Ordering],
    cond: Tensor | None = None,
    batch_size: int = 512,
) -> np.ndarray:
    """NLL in nats per image of the ensemble over ``orderings`` of a model that takes any ordering:
    ``-log (1/K) sum_k p(x | ordering k)``, by log-sum-exp (exact, and stable however far apart the K are).

    An ensemble is a mixture, not an autoregressive model in one ordering, so it has no per-pixel map.
    """
    if not orderings:
        raise ModelError("an ensemble needs at least one ordering")
    if model.spec is not None and model.spec.orderings != "any":
        raise ModelError(f"{model.spec.title} has one ordering; an ensemble over orderings needs a model that "
                         "takes any ordering at run time")
    totals = np.stack([score(model, x, cond, o, batch_size).nll_nats for o in orderings])  # (K, B)
    logp = torch.as_tensor(-totals, dtype=torch.float64)
    return -(torch.logsumexp(logp, dim=0) - math.log(len(orderings))).numpy()


def random_orderings(k: int, height: int, width: int, registry) -> list[Ordering]:
    """``k`` seeded random orderings (seeds 0 .. k-1) from ``registry``'s presets: the members of EoNADE's
    ensemble."""
    return [registry.ordering("random", height, width, seed) for seed in range(k)]


@dataclass
class Conditional:
    """The conditional distribution of one dimension given the image: what the inspector shows."""

    position: tuple[int, int, int]
    probs: np.ndarray  # (K,)
    value: int
    nll_nats: float
    rank: int  # the step of the ordering at which this position is generated


def conditional_at(
    model: ARModel,
    x: Tensor,
    position: tuple[int, int, int],
    cond: Tensor | None = None,
    ordering: Ordering | None = None,
) -> Conditional:
    """p(x_d | x_<d) over the K values for the dimension ``position = (c, row, col)`` of one image."""
    c, r, col = position
    x = torch.as_tensor(x).reshape(1, *model.shape).to(model.device, torch.float32)
    with torch.no_grad():
        logp = model.log_conditionals(x, cond, ordering)[0, c, r, col]
    if not torch.isfinite(logp).all():
        raise ModelError(f"{model.spec.title} returned NaN or infinite probabilities at position {position}")
    probs = logp.exp().double().cpu().numpy()
    value = int(x[0, c, r, col].round().item())
    ordering = model.resolve_ordering(ordering)
    return Conditional((c, r, col), probs, value, float(-logp[value]), int(ordering.rank[r, col]))


def receptive_field(
    model: ARModel,
    x: Tensor,
    position: tuple[int, int, int],
    cond: Tensor | None = None,
    ordering: Ordering | None = None,
) -> np.ndarray:
    """Which inputs the conditional of ``position`` depends on: ``|d/dx|`` of its head parameters.

    Returns ``(C, H, W)`` non-negative floats; exactly zero where the conditional cannot see the input (the
    PixelCNN blind spot shows as zeros above and to the right).
    """
    c, r, col = position
    x = torch.as_tensor(x).reshape(1, *model.shape).to(model.device, torch.float32).clone().requires_grad_(True)
    with torch.enable_grad():
        params = model.params(x, cond, ordering)[0, c, r, col]
        if not torch.isfinite(params).all():
            raise ModelError(f"{model.spec.title} returned NaN or infinite parameters at position {position}")
        if not params.requires_grad:  # computed without the input (or anything trainable): it sees nothing
            return np.zeros(model.shape, dtype=np.float32)
        # A fixed random projection of all parameters: any dependency of any parameter shows in the gradient.
        weights = torch.linspace(0.5, 1.5, params.numel(), device=params.device)
        (grad,) = torch.autograd.grad((params * weights).sum(), x, allow_unused=True)
    if grad is None:
        return np.zeros(model.shape, dtype=np.float32)
    return grad[0].abs().float().cpu().numpy()


def evaluate(
    model: ARModel,
    images: np.ndarray | Tensor,
    cond: Tensor | None = None,
    ordering: Ordering | None = None,
    batch_size: int = 512,
) -> dict:
    """Mean NLL over a dataset with its standard error, in nats per image and bits per dimension."""
    result = score(model, images, cond, ordering, batch_size)
    nats = result.nll_nats
    n = len(nats)
    mean = float(nats.mean())
    se = float(nats.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    d = int(np.prod(model.shape))
    return {
        "nll_nats": mean,
        "nll_nats_stderr": se,
        "bits_per_dim": float(bits_per_dim(mean, d)),
        "bits_per_dim_stderr": float(bits_per_dim(se, d)),
        "num_images": n,
    }


def percentile_rank(value: float, reference: np.ndarray) -> float:
    """Percentage of ``reference`` scores (NLL in nats) that are lower than ``value``: 99 means more
    surprising than 99% of the reference images."""
    reference = np.asarray(reference)
    if reference.size == 0:
        return float("nan")
    return float(100.0 * np.mean(reference < value))
