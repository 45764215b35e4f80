"""The sampler interface and the two samplers every model has: the step-by-step contract of incremental
sampling (:class:`Sampler`), naive re-evaluation (:class:`NaiveSampler`) and a model's own whole-image sampler
behind that interface (:class:`OwnSampler`); and the inverse-CDF draw every sampler shares (:func:`draw`).

Below the model: :mod:`app.core.model` builds these, and the sampling loop (:mod:`app.core.sampling`) runs
them. A sampler only meets its model through the model's public methods, so nothing here imports the model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from app.core.errors import ModelError
from app.core.orderings import Ordering

if TYPE_CHECKING:
    from app.core.model import ARModel


def draw(probs: Tensor, uniforms: Tensor) -> Tensor:
    """Inverse-CDF draw: ``probs`` ``(..., K)`` and ``uniforms`` ``(...)`` in [0, 1) to values ``(...)``."""
    cdf = probs.cumsum(-1)
    cdf = cdf / cdf[..., -1:].clamp(min=1e-30)
    values = (cdf < uniforms.unsqueeze(-1)).sum(-1)
    return values.clamp_(max=probs.shape[-1] - 1)


def draw_dtype(device: torch.device) -> torch.dtype:
    """float64 for the inverse-CDF draw, except on Apple GPUs, which have no float64."""
    return torch.float32 if torch.device(device).type == "mps" else torch.float64


class Sampler:
    """Base class: walks ``plan`` (a list of groups of flat dimension indices) over the canvas ``x``.

    ``network_calls`` counts the forward passes (or cached steps) it has run, for the views' counters.
    ``draws_itself`` is True for a sampler that draws its values with its own random numbers
    (:class:`OwnSampler`) rather than from the run's uniforms.
    """

    draws_itself = False

    def __init__(self, model: ARModel, x: Tensor, cond: Tensor | None, ordering: Ordering | None) -> None:
        self.model = model
        self.x = x
        self.cond = cond
        self.ordering = model.resolve_ordering(ordering)
        self.plan = model.sampling_plan(self.ordering)
        self.network_calls = 0

    def probs(self, step: int) -> Tensor:
        """``(B, G, K)``: the conditionals of the dimensions of ``plan[step]`` given the canvas."""
        raise NotImplementedError

    def commit(self, step: int, values: Tensor) -> None:
        """Write ``values`` ``(B, G)`` for ``plan[step]`` into the canvas (and update any cache)."""
        flat = self.x.view(self.x.shape[0], -1)
        flat[:, torch.as_tensor(self.plan[step], device=self.x.device)] = values.to(self.x.dtype)


class NaiveSampler(Sampler):
    """Re-evaluates the network on the whole canvas at every step: one forward pass per step."""

    def probs(self, step: int) -> Tensor:
        params = self.model.params(self.x, self.cond, self.ordering)
        self.network_calls += 1
        b = params.shape[0]
        dims = torch.as_tensor(self.plan[step], device=params.device)
        return self.model.likelihood.probs(params.reshape(b, -1, params.shape[-1])[:, dims])


class OwnSampler(Sampler):
    """A model's own whole-image sampler (:meth:`ARModel.own_sample`) behind the step interface.

    :meth:`start` draws every image at once, from torch's global generator seeded by the run's seed (forked,
    so that the caller's random state is untouched). Each step then gives the model's conditionals of the
    drawn image at that step's dimensions, which are exactly p(x_d | x_<d) because they depend only on the
    dimensions before d, and :meth:`drawn_values` the values the model drew there. ``network_calls`` counts
    the one forward pass of those conditionals, not the calls inside the model's own sampler.
    """

    draws_itself = True

    def __init__(self, model: ARModel, x: Tensor, cond: Tensor | None, ordering: Ordering | None) -> None:
        super().__init__(model, x, cond, ordering)
        self._drawn: Tensor | None = None
        self._probs: Tensor | None = None

    def start(self, seed: int) -> None:
        """Draw the images with the model's own sampler, seeded by ``seed``."""
        n = self.x.shape[0]
        devices = [self.x.device.index or 0] if self.x.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(int(seed))
            images = self.model.own_sample(n, self.cond)
        expected = (n, *self.model.shape)
        if not isinstance(images, Tensor) or tuple(images.shape) != expected:
            got = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
            raise ModelError(f"{self.model.spec.title}'s own sampler gave images of shape {got}, expected {expected}")
        images = images.detach().to(self.x.device, self.x.dtype)
        k = self.model.num_values
        if not (torch.isfinite(images).all() and images.min() >= 0 and images.max() <= k - 1):
            raise ModelError(f"{self.model.spec.title}'s own sampler drew values outside 0..{k - 1}")
        if not torch.equal(images, images.round()):
            raise ModelError(
                f"{self.model.spec.title}'s own sampler gave values that are not integers (probabilities, not draws?)"
            )
        self._drawn = images.reshape(n, -1)

    def _drawn_images(self) -> Tensor:
        if self._drawn is None:
            raise ModelError(f"{self.model.spec.title}'s own sampler was not started")
        return self._drawn

    def probs(self, step: int) -> Tensor:
        if self._probs is None:
            drawn = self._drawn_images().view_as(self.x)
            params = self.model.params(drawn, self.cond, self.ordering)
            self.network_calls += 1
            self._probs = self.model.likelihood.probs(params.reshape(drawn.shape[0], -1, params.shape[-1]))
        return self._probs[:, torch.as_tensor(self.plan[step], device=self._probs.device)]

    def drawn_values(self, step: int) -> Tensor:
        """``(B, G)``: the values the model's own sampler drew for ``plan[step]``."""
        return self._drawn_images()[:, torch.as_tensor(self.plan[step], device=self.x.device)].long()

    def sample_to_end(self, uniforms: Tensor, temperature: float, known: Tensor | None, known_values) -> None:
        """Write the drawn images into the canvas (the run's uniforms are not used)."""
        self.x.view(self.x.shape[0], -1).copy_(self._drawn_images())


__all__ = ["NaiveSampler", "OwnSampler", "Sampler", "draw", "draw_dtype"]
