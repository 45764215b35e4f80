"""Purity: ``forward`` is a function of its input. The other checks, scoring and sampling all rely on it."""

from __future__ import annotations

import torch

from app.core.model import ModelSpec
from app.core.orderings import random
from app.testing.instances import Shape, build, condition, describe_dim, random_images, run_ordering
from app.testing.report import CheckResult

#: How far an image's parameters computed alone may differ from the same image's in a batch (a batch size
#: may select another convolution algorithm, which rounds differently).
BATCH_TOLERANCE = 1e-4


def check_purity(spec: ModelSpec, shape: Shape, k: int, hparams: dict | None = None, seed: int = 0) -> CheckResult:
    """In eval mode: two calls on the same input agree exactly, the input is left as it was, the output is
    finite and fits the head, and an image's parameters do not depend on the other images of its batch."""
    ordering = None if spec.orderings == "fixed" else random(shape[1], shape[2], seed + 3)
    model = build(spec, shape, k, ordering, hparams, seed)
    at_call = run_ordering(spec, ordering)
    x = random_images(3, shape, k, seed + 1)
    cond = condition(model, 3, seed)
    kept = x.clone()
    with torch.no_grad():
        first = model.params(x, cond, at_call)
        if not torch.equal(x, kept):
            d = int((x != kept).reshape(3, -1).any(0).nonzero()[0])
            return _fail(f"forward changed its input in place (first at {describe_dim(d, shape)}): it must not write into x")
        if not torch.isfinite(first).all():
            return _fail(f"forward returned NaN or infinite parameters (first at {_first_dim(~torch.isfinite(first), shape)})")
        problem = model.likelihood.validate(first)
        if problem is not None:
            return _fail(f"forward's output does not fit its {model.likelihood.name} head: {problem}")
        second = model.params(x, cond, at_call)
        if not torch.equal(first, second):
            diff = float((first - second).abs().max())
            where = _first_dim(first != second, shape)
            return _fail(
                f"two calls of forward on the same input differ by up to {diff:.1e} (first at {where}): forward "
                "must be pure, with no randomness in eval mode and no state kept between calls",
                {"difference": diff},
            )
        alone = model.params(x[:1], None if cond is None else cond[:1], at_call)
    gap = float((alone - first[:1]).detach().abs().max())
    if not gap <= BATCH_TOLERANCE * (1.0 + float(first[:1].detach().abs().max())):
        return _fail(
            f"an image's parameters depend on the other images of its batch (by up to {gap:.1e}, first at "
            f"{_first_dim(~((alone - first[:1]).abs() <= BATCH_TOLERANCE), shape)})",
            {"batch_gap": gap},
        )
    return CheckResult(
        "purity", True,
        f"forward is pure: two calls agree exactly, the input is untouched, each image is computed on its own, "
        f"and its output fits the {model.likelihood.name} head",
        {"batch_gap": gap},
    )


def _first_dim(mask: torch.Tensor, shape: Shape) -> str:
    """The first dimension where ``mask`` (``(B, C, H, W, P)``) holds in any image and parameter."""
    per_dim = mask.reshape(mask.shape[0], -1, mask.shape[-1]).any(-1).any(0)
    return describe_dim(int(per_dim.nonzero()[0]), shape)


def _fail(message: str, details: dict | None = None) -> CheckResult:
    return CheckResult("purity", False, message, details or {})
