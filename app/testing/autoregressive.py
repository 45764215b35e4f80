"""The autoregressive property: no dimension's conditional depends on itself or on a dimension after it.

Two checks. ``autoregressive`` is exact and runs on the small instance: the gradient of every dimension's
head parameters with respect to the input, one backward pass per dimension, under several orderings.
``autoregressive-real-size`` runs at the image size of the model's data (28x28), where a mask bug tied to a
position (pixel 400 sees pixel 401) shows and a tiny grid has no such position. It is cheap by perturbation:
one batch holds the image and, for every dimension, a copy with that one dimension changed, and the
conditionals of every dimension not after the changed one must stay as they were.
"""

from __future__ import annotations

import numpy as np
import torch

from app.core.model import ARModel, ModelSpec
from app.core.orderings import Ordering, random
from app.testing.instances import (
    Shape,
    build,
    condition,
    describe_dim,
    expand,
    ordering_name,
    orderings_for,
    random_images,
    real_shape,
    run_ordering,
    size,
    step_of,
)
from app.testing.report import CheckResult

#: A conditional counts as changed by more than this (in probability), or by more than ten times what two
#: identical copies of the image differ by in the same batch (rows of a batch may be summed in another
#: order): float rounding is far below it, a leak through the kit's randomly nudged weights far above.
PERTURBATION_TOLERANCE = 1e-5
#: Images per forward pass of the real-size check (the image, 62 changed copies, the image again): memory
#: stays bounded for attention over 784 positions.
CHUNK = 64


def check_autoregressive(
    spec: ModelSpec,
    shape: Shape,
    k: int,
    hparams: dict | None = None,
    orderings: list[Ordering | None] | None = None,
    seed: int = 0,
) -> CheckResult:
    """Exact, by gradients, on the small instance ``shape`` under each ordering the model takes."""
    names = []
    for ordering in orderings or orderings_for(spec, shape[1], shape[2]):
        model = build(spec, shape, k, ordering, hparams, seed)
        failure = _gradient_leak(model, spec, ordering, shape, k, seed)
        if failure is not None:
            return failure
        names.append(repr(ordering_name(model, ordering)))
    under = f"its ordering {names[0]}" if len(names) == 1 else f"{len(names)} orderings ({', '.join(names)})"
    return CheckResult("autoregressive", True, f"no dimension sees itself or a later one at {size(shape)}, under {under}")


def _gradient_leak(
    model: ARModel, spec: ModelSpec, ordering: Ordering | None, shape: Shape, k: int, seed: int
) -> CheckResult | None:
    at_call = run_ordering(spec, ordering)
    steps = step_of(model, at_call)
    x = random_images(2, shape, k, seed + 7).requires_grad_(True)
    params = model.params(x, condition(model, 2, seed), at_call).reshape(2, -1, model.likelihood.params_per_dim)
    if not torch.isfinite(params).all():
        return CheckResult("autoregressive", False, "forward returned NaN or infinite parameters")
    weights = torch.linspace(0.5, 1.5, params.shape[-1])
    sees_anything = False
    for d in range(params.shape[1]):
        (grad,) = torch.autograd.grad((params[:, d] * weights).sum(), x, retain_graph=True, allow_unused=True)
        if grad is None:
            continue
        if not torch.isfinite(grad).all():
            return CheckResult(
                "autoregressive", False,
                f"the gradient of the parameters of {describe_dim(d, shape)} is NaN or infinite: its "
                "dependencies cannot be measured",
            )
        deps = np.flatnonzero(grad.abs().sum(0).reshape(-1).numpy() > 0)
        sees_anything = sees_anything or deps.size > 0
        bad = deps[steps[deps] >= steps[d]]
        if bad.size:
            j = int(bad[0])
            return CheckResult(
                "autoregressive",
                False,
                f"{describe_dim(d, shape)} sees {describe_dim(j, shape)}, which is not before it "
                f"(ordering {ordering_name(model, ordering)!r}: step {steps[d]} sees step {steps[j]})",
                {"dim": d, "sees": j, "ordering": None if ordering is None else ordering.to_dict()},
            )
    if int(np.prod(shape)) > 1 and not sees_anything:
        return CheckResult("autoregressive", False, "no conditional depends on any input: the model ignores x")
    return None


def check_autoregressive_real_size(
    spec: ModelSpec, shape: Shape, k: int, hparams: dict | None = None, seed: int = 0
) -> CheckResult:
    """By perturbation at the image size of the model's data, under one ordering (a random one where the
    model takes orderings); ``shape`` is the small instance, which this check skips where it is as big."""
    name = "autoregressive-real-size"
    real = real_shape(spec)
    if real is None or int(np.prod(real)) <= int(np.prod(shape)):
        return CheckResult(name, True, f"the kit's instance ({size(shape)}) is the model's real size, checked exactly")
    ordering = None if spec.orderings == "fixed" else random(real[1], real[2], seed + 5)
    model = build(spec, real, k, ordering, hparams, seed)
    leaks = _perturbation_leaks(model, run_ordering(spec, ordering), real, k, seed)
    where = f"at {size(real)} (ordering {ordering_name(model, ordering)!r})"
    if leaks.non_finite:
        return CheckResult(name, False, f"the conditionals {where} are NaN or infinite")
    if leaks.first is not None:
        d, f = leaks.first
        steps = leaks.steps
        return CheckResult(
            name,
            False,
            f"{describe_dim(d, real)} sees {describe_dim(f, real)}, which is not before it, {where}: changing "
            f"{describe_dim(f, real)} changed its conditional by {leaks.change:.1e} (step {steps[d]} sees step "
            f"{steps[f]}; {leaks.count} such pair(s) in all)",
            {"dim": d, "sees": f, "shape": list(real), "pairs": leaks.count, "change": leaks.change},
        )
    if not leaks.sees_anything:
        return CheckResult(name, False, f"no conditional {where} depends on any input: the model ignores x")
    return CheckResult(
        name, True,
        f"changing each of the {leaks.dims} dimensions {where}, one at a time in one batch, changes no conditional "
        "at or before it",
        {"largest_change": leaks.noise, "identical_copies_differ_by": leaks.null},
    )


class _Leaks:
    """What the perturbation batch found: the first (dim, changed dim) pair that leaks, and counts."""

    def __init__(self, steps: np.ndarray) -> None:
        self.steps = steps
        self.dims = steps.size
        self.first: tuple[int, int] | None = None
        self.change = 0.0
        self.count = 0
        self.noise = 0.0  # the largest change let through, at or before the changed dimension
        self.null = 0.0  # the largest difference between two identical copies in one batch
        self.sees_anything = False
        self.non_finite = False

    def add(self, changed: np.ndarray, diff: torch.Tensor, null: float) -> None:
        """``changed`` ``(b,)``: the dimension changed in each copy; ``diff`` ``(b, D)``: how far each
        dimension's conditional moved; ``null``: how far it moved between two identical copies."""
        self.null = max(self.null, null)
        steps = torch.as_tensor(self.steps)
        allowed = steps[None, :] <= steps[torch.as_tensor(changed)][:, None]  # not after the changed one
        moved = diff > max(PERTURBATION_TOLERANCE, 10 * null)
        self.sees_anything = self.sees_anything or bool((moved & ~allowed).any())
        self.noise = max(self.noise, float(torch.where(allowed & ~moved, diff, 0).max()))
        bad = (moved & allowed).nonzero()
        self.count += int(bad.shape[0])
        for i, d in bad.tolist():
            pair = (d, int(changed[i]))
            if self.first is None or pair < self.first:
                self.first, self.change = pair, float(diff[i, d])


def _perturbation_leaks(model: ARModel, ordering: Ordering | None, shape: Shape, k: int, seed: int) -> _Leaks:
    leaks = _Leaks(step_of(model, ordering))
    x = random_images(1, shape, k, seed + 11)
    cond = condition(model, 1, seed)
    flat = x.reshape(-1)
    shift = max(1, k // 2)  # a binary pixel flips; a K-valued one moves halfway round
    per_chunk = CHUNK - 2
    with torch.no_grad():
        for start in range(0, leaks.dims, per_chunk):
            changed = np.arange(start, min(start + per_chunk, leaks.dims))
            b = changed.size + 2
            batch = flat.repeat(b, 1)  # the first and last rows: the image itself, in the same batch
            index = torch.as_tensor(changed)
            batch[torch.arange(1, b - 1), index] = (flat[index] + shift) % k
            probs = model.conditionals(batch.reshape(-1, *shape), expand(cond, b), ordering)
            probs = probs.reshape(b, leaks.dims, -1).double()
            if not torch.isfinite(probs).all():
                leaks.non_finite = True
                return leaks
            null = float((probs[-1] - probs[0]).abs().max())
            leaks.add(changed, (probs[1:-1] - probs[:1]).abs().amax(-1), null)
    return leaks
