"""The samplers agree with the model: step by step, image by image, and in frequency.

For every sampler mode: the conditionals it gives at each step equal the model's conditionals of the
finished image; the exact modes draw the very images of ``naive`` for the same seed; the model's own
sampler (mode ``own``, which draws with its own random numbers) draws the same images for the same seed
twice. On an instance small enough to enumerate, the sample frequencies of every dimension's values match
the exact marginals, and their mean log-likelihood under the model matches its exact expectation (minus the
entropy), for the exact modes (through ``auto``) and for ``own``.
"""

from __future__ import annotations

import numpy as np
import torch

from app.core.model import OWN_SAMPLER_MODE, ARModel, ModelSpec
from app.core.orderings import Ordering
from app.core.sampling import SamplingRun, prepare_run, resolve_mode, sample
from app.testing.instances import (
    Shape,
    all_images,
    build,
    condition,
    describe_dim,
    expand,
    norm_shape,
    orderings_for,
    run_ordering,
    within,
)
from app.testing.report import CheckResult

#: Largest difference, in probability, between a sampler's step conditional and the model's.
STEP_TOLERANCE = 1e-4
#: Sample frequencies may differ from the exact marginals by this many standard errors.
FREQUENCY_Z = 5.0


def check_sampler(
    spec: ModelSpec, shape: Shape, k: int, hparams: dict | None = None, seed: int = 0, n: int = 4,
    frequency_samples: int = 3000,
) -> CheckResult:
    """Every sampler mode, under up to two orderings, then sample frequencies against the exact marginals."""
    modes = ("naive", *spec.sampler_modes)
    for ordering in orderings_for(spec, shape[1], shape[2])[:2]:
        model = build(spec, shape, k, ordering, hparams, seed)
        failure = _modes_agree(model, modes, run_ordering(spec, ordering), n, seed)
        if failure is not None:
            return failure
    small = norm_shape(spec, shape, k)
    model = build(spec, small, k, None, hparams, seed)
    z_by_mode = {}
    fit = _fit(model, "auto", frequency_samples, seed)
    z_by_mode["auto"] = fit.z
    failure = _misfit(fit, _label(model, "auto"), small)
    if failure is not None:
        return failure
    if OWN_SAMPLER_MODE in spec.sampler_modes:
        # The own sampler cannot be compared draw by draw, and a freshly built model is nearly uniform, where
        # another distribution hardly shows: fit it to a few patterns first, so that it is far from uniform.
        fit = _fit(_fitted_to_patterns(model, seed), OWN_SAMPLER_MODE, frequency_samples, seed)
        z_by_mode[OWN_SAMPLER_MODE] = fit.z
        failure = _misfit(fit, OWN_SAMPLER_MODE, small, " (on the instance fitted to four patterns)")
        if failure is not None:
            return failure
    exact = [m for m in modes if m != OWN_SAMPLER_MODE]
    same = [f"{' = '.join(exact)} draw the same images"] if len(exact) > 1 else []
    if OWN_SAMPLER_MODE in modes:
        same.append("own draws the same images for a seed")
    zs = ", ".join(f"{z:.1f} s.e. ({_label(model, m)})" for m, z in z_by_mode.items())
    return CheckResult(
        "sampler", True,
        f"step conditionals match the model{' (' + '; '.join(same) + ')' if same else ''}; samples fit the exact "
        f"distribution of {small} within {zs}",
        {f"z_{m}": z for m, z in z_by_mode.items()},
    )


def _misfit(fit: _Fit, label: str, small: Shape, context: str = "") -> CheckResult | None:
    if not within(fit.marginal_z, FREQUENCY_Z):
        where = f", worst at {describe_dim(fit.worst_dim, small)}" if fit.worst_dim is not None else ""
        return CheckResult(
            "sampler", False,
            f"the {label} sampler's frequencies differ from the exact marginals by {fit.marginal_z:.1f} "
            f"standard errors{where}{context}",
            {"z": fit.marginal_z},
        )
    if not within(fit.ll_z, FREQUENCY_Z):
        return CheckResult(
            "sampler", False,
            f"the {label} sampler draws from another distribution than the model's conditionals: its images "
            f"of shape {small} have a mean log-likelihood of {fit.mean_ll:.3f} nats under the model, where "
            f"the model's own samples have {fit.expected_ll:.3f} ± {fit.ll_se:.3f} ({fit.ll_z:.1f} standard "
            f"errors){context}",
            {"z": fit.ll_z},
        )
    return None


def _label(model: ARModel, mode: str) -> str:
    return resolve_mode(model, mode)


def _run(model: ARModel, mode: str, n: int, seed: int, ordering: Ordering | None, cond) -> tuple[SamplingRun, list]:
    """Sample step by step: the run, and each step's (dims, probabilities)."""
    run = prepare_run(model, n, seed=seed, ordering=ordering, cond=cond, mode=mode)
    steps = []
    with torch.no_grad():
        for i in range(run.total):
            probs, _, _, _ = run.step(i)
            steps.append((run.sampler.plan[i], probs.double()))
    return run, steps


def _modes_agree(model: ARModel, modes: tuple[str, ...], ordering: Ordering | None, n: int, seed: int) -> CheckResult | None:
    cond = condition(model, n, seed)
    reference = None
    for mode in modes:
        run, steps = _run(model, mode, n, seed, ordering, cond)
        final = run.canvas.clone()
        with torch.no_grad():
            logc = model.log_conditionals(final, cond, ordering).reshape(n, -1, model.num_values).exp().double()
        for index, (dims, p) in enumerate(steps):
            worst = float((p - logc[:, torch.as_tensor(dims)]).abs().max())
            if not within(worst, STEP_TOLERANCE):
                return CheckResult(
                    "sampler", False,
                    f"the {mode} sampler's conditionals differ from the model's by {worst:.2e}, first at step "
                    f"{index} ({describe_dim(int(dims[0]), model.shape)})",
                    {"mode": mode, "step": index, "difference": worst},
                )
        if mode == OWN_SAMPLER_MODE:
            again, _ = _run(model, mode, n, seed, ordering, cond)
            if not torch.equal(again.canvas, final):
                return CheckResult(
                    "sampler", False,
                    "the own sampler drew other images for the same seed: it must draw from torch's global "
                    "generator, which the run seeds",
                    {"mode": mode},
                )
            continue
        if reference is None:
            reference = (final, run.sampler.plan)
            continue
        step = _first_different_step(reference[0], final, reference[1])
        if step is not None:
            dims = reference[1][step]
            return CheckResult(
                "sampler", False,
                f"the {mode} sampler drew other images than naive for the same seed, first at step {step} "
                f"({describe_dim(int(dims[0]), model.shape)})",
                {"mode": mode, "step": step},
            )
    return None


def _first_different_step(a: torch.Tensor, b: torch.Tensor, plan: list[np.ndarray]) -> int | None:
    differs = (a != b).reshape(a.shape[0], -1).any(0).cpu().numpy()
    for index, dims in enumerate(plan):
        if differs[dims].any():
            return index
    return None


class _Fit:
    """How well samples fit the model on an enumerable instance: the marginal frequencies (the largest
    |empirical - exact| / s.e. over dimensions and values, and where) and the mean log-likelihood of the
    samples against its exact expectation, -H(p) (which sees the joint: a sampler with the right marginals
    and the wrong dependencies, or another ordering, moves it by the KL divergence)."""

    def __init__(self, marginal_z: float, worst_dim: int | None, mean_ll: float, expected_ll: float, ll_se: float):
        self.marginal_z = marginal_z
        self.worst_dim = worst_dim
        self.mean_ll = mean_ll
        self.expected_ll = expected_ll
        self.ll_se = ll_se
        self.ll_z = abs(mean_ll - expected_ll) / max(ll_se, 1e-3)

    @property
    def z(self) -> float:
        return max(self.marginal_z, self.ll_z)


#: Steps of Adam that fit the own sampler's instance to the patterns.
PATTERN_STEPS = 150


def patterns(shape: Shape, k: int) -> torch.Tensor:
    """Four images with strong dependencies between dimensions: a checkerboard and its complement (every
    pixel given by the first), the top half and the bottom-right quadrant (marginals away from uniform; and
    no image of the set is the transpose or the mirror image of another, so that a sampler whose pixels land
    in the wrong places draws images the model finds unlikely)."""
    c, h, w = shape
    rows = torch.arange(h)[:, None].expand(h, w)
    cols = torch.arange(w)[None, :].expand(h, w)
    top = k - 1
    images = [
        ((rows + cols) % 2) * top,
        (1 - (rows + cols) % 2) * top,
        (rows < (h + 1) // 2).long() * top,
        ((rows >= h // 2) & (cols >= w // 2)).long() * top,
    ]
    return torch.stack([img.expand(c, h, w) for img in images]).float()


def _fitted_to_patterns(model: ARModel, seed: int) -> ARModel:
    """A copy of ``model`` trained for a few steps on :func:`patterns`, in eval mode."""
    import copy

    fitted = copy.deepcopy(model)
    data = patterns(fitted.shape, fitted.num_values).repeat(8, 1, 1, 1)
    cond = expand(condition(fitted, 1, seed), data.shape[0])
    parameters = [p for p in fitted.parameters() if p.requires_grad]
    if not parameters:
        return fitted
    optimizer = torch.optim.Adam(parameters, lr=3e-2)
    fitted.train()
    for _ in range(PATTERN_STEPS):
        loss = fitted.loss(data, cond)
        if not (loss.requires_grad and bool(torch.isfinite(loss))):
            break
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return fitted.eval()


def _fit(model: ARModel, mode: str, samples: int, seed: int) -> _Fit:
    small = model.shape
    k = model.num_values
    cond = condition(model, 1, seed)
    images = all_images(small, k)
    with torch.no_grad():
        logp = model.log_prob(images, expand(cond, images.shape[0])).flatten(1).sum(1).double()
        p = logp.exp()
        flat = images.reshape(images.shape[0], -1).long()
        exact = torch.stack([(p[:, None] * (flat == v)).sum(0) for v in range(k)], -1)  # (D, K)
        drawn = sample(model, samples, seed=seed + 1, cond=expand(cond, samples), mode=mode)
    drawn = drawn.reshape(samples, -1).cpu()
    empirical = torch.stack([(drawn == v).double().mean(0) for v in range(k)], -1)
    se = torch.sqrt(exact * (1 - exact) / samples).clamp(min=1e-3)
    z = (empirical - exact).abs() / se
    # Each drawn image's index among the enumerated ones (itertools.product order: the last dimension fastest).
    weights = torch.tensor([k**e for e in range(flat.shape[1] - 1, -1, -1)], dtype=torch.long)
    drawn_ll = logp[(drawn.long() * weights).sum(1)]
    finite = torch.isfinite(logp)
    expected = float((p[finite] * logp[finite]).sum())
    variance = float((p[finite] * (logp[finite] - expected) ** 2).sum())
    if not (torch.isfinite(z).all() and finite.all()):
        return _Fit(float("nan"), None, float("nan"), expected, 0.0)
    return _Fit(float(z.max()), int(z.amax(-1).argmax()), float(drawn_ll.mean()), expected, (variance / samples) ** 0.5)
