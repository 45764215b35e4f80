"""PixelSNAIL (Chen et al., 2018): masked convolutions interleaved with causal self-attention, raster order.

Convolutions see only a small neighbourhood, and a stack of masked ones leaves a blind spot; self-attention
reaches every earlier pixel in one step. Each block here is a few gated residual masked convolutions (tanh *
sigmoid) followed by a causal attention layer over the pixels in raster order: the queries come from the
features at each pixel, the keys and values from the features and the raw values of the pixels before it,
both with the pixel's position (its "background" coordinates) added.

The features at pixel i are built so that they depend only on pixels strictly before i (a mask-A convolution
first, then mask-B convolutions, and attention to positions j <= i of those features), so the output at i is a
valid conditional p(x_i | x_<i). The same fact makes sampling cheap (mode "cached"): once computed, the
features of a pixel never change, so each step computes the new pixel alone at every layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from app.core import hookimpl
from app.core.hparams import Hparams, hparam
from app.core.likelihoods import default_likelihood
from app.core.model import ARModel, ModelConfig, ModelSpec, differentiable_one_hot
from app.core.sampling import Sampler
from plugins.layers import MaskedConv2d, gate
from plugins.sequence_layers import StepwiseSampler


def coordinates(height: int, width: int) -> Tensor:
    """``(2, H, W)``: row and column of every pixel scaled to [-1, 1] (the 'background' of PixelSNAIL)."""
    rows = torch.linspace(-1.0, 1.0, height) if height > 1 else torch.zeros(1)
    cols = torch.linspace(-1.0, 1.0, width) if width > 1 else torch.zeros(1)
    grid_r, grid_c = torch.meshgrid(rows, cols, indexing="ij")
    return torch.stack([grid_r, grid_c])


class GatedResidualConv(nn.Module):
    """h + W_o * gate(MaskedConv_B(elu(h))): the gated residual convolution of PixelSNAIL."""

    def __init__(self, channels: int, kernel: int) -> None:
        super().__init__()
        self.conv = MaskedConv2d(channels, 2 * channels, kernel, "B")
        self.out = nn.Conv2d(channels, channels, 1)

    def forward(self, h: Tensor) -> Tensor:
        return h + self.out(gate(self.conv(F.elu(h))))


class CausalAttention(nn.Module):
    """Multi-head attention over the raster sequence, each pixel attending to itself and every pixel before.

    Queries: layer-normalised features and the background. Keys and values: the same features, the background,
    and the one-hot *previous* pixel value (pixel j carries x_{j-1}), so no pixel ever sees its own value.
    """

    def __init__(self, channels: int, num_values: int, heads: int, key_channels: int) -> None:
        super().__init__()
        if key_channels % heads:
            raise ValueError("key_channels must be divisible by heads")
        self.heads = heads
        self.norm = nn.LayerNorm(channels)
        self.query = nn.Linear(channels + 2, key_channels)
        self.key = nn.Linear(channels + 2 + num_values, key_channels)
        self.value = nn.Linear(channels + 2 + num_values, key_channels)
        self.out = nn.Linear(key_channels, 2 * channels)

    def project(self, h: Tensor, background: Tensor, previous: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Queries, keys and values ``(B, heads, T, d)`` of features ``h`` ``(B, T, C)`` at T positions."""
        seq = self.norm(h)
        q = self.query(torch.cat([seq, background], -1))
        kv_in = torch.cat([seq, background, previous], -1)
        return tuple(self._split(t) for t in (q, self.key(kv_in), self.value(kv_in)))  # type: ignore[return-value]

    def _split(self, t: Tensor) -> Tensor:
        return t.reshape(t.shape[0], t.shape[1], self.heads, -1).transpose(1, 2)

    def update(self, attended: Tensor) -> Tensor:
        """Attention outputs ``(B, heads, T, d)`` to the gated update of the features ``(B, C, T)``."""
        b, _, t, _ = attended.shape
        return gate(self.out(attended.transpose(1, 2).reshape(b, t, -1)).transpose(1, 2))

    def forward(self, h: Tensor, background: Tensor, previous: Tensor) -> Tensor:
        """``h`` ``(B, C, H, W)``, ``background`` ``(B, HW, 2)``, ``previous`` ``(B, HW, K)`` to an update of h."""
        q, k, v = self.project(h.flatten(2).transpose(1, 2), background, previous)
        attended = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.update(attended).reshape(h.shape)


@dataclass(frozen=True)
class PixelSNAILHparams(Hparams):
    """PixelSNAIL's size: ``blocks`` of gated residual convolutions, each followed by causal attention."""

    owner = "PixelSNAIL"

    channels: int = hparam(64, ge=1)
    blocks: int = hparam(3, ge=1)
    residual_per_block: int = hparam(2, ge=1)
    kernel: int = hparam(3, ge=1, odd=True)  # masked kernels need a centre pixel
    first_kernel: int = hparam(5, ge=1, odd=True)
    heads: int = hparam(2, ge=1)
    key_channels: int = hparam(64, ge=1)


class PixelSNAIL(ARModel):
    """Mask-A input convolution, then blocks of gated residual convolutions + causal attention, then a head."""

    hparams_class = PixelSNAILHparams

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config, default_likelihood(config.num_values))
        if config.channels != 1:
            raise ValueError("this PixelSNAIL models single-channel images (binary or grey)")
        hp = self.hp = PixelSNAILHparams.from_hparams(config.hparams)
        ch, kernel = hp.channels, hp.kernel
        k = config.num_values
        self.input = MaskedConv2d(k, ch, hp.first_kernel, "A")
        self.background_in = nn.Conv2d(2, ch, 1, bias=False)
        blocks, per_block = hp.blocks, hp.residual_per_block
        self.blocks = nn.ModuleList(
            nn.ModuleList(GatedResidualConv(ch, kernel) for _ in range(per_block)) for _ in range(blocks)
        )
        heads, key_ch = hp.heads, hp.key_channels
        self.attention = nn.ModuleList(CausalAttention(ch, k, heads, key_ch) for _ in range(blocks))
        self.head1 = nn.Conv2d(ch, ch, 1)
        self.head2 = nn.Conv2d(ch, self.likelihood.params_per_dim, 1)
        self.register_buffer("background", coordinates(config.height, config.width), persistent=False)

    def forward(self, x: Tensor, cond: Tensor | None = None, ordering=None) -> Tensor:
        b, _, height, width = x.shape
        one_hot = differentiable_one_hot(x[:, 0], self.num_values)  # (B, H, W, K)
        background = self.background.to(one_hot.dtype).expand(b, -1, -1, -1)
        h = self.input(one_hot.permute(0, 3, 1, 2)) + self.background_in(background)
        flat = one_hot.reshape(b, height * width, -1)
        previous = torch.cat([flat.new_zeros(b, 1, flat.shape[-1]), flat[:, :-1]], dim=1)
        background_seq = background.flatten(2).transpose(1, 2)
        for convs, attention in zip(self.blocks, self.attention, strict=True):
            for conv in convs:
                h = conv(h)
            h = h + attention(h, background_seq, previous)
        out = self.head2(F.elu(self.head1(F.elu(h))))
        return out.permute(0, 2, 3, 1).unsqueeze(1)

    def make_sampler(self, x: Tensor, cond: Tensor | None = None, ordering=None, mode: str = "naive") -> Sampler:
        if mode == "cached":
            return PixelSNAILCachedSampler(self, x, cond, ordering)
        return super().make_sampler(x, cond, ordering, mode)


def window(t: Tensor, row: int, col: int, kernel: int) -> Tensor:
    """The ``(B, C, kernel, kernel)`` patch of ``t`` ``(B, C, H, W)`` centred at (row, col), zeros outside."""
    pad = kernel // 2
    height, width = t.shape[-2:]
    out = t.new_zeros(t.shape[0], t.shape[1], kernel, kernel)
    r0, r1 = max(row - pad, 0), min(row + pad + 1, height)
    c0, c1 = max(col - pad, 0), min(col + pad + 1, width)
    out[:, :, r0 - row + pad : r1 - row + pad, c0 - col + pad : c1 - col + pad] = t[:, :, r0:r1, c0:c1]
    return out


class PixelSNAILCachedSampler(StepwiseSampler):
    """Computes only the current pixel at every layer, reusing the features of the pixels before it.

    In raster order the features of pixel j, at every layer, depend on pixels before j alone, so they are
    final once computed. A step therefore evaluates each masked convolution at one position (its kernel window
    over the kept features of the layer below) and each attention layer for one query against the kept keys
    and values of all earlier pixels (a KV cache): one pixel of work per layer instead of the whole image.
    """

    model: PixelSNAIL

    def reset(self) -> None:
        model = self.model
        b, (height, width) = self.x.shape[0], self.x.shape[-2:]
        like = dict(device=self.x.device, dtype=model._dtype())
        channels = model.head1.in_channels
        stages = 1 + sum(len(convs) + 1 for convs in model.blocks)
        self.features = [torch.zeros(b, channels, height, width, **like) for _ in range(stages)]
        self.keys: list[Tensor] = []
        self.values: list[Tensor] = []
        self.matrices: dict[nn.Module, Tensor] = {}
        for attention in model.attention:
            per_head = attention.key.out_features // attention.heads
            self.keys.append(torch.zeros(b, attention.heads, height * width, per_head, **like))
            self.values.append(torch.zeros(b, attention.heads, height * width, per_head, **like))

    def advance(self, step: int) -> Tensor:
        model = self.model
        b, width = self.x.shape[0], self.x.shape[-1]
        row, col = divmod(step, width)
        k = model.num_values
        # The input window, one-hot, with zero vectors (not the one-hot of 0) outside the image.
        kernel = model.input.kernel_size[0]
        inside = window(torch.ones_like(self.x[:1]), row, col, kernel)
        one_hot = differentiable_one_hot(window(self.x, row, col, kernel)[:, 0], k).permute(0, 3, 1, 2) * inside
        background = model.background[:, row, col].to(one_hot.dtype).expand(b, -1)
        flat = self.x.reshape(b, -1)
        previous = differentiable_one_hot(flat[:, step - 1], k) if step else flat.new_zeros(b, k)
        h = F.linear(one_hot.flatten(1), self._masked_weight(model.input), model.input.bias)
        h = h + F.linear(background, model.background_in.weight[:, :, 0, 0])
        stage = self._store(0, h, row, col)
        for convs, attention, keys, values in zip(model.blocks, model.attention, self.keys, self.values, strict=True):
            for conv in convs:
                patch = F.elu(window(self.features[stage], row, col, conv.conv.kernel_size[0]))
                gated = gate(F.linear(patch.flatten(1), self._masked_weight(conv.conv), conv.conv.bias))
                h = h + F.linear(gated, conv.out.weight[:, :, 0, 0], conv.out.bias)
                stage = self._store(stage + 1, h, row, col)
            q, k, v = attention.project(h[:, None], background[:, None], previous[:, None])
            keys[:, :, step] = k[:, :, 0]
            values[:, :, step] = v[:, :, 0]
            attended = F.scaled_dot_product_attention(q, keys[:, :, : step + 1], values[:, :, : step + 1])
            h = h + attention.update(attended)[:, :, 0]
            stage = self._store(stage + 1, h, row, col)
        hidden = F.linear(F.elu(h), model.head1.weight[:, :, 0, 0], model.head1.bias)
        return F.linear(F.elu(hidden), model.head2.weight[:, :, 0, 0], model.head2.bias)

    def _store(self, stage: int, h: Tensor, row: int, col: int) -> int:
        self.features[stage][:, :, row, col] = h
        return stage

    def _masked_weight(self, conv: MaskedConv2d) -> Tensor:
        """The masked kernel as a matrix ``(C_out, C_in * k * k)``, to apply to one flattened window."""
        if conv not in self.matrices:
            self.matrices[conv] = (conv.weight * conv.mask).flatten(1)
        return self.matrices[conv]


SPEC = ModelSpec(
    name="pixelsnail",
    title="PixelSNAIL",
    description=(
        "Convolutions and self-attention together: gated residual masked convolutions model the local texture, "
        "and causal self-attention layers between them let every pixel look at any earlier pixel in raster "
        "order in one step, so nothing is out of reach (no blind spot, no receptive field to grow layer by "
        "layer). The lecture's example that attention and convolution are complementary. Sampling with mode "
        "\"cached\" computes only the new pixel at every layer and keeps the attention keys and values."
    ),
    build=PixelSNAIL,
    orderings="fixed",
    lecture_section="Lecture 2, PixelSNAIL (masked convolutions + causal self-attention)",
    data_kinds=("binary", "grey"),
    tiny_hparams={
        "channels": 8, "blocks": 1, "residual_per_block": 1, "kernel": 3, "first_kernel": 3,
        "heads": 1, "key_channels": 8,
    },
    sampler_modes=("cached",),
)


@hookimpl
def ar_explorer_models():
    return [SPEC]
