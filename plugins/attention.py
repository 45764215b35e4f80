"""Masked self-attention over pixels: "we can design any autoregressive ordering we want".

A small decoder-only transformer reads the image as a sequence in generation order. Token ``t`` carries the
value and position of the dimension generated at step ``t - 1`` (a learned start token at ``t = 0``, so the
first dimension sees nothing) plus the embedding of the position it must predict, the dimension of step ``t``
(the target-position query of XLNet and sigma-GPT). A causal mask over the sequence is then the
autoregressive mask of the ordering, whatever the ordering is.

Two models share this network:

* ``attention``: the ordering is chosen when the model is built and fixed for its life (like MADE);
* ``any-order-attention``: trained on a fresh random ordering every batch, it scores and samples under any
  ordering given at run time, without retraining: the model behind the interactive ordering editor.

Both sample with a key/value cache (mode ``cached``): each step runs the network on the new tokens only,
attending to the cached keys and values of the earlier ones; the conditionals equal the full forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from app.core import hookimpl
from app.core.hparams import Hparams, hparam
from app.core.likelihoods import default_likelihood
from app.core.model import ARModel, ModelConfig, ModelSpec, differentiable_one_hot
from app.core.orderings import Ordering
from app.core.sampling import Sampler


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention; each query sees its own key and the keys before it."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"the width ({width}) must be a multiple of the number of heads ({heads})")
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def _split(self, h: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        b, t, d = h.shape
        q, k, v = self.qkv(h).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        return q, k, v

    def _merge(self, y: Tensor) -> Tensor:
        b, _, t, _ = y.shape
        return self.proj(y.transpose(1, 2).reshape(b, t, -1))

    def forward(self, h: Tensor) -> Tensor:
        q, k, v = self._split(h)
        return self._merge(F.scaled_dot_product_attention(q, k, v, is_causal=True))

    def forward_cached(self, h: Tensor, cache_k: Tensor, cache_v: Tensor, start: int) -> Tensor:
        """Run the new tokens ``h`` (positions ``start ..``), storing their keys and values in the cache."""
        q, k, v = self._split(h)
        end = start + h.shape[1]
        cache_k[:, :, start:end] = k
        cache_v[:, :, start:end] = v
        # Written out rather than through scaled_dot_product_attention: for one query over a cache slice it is
        # about twice as fast on a CPU.
        scores = (q @ cache_k[:, :, :end].transpose(-1, -2)) * q.shape[-1] ** -0.5
        if h.shape[1] > 1:
            rows = torch.arange(start, end, device=h.device)[:, None]
            hidden = torch.arange(end, device=h.device)[None, :] > rows
            scores = scores.masked_fill(hidden, float("-inf"))
        return self._merge(torch.softmax(scores, dim=-1) @ cache_v[:, :, :end])


class Block(nn.Module):
    """Pre-norm transformer block: attention then a two-layer MLP, each with a residual connection."""

    def __init__(self, width: int, heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attn = CausalSelfAttention(width, heads)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, mlp_ratio * width), nn.GELU(), nn.Linear(mlp_ratio * width, width))

    def forward(self, h: Tensor) -> Tensor:
        h = h + self.attn(self.norm1(h))
        return h + self.mlp(self.norm2(h))

    def forward_cached(self, h: Tensor, cache_k: Tensor, cache_v: Tensor, start: int) -> Tensor:
        h = h + self.attn.forward_cached(self.norm1(h), cache_k, cache_v, start)
        return h + self.mlp(self.norm2(h))


@dataclass(frozen=True)
class AttentionHparams(Hparams):
    """The transformer's size: ``layers`` blocks of ``heads``-headed attention over ``width`` features."""

    owner = "Masked self-attention"

    width: int = hparam(128, ge=1)
    layers: int = hparam(4, ge=1)
    heads: int = hparam(4, ge=1)
    mlp_ratio: int = hparam(4, ge=1)


class MaskedAttention(ARModel):
    """A decoder-only transformer over the C*H*W dimensions of an image, in a given ordering."""

    hparams_class = AttentionHparams

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config, default_likelihood(config.num_values))
        hp = self.hp = AttentionHparams.from_hparams(config.hparams)
        width = hp.width
        self.heads = hp.heads
        num_dims = config.num_dims
        self.value_embedding = nn.Linear(config.num_values, width, bias=False)
        self.input_position = nn.Parameter(torch.zeros(num_dims, width))
        self.target_position = nn.Parameter(torch.zeros(num_dims, width))
        self.start = nn.Parameter(torch.zeros(width))
        self.blocks = nn.ModuleList(
            Block(width, self.heads, hp.mlp_ratio) for _ in range(hp.layers)
        )
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, self.likelihood.params_per_dim)
        for tensor in (self.input_position, self.target_position, self.start):
            nn.init.normal_(tensor, std=0.02)
        self._sequences: dict[tuple[Ordering, str], Tensor] = {}

    # -- the sequence ---------------------------------------------------------------------------------------
    def sequence(self, ordering: Ordering | None) -> Tensor:
        """Flat dimension indices in generation order (the model's sampling plan, flattened)."""
        ordering = self.resolve_ordering(ordering)
        device = self.input_position.device
        key = (ordering, str(device))
        if key not in self._sequences:
            if len(self._sequences) > 64:  # training draws a new ordering every batch: keep the cache small
                self._sequences.clear()
            plan = self.sampling_plan(ordering)
            self._sequences[key] = torch.as_tensor(np.concatenate(plan), device=device)
        return self._sequences[key]

    def embed(self, x: Tensor, seq: Tensor, start: int, end: int) -> Tensor:
        """Input tokens ``start .. end - 1`` of the sequence ``seq`` for the images ``x``."""
        b = x.shape[0]
        flat = x.reshape(b, -1)
        targets = self.target_position[seq[start:end]].unsqueeze(0).expand(b, -1, -1)
        first = max(start, 1)
        parts = []
        if start == 0:
            parts.append(self.start.expand(b, 1, -1))
        if end > first:
            source = seq[first - 1 : end - 1]
            values = differentiable_one_hot(flat[:, source], self.num_values)
            parts.append(self.value_embedding(values) + self.input_position[source])
        return torch.cat(parts, dim=1) + targets

    def forward(self, x: Tensor, cond: Tensor | None = None, ordering: Ordering | None = None) -> Tensor:
        b = x.shape[0]
        seq = self.sequence(ordering if self.capability == "any" else None)
        h = self.embed(x, seq, 0, seq.numel())
        for block in self.blocks:
            h = block(h)
        out_seq = self.head(self.norm(h))
        # Back from generation order to dimension order by a gather (not an in-place scatter, so that
        # torch.func.vmap can take per-example gradients).
        return out_seq[:, torch.argsort(seq)].reshape(b, *self.shape, -1)

    def make_sampler(
        self, x: Tensor, cond: Tensor | None = None, ordering: Ordering | None = None, mode: str = "naive"
    ) -> Sampler:
        if mode == "cached":
            return KVCacheSampler(self, x, cond, ordering)
        return super().make_sampler(x, cond, ordering, mode)


class AnyOrderAttention(MaskedAttention):
    """The same network trained on a new uniformly random ordering every batch."""

    def training_ordering(self, generator: torch.Generator | None = None) -> Ordering:
        h, w = self.config.height, self.config.width
        flat = torch.randperm(h * w, generator=generator).numpy()
        return Ordering(h, w, np.stack([flat // w, flat % w], axis=1), name="random")


class KVCacheSampler(Sampler):
    """Runs the network only on the tokens not yet seen, attending to cached keys and values.

    Tokens are built lazily from the canvas: when step ``s`` is asked for, every token up to ``s`` that has not
    been run yet (known pixels of a completion, or the one just drawn) goes through the network in one chunk.
    """

    def __init__(self, model: MaskedAttention, x: Tensor, cond: Tensor | None, ordering: Ordering | None) -> None:
        super().__init__(model, x, cond, ordering)
        self.seq = model.sequence(self.ordering if model.capability == "any" else None)
        b, length = x.shape[0], self.seq.numel()
        width = model.start.numel()
        shape = (b, model.heads, length, width // model.heads)
        dtype = model._dtype()
        self.keys = [torch.zeros(shape, device=x.device, dtype=dtype) for _ in model.blocks]
        self.values = [torch.zeros(shape, device=x.device, dtype=dtype) for _ in model.blocks]
        self.done = 0
        self.last: Tensor | None = None

    def probs(self, step: int) -> Tensor:
        model: MaskedAttention = self.model  # type: ignore[assignment]
        if step >= self.done:
            h = model.embed(self.x.to(model._dtype()), self.seq, self.done, step + 1)
            for block, keys, values in zip(model.blocks, self.keys, self.values, strict=True):
                h = block.forward_cached(h, keys, values, self.done)
            self.last = model.head(model.norm(h[:, -1:]))
            self.done = step + 1
            self.network_calls += 1
        elif step != self.done - 1:
            raise ValueError("the cached sampler only steps forward")
        return model.likelihood.probs(self.last)


def _description(any_order: bool) -> str:
    common = (
        "A small transformer with causal masked self-attention over the pixels in generation order; each token "
        "also carries the position it predicts, so the mask alone makes it autoregressive in that ordering. "
    )
    if any_order:
        return common + (
            "Trained on a new random ordering every batch, it scores and samples under any ordering at run time, "
            "without retraining: draw an ordering and use it at once."
        )
    return common + "The ordering is chosen when the model is trained, as for MADE."


_TINY = {"width": 16, "layers": 2, "heads": 2, "mlp_ratio": 2, "kit_norm_shape": (1, 3, 4)}

ATTENTION = ModelSpec(
    name="attention",
    title="Masked self-attention",
    description=_description(any_order=False),
    build=MaskedAttention,
    orderings="build",
    lecture_section="Lecture 2, Masked attention (any ordering: raster, columns, random, ...)",
    data_kinds=("binary", "grey", "colour"),
    tiny_hparams=dict(_TINY),
    sampler_modes=("cached",),
)

ANY_ORDER_ATTENTION = ModelSpec(
    name="any-order-attention",
    title="Any-order masked self-attention",
    description=_description(any_order=True),
    build=AnyOrderAttention,
    orderings="any",
    lecture_section="Lecture 2, Masked attention: any autoregressive ordering we want",
    data_kinds=("binary", "grey", "colour"),
    tiny_hparams=dict(_TINY),
    sampler_modes=("cached",),
)


@hookimpl
def ar_explorer_models():
    return [ATTENTION, ANY_ORDER_ATTENTION]


__all__ = ["ATTENTION", "ANY_ORDER_ATTENTION", "MaskedAttention", "AnyOrderAttention", "KVCacheSampler"]
