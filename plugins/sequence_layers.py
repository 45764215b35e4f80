"""What the sequence models (RNN, WaveNet) share: an image read as a 1-D sequence of pixels in an ordering.

The sequence is the model's sampling plan: positions in the ordering, the channels of a position in turn. The
input at step ``t`` is the value drawn at step ``t - 1`` as a one-hot vector (a start token at step 0), so the
output at step ``t`` — the head parameters of dimension ``t`` — can only depend on the dimensions before it.
Optionally each step also gets the *location* of the dimension it predicts: its row and column scaled to
[-1, 1] (and its channel, one-hot, for colour images). The location is not data, so it may be known in advance.

:class:`CachedSequenceSampler` is the incremental sampler of such models: it advances the network one step per
dimension and keeps whatever state the network carries between steps (the RNN's hidden state, WaveNet's queues
of past activations), so a sample costs one step of work per dimension instead of one whole pass.
:class:`StepwiseSampler`, its base, serves any model that can compute one step at a time (PixelSNAIL).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from app.core.likelihoods import default_likelihood
from app.core.model import ARModel, ModelConfig, differentiable_one_hot
from app.core.orderings import Ordering
from app.core.sampling import Sampler


def sequence_dims(shape: tuple[int, int, int], ordering: Ordering) -> np.ndarray:
    """Flat dimension indices in the order a sequence model reads them: positions, then channels in turn."""
    c, h, w = shape
    positions = ordering.flat.astype(np.int64)
    return (positions[:, None] + np.arange(c, dtype=np.int64)[None, :] * (h * w)).reshape(-1)


def location_size(shape: tuple[int, int, int]) -> int:
    """Number of location features per step: row and column, plus a one-hot channel for multi-channel images."""
    return 2 + (shape[0] if shape[0] > 1 else 0)


def location_features(shape: tuple[int, int, int], dims: np.ndarray) -> Tensor:
    """``(D, location_size)``: row and column of each dimension scaled to [-1, 1], then its channel one-hot."""
    c, h, w = shape
    channel, rest = np.divmod(dims, h * w)
    row, col = np.divmod(rest, w)
    scale = lambda v, n: v * (2.0 / (n - 1)) - 1.0 if n > 1 else np.zeros_like(v, dtype=np.float64)  # noqa: E731
    columns = [scale(row, h), scale(col, w)]
    if c > 1:
        columns.extend((channel == k).astype(np.float64) for k in range(c))
    return torch.as_tensor(np.stack(columns, axis=1), dtype=torch.float32)


class SequenceModel(ARModel):
    """Base class of models over the pixel sequence of the ordering chosen at build time.

    Subclasses implement :meth:`sequence_params`, from step inputs to head parameters per step, and may offer
    a :class:`CachedSequenceSampler` for the ``"cached"`` mode.
    """

    def __init__(self, config: ModelConfig, use_location: bool) -> None:
        super().__init__(config, default_likelihood(config.num_values))
        dims = sequence_dims(config.shape, self.ordering)
        step_of_dim = np.empty_like(dims)
        step_of_dim[dims] = np.arange(dims.size)
        self.use_location = use_location
        self.token_size = config.num_values + 1  # one-hot of the previous value, then the start flag
        self.location_size = location_size(config.shape) if use_location else 0
        self.register_buffer("dims", torch.as_tensor(dims), persistent=False)
        self.register_buffer("step_of_dim", torch.as_tensor(step_of_dim), persistent=False)
        locations = location_features(config.shape, dims) if use_location else torch.zeros(dims.size, 0)
        self.register_buffer("locations", locations, persistent=False)

    @property
    def num_steps(self) -> int:
        return int(self.dims.numel())

    def tokens(self, x: Tensor) -> Tensor:
        """``(B, D, K + 1)``: at step t the one-hot of the value at step t - 1; at step 0 the start flag."""
        b = x.shape[0]
        values = x.reshape(b, -1)[:, self.dims]
        one_hot = differentiable_one_hot(values, self.num_values)
        previous = torch.cat([one_hot.new_zeros(b, 1, self.num_values), one_hot[:, :-1]], dim=1)
        start = one_hot.new_zeros(b, values.shape[1], 1)
        start[:, 0] = 1.0
        return torch.cat([previous, start], dim=-1)

    def step_token(self, flat: Tensor, step: int) -> Tensor:
        """``(B, K + 1)``: the input token of ``step`` read from the flat canvas ``(B, D)``."""
        token = flat.new_zeros(flat.shape[0], self.token_size)
        if step == 0:
            token[:, -1] = 1.0
        else:
            token[:, : self.num_values] = differentiable_one_hot(flat[:, self.dims[step - 1]], self.num_values)
        return token

    def sequence_params(self, tokens: Tensor) -> Tensor:
        """``(B, D, K + 1)`` step tokens to ``(B, D, P)`` head parameters, step t seeing tokens 0..t only."""
        raise NotImplementedError

    def forward(self, x: Tensor, cond: Tensor | None = None, ordering: Ordering | None = None) -> Tensor:
        params = self.sequence_params(self.tokens(x))
        return self.to_image(params)

    def to_image(self, params: Tensor) -> Tensor:
        """Head parameters in step order ``(B, D, P)`` to image layout ``(B, C, H, W, P)``."""
        b, _, p = params.shape
        return params[:, self.step_of_dim].reshape(b, *self.shape, p)

    def cached_sampler(self, x: Tensor, cond: Tensor | None, ordering: Ordering | None) -> Sampler:
        """The model's incremental sampler (subclasses that cache override this)."""
        raise NotImplementedError

    def make_sampler(self, x: Tensor, cond: Tensor | None = None, ordering: Ordering | None = None, mode: str = "naive") -> Sampler:
        if mode == "cached" and "cached" in self.spec.sampler_modes:
            return self.cached_sampler(x, cond, ordering)
        return super().make_sampler(x, cond, ordering, mode)


class StepwiseSampler(Sampler):
    """A sampler that computes one step's outputs at a time and keeps what later steps reuse.

    Subclasses implement :meth:`reset` (empty state) and :meth:`advance` (the head parameters of one step,
    given that every earlier step has been advanced). Steps whose values were committed without asking for
    their conditionals (known pixels in completion) are caught up from the canvas on the next :meth:`probs`.
    ``network_calls`` counts advanced steps.
    """

    def __init__(self, model: ARModel, x: Tensor, cond: Tensor | None, ordering: Ordering | None) -> None:
        super().__init__(model, x, cond, ordering)
        self.next_step = 0
        self.last_params: Tensor | None = None
        self.reset()

    def reset(self) -> None:
        """Forget all state: the next step advanced is step 0."""
        raise NotImplementedError

    def advance(self, step: int) -> Tensor:
        """Compute step ``step`` from the canvas and the kept state; return its head parameters ``(B, P)``."""
        raise NotImplementedError

    def probs(self, step: int) -> Tensor:
        if step < self.next_step - 1:  # asked again for an earlier step: start over from the canvas
            self.next_step = 0
            self.reset()
        while self.next_step <= step:
            self.last_params = self.advance(self.next_step)
            self.next_step += 1
            self.network_calls += 1
        return self.model.likelihood.probs(self.last_params.unsqueeze(1))


class CachedSequenceSampler(StepwiseSampler):
    """Advances a :class:`SequenceModel` one step per dimension, carrying the network's state between steps.

    Subclasses implement :meth:`reset` and :meth:`advance_token`: one step of the network, from that step's
    input token and location to its head parameters.
    """

    model: SequenceModel

    def advance_token(self, step: int, token: Tensor, location: Tensor) -> Tensor:
        """Consume step ``step``'s token ``(B, K + 1)`` and location ``(L,)``; return its parameters ``(B, P)``."""
        raise NotImplementedError

    def advance(self, step: int) -> Tensor:
        token = self.model.step_token(self.x.reshape(self.x.shape[0], -1), step)
        return self.advance_token(step, token, self.model.locations[step])
