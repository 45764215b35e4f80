"""The conformance kit: checks that any model plugin keeps the model contract.

Run it on a :class:`~app.core.model.ModelSpec`::

    from app.testing import check_model
    report = check_model(MY_SPEC)
    print(report)            # one line per check, with what was wrong and under which ordering
    assert report.passed

or from the shell: ``ar-explorer check MODEL_NAME``. Checks, each on a tiny instance built from the spec's
``tiny_hparams``:

``autoregressive``
    The gradient of every dimension's head parameters with respect to the input is exactly zero at every
    dimension that is not sampled before it (by the model's sampling plan), under several orderings where the
    model supports them. A mask bug shows as "position 17 (row 3, col 2) sees position 18 ...".
``normalization``
    Every conditional sums to 1, and on an instance small enough to enumerate (all K^D images) the
    probabilities of all images sum to 1.
``sampler``
    Each sampler's step-by-step conditionals equal the model's conditionals of the finished image; samplers
    other than ``naive`` give the very same images for the same seed; sample frequencies of every dimension's
    values match the exact marginals (within 5 standard errors).
``roundtrip``
    Save to safetensors + JSON and load back: identical log-probabilities.
"""

from __future__ import annotations

import itertools
import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from app.core.conditions import derive_condition
from app.core.errors import ARExplorerError
from app.core.model import ARModel, ModelSpec
from app.core.orderings import Ordering, random, raster, zigzag
from app.core.sampling import prepare_run, sample

ALL_CHECKS = ("autoregressive", "normalization", "sampler", "roundtrip")


@dataclass
class CheckResult:
    name: str
    passed: bool
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"[{'PASS' if self.passed else 'FAIL'}] {self.name}: {self.message}"


@dataclass
class ConformanceReport:
    model: str
    results: list[CheckResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed]

    def __str__(self) -> str:
        head = f"conformance of {self.model}: {'all checks passed' if self.passed else f'{len(self.failures)} check(s) failed'}"
        return "\n".join([head, *(f"  {r}" for r in self.results)])


def _kit_setting(spec: ModelSpec, key: str, default: Any) -> Any:
    return spec.tiny_hparams.get(f"kit_{key}", default)


def default_shape(spec: ModelSpec) -> tuple[tuple[int, int, int], int]:
    """The shape and number of values of the instance the kit checks."""
    shape = _kit_setting(spec, "shape", None)
    k = _kit_setting(spec, "num_values", None)
    kinds = spec.data_kinds
    if k is None:
        k = 2 if "binary" in kinds else 4
    if shape is None:
        c = 3 if kinds == ("colour",) else 1
        shape = (c, 5, 5) if c == 1 else (c, 3, 3)
    return tuple(shape), int(k)  # type: ignore[return-value]


def norm_shape(spec: ModelSpec, shape: tuple[int, int, int], k: int) -> tuple[int, int, int]:
    """The largest small shape whose K^D images can be enumerated (at most 2^16)."""
    explicit = _kit_setting(spec, "norm_shape", None)
    if explicit is not None:
        return tuple(explicit)  # type: ignore[return-value]
    c = shape[0]
    for h, w in ((4, 4), (3, 4), (3, 3), (2, 3), (2, 2), (1, 2), (1, 1)):
        if h <= shape[1] and w <= shape[2] and k ** (c * h * w) <= 2**16:
            return (c, h, w)
    return (c, 1, 1)


def _orderings_for(spec: ModelSpec, h: int, w: int, extra: Sequence[Ordering] = ()) -> list[Ordering | None]:
    if spec.orderings == "fixed":
        return [None]
    found: list[Ordering | None] = [raster(h, w), zigzag(h, w), random(h, w, 1), random(h, w, 2), *extra]
    return found


def _build(
    spec: ModelSpec, shape, k, ordering: Ordering | None, hparams: dict | None, seed: int, perturb: bool = True
) -> ARModel:
    torch.manual_seed(seed)
    config = spec.make_config(shape, k, hparams, ordering if spec.orderings == "build" else None, tiny=True)
    model = spec.create(config)
    if perturb:
        # Parameters initialised at zero (gates, class biases, a plain FVSBN) would hide a leak from the
        # gradient test; a small random nudge makes every connection that exists carry a gradient.
        generator = torch.Generator().manual_seed(seed + 99)
        with torch.no_grad():
            for p in model.parameters():
                if p.is_floating_point():
                    p.add_(0.05 * torch.randn(p.shape, generator=generator, dtype=p.dtype))
    model.eval()
    return model


def _condition(model: ARModel, n: int, seed: int) -> torch.Tensor | None:
    spec = model.config.condition
    if spec is None:
        return None
    g = torch.Generator().manual_seed(seed)
    if spec.kind == "class":
        return torch.randint(0, spec.num_classes, (n,), generator=g)
    if spec.derive in ("downsample", "grey"):
        images = torch.randint(0, model.num_values, (n, *model.shape), generator=g).float()
        return derive_condition(spec, images, None, model.num_values)
    return torch.randint(0, max(spec.num_values, 2), (n, *spec.shape), generator=g).float()


def _describe_dim(d: int, shape: tuple[int, int, int]) -> str:
    c, h, w = shape
    ch, rem = divmod(d, h * w)
    r, col = divmod(rem, w)
    where = f"row {r}, col {col}" + (f", channel {ch}" if c > 1 else "")
    return f"position {rem if c == 1 else d} ({where})"


def check_autoregressive(spec, shape, k, hparams=None, orderings=None, seed=0) -> CheckResult:
    checked = 0
    for ordering in orderings or _orderings_for(spec, shape[1], shape[2]):
        model = _build(spec, shape, k, ordering, hparams, seed)
        run_ordering = ordering if spec.orderings == "any" else None
        plan = model.sampling_plan(run_ordering)
        group_of = np.empty(int(np.prod(shape)), dtype=np.int64)
        for g, dims in enumerate(plan):
            group_of[dims] = g
        gen = torch.Generator().manual_seed(seed + 7)
        x = torch.randint(0, k, (2, *shape), generator=gen).float().requires_grad_(True)
        cond = _condition(model, 2, seed)
        params = model.params(x, cond, run_ordering).reshape(2, -1, model.likelihood.params_per_dim)
        weights = torch.linspace(0.5, 1.5, params.shape[-1])
        sees_anything = False
        for d in range(params.shape[1]):
            (grad,) = torch.autograd.grad((params[:, d] * weights).sum(), x, retain_graph=True, allow_unused=True)
            if grad is None:
                continue
            deps = np.flatnonzero(grad.abs().sum(0).reshape(-1).numpy() > 0)
            sees_anything = sees_anything or deps.size > 0
            bad = deps[group_of[deps] >= group_of[d]]
            if bad.size:
                j = int(bad[0])
                name = ordering.name if ordering is not None else model.ordering.name
                return CheckResult(
                    "autoregressive",
                    False,
                    f"{_describe_dim(d, shape)} sees {_describe_dim(j, shape)}, which is not before it "
                    f"(ordering {name!r}: step {group_of[d]} sees step {group_of[j]})",
                    {"dim": d, "sees": j, "ordering": None if ordering is None else ordering.to_dict()},
                )
        if int(np.prod(shape)) > 1 and not sees_anything:
            return CheckResult("autoregressive", False, "no conditional depends on any input: the model ignores x")
        checked += 1
    return CheckResult("autoregressive", True, f"no dimension sees itself or a later one, under {checked} ordering(s)")


def check_normalization(spec, shape, k, hparams=None, seed=0) -> CheckResult:
    model = _build(spec, shape, k, None, hparams, seed)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, k, (4, *shape), generator=gen).float()
    with torch.no_grad():
        logc = model.log_conditionals(x, _condition(model, 4, seed))
    worst = float((torch.logsumexp(logc, -1)).abs().max())
    if not math.isfinite(worst) or worst > 1e-4:
        return CheckResult("normalization", False, f"a conditional does not sum to 1 (|log sum| = {worst:.2e})")
    small = norm_shape(spec, shape, k)
    model = _build(spec, small, k, None, hparams, seed)
    d = int(np.prod(small))
    images = torch.tensor(list(itertools.product(range(k), repeat=d)), dtype=torch.float32).reshape(-1, *small)
    cond = _condition(model, 1, seed)
    totals = []
    with torch.no_grad():
        for start in range(0, images.shape[0], 4096):
            xb = images[start : start + 4096]
            cb = None if cond is None else cond.expand(xb.shape[0], *cond.shape[1:])
            totals.append(model.log_prob(xb, cb).flatten(1).sum(1).double())
    log_total = float(torch.logsumexp(torch.cat(totals), 0))
    if not math.isfinite(log_total) or abs(log_total) > 1e-3:
        return CheckResult(
            "normalization", False,
            f"the probabilities of all {images.shape[0]} images of shape {small} sum to {math.exp(log_total):.6f}, not 1",
        )
    return CheckResult(
        "normalization", True,
        f"every conditional sums to 1; all {images.shape[0]} images of shape {small} sum to {math.exp(log_total):.6f}",
    )


def check_sampler(spec, shape, k, hparams=None, seed=0, n=4, frequency_samples=3000) -> CheckResult:
    messages = []
    for ordering in _orderings_for(spec, shape[1], shape[2])[:2]:
        model = _build(spec, shape, k, ordering, hparams, seed)
        run_ordering = ordering if spec.orderings == "any" else None
        cond = _condition(model, n, seed)
        reference = None
        for mode in ("naive", *spec.sampler_modes):
            run = prepare_run(model, n, seed=seed, ordering=run_ordering, cond=cond, mode=mode)
            step_probs = []
            with torch.no_grad():
                for i in range(run.total):
                    probs, _, _, _ = run.step(i)
                    step_probs.append((run.sampler.plan[i], probs.double()))
                final = run.canvas.clone()
                logc = model.log_conditionals(final, cond, run_ordering).reshape(n, -1, k).exp().double()
            worst = max(float((p - logc[:, torch.as_tensor(dims)]).abs().max()) for dims, p in step_probs)
            if worst > 1e-4:
                return CheckResult(
                    "sampler", False,
                    f"the {mode} sampler's conditionals differ from the model's by {worst:.2e}",
                )
            if reference is None:
                reference = final
            elif not torch.equal(reference, final):
                return CheckResult("sampler", False, f"the {mode} sampler drew other images than naive for the same seed")
        messages.append("naive" + "".join(f" = {m}" for m in spec.sampler_modes))
    # Frequencies against exact marginals on an enumerable instance.
    small = norm_shape(spec, shape, k)
    model = _build(spec, small, k, None, hparams, seed)
    cond = _condition(model, 1, seed)
    d = int(np.prod(small))
    images = torch.tensor(list(itertools.product(range(k), repeat=d)), dtype=torch.float32).reshape(-1, *small)
    with torch.no_grad():
        cb = None if cond is None else cond.expand(images.shape[0], *cond.shape[1:])
        p = model.log_prob(images, cb).flatten(1).sum(1).double().exp()
        flat = images.reshape(images.shape[0], -1).long()
        exact = torch.stack([(p[:, None] * (flat == v)).sum(0) for v in range(k)], -1)  # (D, K)
        drawn = sample(model, frequency_samples, seed=seed + 1, cond=None if cond is None else cond.expand(frequency_samples, *cond.shape[1:]))
    drawn = drawn.reshape(frequency_samples, -1).cpu()
    empirical = torch.stack([(drawn == v).double().mean(0) for v in range(k)], -1)
    se = torch.sqrt(exact * (1 - exact) / frequency_samples).clamp(min=1e-3)
    z = float(((empirical - exact).abs() / se).max())
    if z > 5:
        return CheckResult("sampler", False, f"sample frequencies differ from the exact marginals by {z:.1f} standard errors")
    return CheckResult("sampler", True, f"step conditionals match the model ({'; '.join(messages)}); frequencies within {z:.1f} s.e.")


def check_roundtrip(spec, shape, k, hparams=None, seed=0) -> CheckResult:
    from app.core.checkpoints import load_checkpoint, save_checkpoint
    from app.core.registry import Registry

    ordering = random(shape[1], shape[2], 3) if spec.orderings != "fixed" else None
    model = _build(spec, shape, k, ordering, hparams, seed)
    with torch.no_grad():
        for p in model.parameters():  # move away from the initialisation, so a reload that re-inits shows
            p.add_(0.01 * torch.randn_like(p))
    registry = Registry(load_entry_points=False, env={})
    registry.models[spec.name] = spec
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, k, (3, *shape), generator=gen).float()
    cond = _condition(model, 3, seed)
    run_ordering = ordering if spec.orderings == "any" else None
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
        path = Path(tmp) / "roundtrip"
        save_checkpoint(model, path, {"dataset": "none"})
        loaded, _ = load_checkpoint(path.with_suffix(".safetensors"), registry)
        before = model.log_prob(x, cond, run_ordering)
        after = loaded.log_prob(x, cond, run_ordering)
    if not torch.equal(before, after):
        diff = float((before - after).abs().max())
        return CheckResult("roundtrip", False, f"log-probabilities changed by up to {diff:.2e} after save and load")
    return CheckResult("roundtrip", True, "save → load gives identical log-probabilities")


def check_model(
    spec: ModelSpec,
    checks: Sequence[str] = ALL_CHECKS,
    shape: tuple[int, int, int] | None = None,
    num_values: int | None = None,
    hparams: dict | None = None,
    seed: int = 0,
) -> ConformanceReport:
    """Run the conformance checks on ``spec``; every failure (even an exception) becomes a failed check."""
    default, k = default_shape(spec)
    shape = tuple(shape or default)  # type: ignore[assignment]
    k = num_values or k
    report = ConformanceReport(spec.name)
    functions = {
        "autoregressive": check_autoregressive,
        "normalization": check_normalization,
        "sampler": check_sampler,
        "roundtrip": check_roundtrip,
    }
    for name in checks:
        try:
            result = functions[name](spec, shape, k, hparams=hparams, seed=seed)
        except (ARExplorerError, Exception) as exc:  # a plugin may raise anything: report it as a failure
            result = CheckResult(name, False, f"raised {type(exc).__name__}: {exc}")
        report.results.append(result)
    return report


def assert_conforms(spec: ModelSpec, **kwargs: Any) -> ConformanceReport:
    """Run :func:`check_model` and raise ``AssertionError`` with the report if any check fails."""
    report = check_model(spec, **kwargs)
    if not report.passed:
        raise AssertionError(str(report))
    return report
