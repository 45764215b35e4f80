"""A model that declares a cache program (:meth:`ARModel.cache_program`) is held to it.

The cached engine trusts the program: it never calls ``forward``. So the check makes sure that the program
is one the engine runs (:meth:`CacheProgram.validate <app.core.cache_program.CacheProgram.validate>`), that
evaluated over whole images it gives ``forward``'s parameters, and that the sampler mode ``cached`` then
draws naive's images for the same seed without a single forward pass. A model with no program passes once
its forward gives finite parameters: it has nothing else to be held to.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from app.core.cache_program import CacheProgram
from app.core.cached_sampling import CachedSampler
from app.core.errors import ModelError
from app.core.model import ARModel, ModelSpec
from app.core.sampling import prepare_run, sample
from app.testing.instances import Shape, build, condition, describe_dim, random_images, within
from app.testing.report import CheckResult

NAME = "cache-program"
#: Largest difference between the program's parameters and ``forward``'s, relative to their scale.
PARAMS_TOLERANCE = 1e-5


def check_cache_program(
    spec: ModelSpec, shape: Shape, k: int, hparams: dict | None = None, seed: int = 0, n: int = 3
) -> CheckResult:
    """The declared program is runnable, is the forward pass, and samples naive's images, forward-free."""
    model = build(spec, shape, k, None, hparams, seed)
    cond = condition(model, n, seed)
    x = random_images(n, model.shape, k, seed).to(model.device, model._dtype())
    with torch.no_grad():
        params = model.params(x, cond)  # what a program is compared with; a broken forward fails here
    if not torch.isfinite(params).all():
        return CheckResult(NAME, False, "forward gave NaN or infinite parameters: there is nothing to hold a "
                                        "cache program to")
    program = model.cache_program()
    if program is None:
        return CheckResult(NAME, True, "declares no cache program: nothing to check")
    if not isinstance(program, CacheProgram):
        return CheckResult(NAME, False, f"cache_program() returned a {type(program).__name__}, not a CacheProgram")
    if "cached" not in spec.sampler_modes:
        return CheckResult(NAME, False, "declares a cache program but does not list 'cached' in sampler_modes, "
                                        "so no view or command offers it")
    try:
        program.validate(model.shape[0], model.likelihood.params_per_dim)
    except ModelError as exc:
        return CheckResult(NAME, False, str(exc))
    difference = _program_difference(model, program, x, params, cond)
    if not within(difference, PARAMS_TOLERANCE):
        return CheckResult(NAME, False, f"the cache program's parameters differ from forward's by {difference:.2e} "
                                        "(relative): the program is not the forward pass",
                           {"difference": difference})
    for run_seed in (seed, seed + 1):
        failure = _samples_agree(model, n, run_seed, cond)
        if failure is not None:
            return failure
    return CheckResult(NAME, True, f"the program is forward's ({difference:.1e} relative) and the cached sampler "
                                   f"draws naive's images with no forward pass ({len(program.ops)} operations)",
                       {"difference": difference})


def _program_difference(
    model: ARModel, program: CacheProgram, x: Tensor, params: Tensor, cond: Tensor | None
) -> float:
    """Largest difference between ``forward``'s ``params`` and the program's, over their largest magnitude."""
    with torch.no_grad():
        b, c, h, w = x.shape
        out = program.evaluate(model.normalize(x), cond)
        declared = out.reshape(b, c, -1, h, w).permute(0, 1, 3, 4, 2)
        if declared.shape != params.shape:
            return float("inf")
        return float((params - declared).abs().max() / (params.abs().max() + 1.0))


def _samples_agree(model: ARModel, n: int, seed: int, cond: Tensor | None) -> CheckResult | None:
    naive = sample(model, n, seed=seed, cond=cond, mode="naive")
    sampler = prepare_run(model, n, seed=seed, cond=cond, mode="cached").sampler
    if not isinstance(sampler, CachedSampler):
        return CheckResult(NAME, False, f"mode 'cached' gave a {type(sampler).__name__}, not the cached engine's "
                                        "sampler: does make_sampler handle 'cached' itself?")
    calls = _ForwardCounter(model)
    with calls:
        cached = sample(model, n, seed=seed, cond=cond, mode="cached")
    if calls.count:
        return CheckResult(NAME, False, f"the cached sampler called forward {calls.count} times: it should run the "
                                        "program alone", {"forward_calls": calls.count})
    if not torch.equal(naive, cached):
        flat = (naive != cached).reshape(n, -1).any(0)
        first = int(flat.nonzero()[0])
        return CheckResult(NAME, False, f"the cached sampler drew other images than naive for seed {seed}, first at "
                                        f"{describe_dim(first, model.shape)}", {"seed": seed, "dim": first})
    return None


class _ForwardCounter:
    """Counts the model's forward passes while entered (a forward pre-hook)."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.count = 0

    def __enter__(self) -> _ForwardCounter:
        self._handle = self.model.register_forward_pre_hook(self._seen)
        return self

    def __exit__(self, *exc) -> None:
        self._handle.remove()

    def _seen(self, module: nn.Module, args) -> None:
        self.count += 1
