"""Sampling: incremental samplers and a Qt-free generator of steps for live views.

A :class:`Sampler` walks a model's sampling plan (groups of dimensions). At each step it gives the K-way
conditionals of the next group given the canvas, and takes the values drawn for it. :class:`NaiveSampler`
re-runs the whole network at every step and works for every model; models may provide faster samplers
(cached activations, KV caches) that must give the same conditionals. :class:`OwnSampler` offers a model's own
whole-image sampler (``ARModel.own_sample``) as the mode ``"own"``: it draws with its own random numbers, so
it does not draw naive's images for a seed, only from the same distribution.

Random numbers are drawn once, one uniform per dimension, from a CPU generator seeded by ``seed``; a value is
drawn from its conditional by the inverse CDF. The same seed therefore gives the same images on any device,
with any sampler and any grouping, as long as the conditionals agree.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from app.core.errors import ARExplorerError, ModelError
from app.core.likelihoods import apply_temperature
from app.core.model import OWN_SAMPLER_MODE, ARModel
from app.core.orderings import Ordering, known_first

# The sampler classes and the draw live below the model; plugins import them from here, as they always have.
from app.core.samplers import NaiveSampler, OwnSampler, Sampler, draw, draw_dtype  # noqa: F401


def _guarded(model: ARModel, when: str, call):
    """Run a sampler's own code (a plugin's); turn what it raises into a :class:`ModelError`."""
    try:
        return call()
    except (ARExplorerError, torch.OutOfMemoryError):
        raise
    except Exception as exc:  # a plugin's sampler may raise anything
        if "out of memory" in str(exc).lower():
            raise
        raise ModelError(f"{model.spec.title}'s sampler failed {when}: {type(exc).__name__}: {exc}") from exc


@dataclass
class SampleStep:
    """One step of a sampling run, as plain numpy data for a view.

    ``probs`` are the model's conditionals ``(B, G, K)`` of the dimensions ``dims`` (positions ``(c, row,
    col)`` in ``positions``); ``tempered`` what was actually sampled from after the temperature;
    ``values`` ``(B, G)`` the values drawn; ``image`` ``(B, C, H, W)`` the canvas after the step.
    """

    index: int
    total: int
    dims: np.ndarray
    positions: np.ndarray
    probs: np.ndarray
    tempered: np.ndarray
    values: np.ndarray
    image: np.ndarray
    known: bool
    network_calls: int
    elapsed_s: float

    @property
    def done(self) -> bool:
        return self.index == self.total - 1


def resolve_mode(model: ARModel, mode: str) -> str:
    """``auto`` is the model's first sampler mode that draws naive's images for a seed (never ``own``),
    else ``naive``; any other mode is returned as given."""
    if mode == "auto":
        exact = [m for m in model.spec.sampler_modes if m != OWN_SAMPLER_MODE]
        return exact[0] if exact else "naive"
    return mode


def _uniforms(n: int, num_dims: int, seed: int, device: torch.device) -> Tensor:
    generator = torch.Generator().manual_seed(int(seed))
    # Drawn in float64 on the CPU whatever the device, so that a seed means the same images everywhere.
    return torch.rand(n, num_dims, generator=generator, dtype=torch.float64).to(device, draw_dtype(device))


@dataclass
class SamplingRun:
    """A prepared sampling run: the sampler, its random numbers, and what is known in advance."""

    model: ARModel
    sampler: Sampler
    uniforms: Tensor
    temperature: float
    known: Tensor | None  # (D,) bool over flat dimensions
    known_values: Tensor | None  # (B, D)
    check_each_step: bool = True  # False: check for NaN once at the end (no per-step host synchronisation)
    _dims: list[Tensor] | None = None
    _bad: Tensor | None = None

    @property
    def total(self) -> int:
        return len(self.sampler.plan)

    @property
    def canvas(self) -> Tensor:
        return self.sampler.x

    def step(self, index: int) -> tuple[Tensor, Tensor, Tensor, bool]:
        """Run step ``index``: returns (probs, tempered probs, values, whether all of it was known)."""
        if self._dims is None:  # the plan's index tensors, on the device once rather than at every step
            self._dims = [torch.as_tensor(p, device=self.uniforms.device) for p in self.sampler.plan]
        dims = self._dims[index]
        if self.known is not None and bool(self.known[dims].all()):
            values = self.known_values[:, dims]
            k = self.model.num_values
            one_hot = torch.nn.functional.one_hot(values.long(), k).to(torch.float32)
            self.sampler.commit(index, values)
            return one_hot, one_hot, values, True
        probs = _guarded(self.model, f"at step {index}", lambda: self.sampler.probs(index))
        expected = (self.canvas.shape[0], len(dims), self.model.num_values)
        if not isinstance(probs, Tensor) or tuple(probs.shape) != expected:
            got = tuple(probs.shape) if isinstance(probs, Tensor) else type(probs).__name__
            raise ModelError(f"{self.model.spec.title}'s sampler gave probabilities of shape {got} at step {index}, expected {expected}")
        if self.check_each_step:
            if not torch.isfinite(probs).all():
                raise ModelError(f"{self.model.spec.title} returned NaN or infinite probabilities at step {index}")
        else:
            bad = ~torch.isfinite(probs).all()
            self._bad = bad if self._bad is None else self._bad | bad
        if self.sampler.draws_itself:  # the model's own sampler drew the values already
            values = self.sampler.drawn_values(index)
            self.sampler.commit(index, values)
            return probs, probs, values, False
        tempered = apply_temperature(probs, self.temperature)
        values = draw(tempered.to(self.uniforms.dtype), self.uniforms[:, dims])
        if self.known is not None:
            mask = self.known[dims]
            values = torch.where(mask.unsqueeze(0), self.known_values[:, dims].long(), values)
        self.sampler.commit(index, values)
        return probs, tempered, values, False


def prepare_run(
    model: ARModel,
    n: int = 16,
    *,
    temperature: float = 1.0,
    seed: int = 0,
    ordering: Ordering | None = None,
    cond: Tensor | None = None,
    mode: str = "auto",
    init: Tensor | None = None,
    known: np.ndarray | Tensor | None = None,
) -> SamplingRun:
    """Set up a sampling run of ``n`` images on the model's device.

    ``init`` ``(n or 1, C, H, W)`` and ``known`` (a boolean mask ``(H, W)`` or ``(C, H, W)``) turn it into
    completion: the known dimensions keep their values, the rest are sampled. For a model that takes any
    ordering, the known positions are moved to the front of the ordering so that everything sampled is
    conditioned on all of them.
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    if temperature < 0:
        raise ValueError("the temperature must be >= 0")
    device = model.device
    c, h, w = model.shape
    known_t = known_values = None
    if known is not None:
        known_np = np.asarray(known.cpu() if isinstance(known, Tensor) else known, dtype=bool)
        if known_np.shape == (h, w):
            known_np = np.broadcast_to(known_np, (c, h, w))
        if known_np.shape != (c, h, w):
            raise ValueError(f"the known mask must be {h}x{w}, not {'x'.join(map(str, known_np.shape))}")
        if init is None:
            raise ValueError("completion needs the image whose known pixels to keep")
        if model.capability == "any":
            ordering = known_first(model.resolve_ordering(ordering), known_np.any(axis=0))
        known_t = torch.as_tensor(known_np.reshape(-1).copy(), device=device)
    x = torch.zeros(n, c, h, w, device=device, dtype=model._dtype())
    if init is not None:
        init = init.to(device=device, dtype=x.dtype)
        if init.shape[1:] != x.shape[1:]:
            raise ValueError(f"the image is {tuple(init.shape[1:])}, the model expects {tuple(x.shape[1:])}")
        x[:] = init.expand(n, -1, -1, -1) if init.shape[0] == 1 else init
        if known_t is not None:
            known_values = x.reshape(n, -1).clone()
            x.reshape(n, -1)[:, ~known_t] = 0
    if cond is not None:
        cond = cond.to(device)
        if cond.shape[0] == 1 and n > 1:
            cond = cond.expand(n, *cond.shape[1:])
    sampler = model.make_sampler(x, cond, ordering, resolve_mode(model, mode))
    if sampler.draws_itself:
        _start_own(model, sampler, seed, temperature, known_t)
    return SamplingRun(model, sampler, _uniforms(n, c * h * w, seed, device), temperature, known_t, known_values)


def _start_own(model: ARModel, sampler: Sampler, seed: int, temperature: float, known: Tensor | None) -> None:
    """Refuse what a model's own sampler cannot do, then let it draw its images."""
    if temperature != 1.0:
        raise ModelError(f"{model.spec.title}'s own sampler draws at temperature 1 only (asked for {temperature:g})")
    if known is not None:
        raise ModelError(f"{model.spec.title}'s own sampler cannot complete an image: use the naive sampler")
    _guarded(model, "drawing its images", lambda: sampler.start(seed))


def sample_steps(model: ARModel, n: int = 16, *, every: int = 1, **kwargs) -> Iterator[SampleStep]:
    """Yield a :class:`SampleStep` every ``every`` steps (and at the last), as plain numpy data.

    This is the loop behind the live view. It holds no lock and no Qt object: a worker thread iterates it,
    checks for pause or stop between steps, and hands the latest step to the view. Autograd is off in each
    step (``no_grad`` is thread-local, so it is entered here, in the thread that runs the loop).
    """
    run = prepare_run(model, n, **kwargs)
    c, h, w = model.shape
    start = time.perf_counter()
    for index in range(run.total):
        with torch.no_grad():
            probs, tempered, values, known = run.step(index)
        if (index + 1) % every and index != run.total - 1:
            continue
        dims = run.sampler.plan[index]
        positions = np.stack([dims // (h * w), (dims % (h * w)) // w, dims % w], axis=1)
        yield SampleStep(
            index=index,
            total=run.total,
            dims=dims,
            positions=positions,
            probs=probs.float().cpu().numpy(),
            tempered=tempered.float().cpu().numpy(),
            values=values.cpu().numpy().astype(np.int64),
            image=run.canvas.detach().cpu().numpy().round().astype(np.uint8),
            known=known,
            network_calls=run.sampler.network_calls,
            elapsed_s=time.perf_counter() - start,
        )


def sample(model: ARModel, n: int = 16, **kwargs) -> Tensor:
    """Sample ``n`` images to the end, with no per-step copies to the host: ``(n, C, H, W)`` long on the
    model's device. Takes the keyword arguments of :func:`prepare_run`.

    A sampler that has ``sample_to_end(uniforms, temperature, known, known_values)`` runs the loop itself
    (it must draw exactly what the step-by-step loop would draw).
    """
    run = prepare_run(model, n, **kwargs)
    with torch.no_grad():
        # A sampler may run the whole loop itself (on the device, without per-step host synchronisation).
        to_end = getattr(run.sampler, "sample_to_end", None)
        if to_end is not None:
            _guarded(model, "sampling to the end", lambda: to_end(run.uniforms, run.temperature, run.known, run.known_values))
            canvas = run.canvas
            if not (torch.isfinite(canvas).all() and canvas.min() >= 0 and canvas.max() <= model.num_values - 1):
                raise ModelError(f"{model.spec.title}'s sampler drew values outside 0..{model.num_values - 1}")
        else:
            run.check_each_step = False
            for index in range(run.total):
                run.step(index)
            if run._bad is not None and bool(run._bad):
                raise ModelError(f"{model.spec.title} returned NaN or infinite probabilities while sampling")
    return run.canvas.round().long()
