"""PixelSNAIL (Chen et al., 2018): masked convolutions interleaved with causal self-attention, raster order.

Convolutions see only a small neighbourhood, and a stack of masked ones leaves a blind spot; self-attention
reaches every earlier pixel in one step. Each block here is a few gated residual masked convolutions (tanh *
sigmoid) followed by a causal attention layer over the pixels in raster order: the queries come from the
features at each pixel, the keys and values from the features and the raw values of the pixels before it,
both with the pixel's position (its "background" coordinates) added.

The features at pixel i are built so that they depend only on pixels strictly before i (a mask-A convolution
first, then mask-B convolutions, and attention to positions j <= i of those features), so the output at i is a
valid conditional p(x_i | x_<i).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from app.core import hookimpl
from app.core.likelihoods import default_likelihood
from app.core.model import ARModel, ModelConfig, ModelSpec, differentiable_one_hot
from plugins.layers import MaskedConv2d, gate


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

    def forward(self, h: Tensor, background: Tensor, previous: Tensor) -> Tensor:
        """``h`` ``(B, C, H, W)``, ``background`` ``(B, HW, 2)``, ``previous`` ``(B, HW, K)`` to an update of h."""
        b, c, height, width = h.shape
        seq = self.norm(h.flatten(2).transpose(1, 2))  # (B, HW, C)
        q = self.query(torch.cat([seq, background], -1))
        kv_in = torch.cat([seq, background, previous], -1)
        k, v = self.key(kv_in), self.value(kv_in)
        split = lambda t: t.reshape(b, t.shape[1], self.heads, -1).transpose(1, 2)  # noqa: E731
        attended = F.scaled_dot_product_attention(split(q), split(k), split(v), is_causal=True)
        attended = attended.transpose(1, 2).reshape(b, height * width, -1)
        update = gate(self.out(attended).transpose(1, 2))  # (B, C, HW)
        return update.reshape(b, c, height, width)


class PixelSNAIL(ARModel):
    """Mask-A input convolution, then blocks of gated residual convolutions + causal attention, then a head."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config, default_likelihood(config.num_values))
        if config.channels != 1:
            raise ValueError("this PixelSNAIL models single-channel images (binary or grey)")
        hp = config.hparams
        ch = int(hp.get("channels", 64))
        kernel = int(hp.get("kernel", 3))
        k = config.num_values
        self.input = MaskedConv2d(k, ch, int(hp.get("first_kernel", 5)), "A")
        self.background_in = nn.Conv2d(2, ch, 1, bias=False)
        blocks = int(hp.get("blocks", 3))
        per_block = int(hp.get("residual_per_block", 2))
        self.blocks = nn.ModuleList(
            nn.ModuleList(GatedResidualConv(ch, kernel) for _ in range(per_block)) for _ in range(blocks)
        )
        heads, key_ch = int(hp.get("heads", 2)), int(hp.get("key_channels", 64))
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


SPEC = ModelSpec(
    name="pixelsnail",
    title="PixelSNAIL",
    description=(
        "Convolutions and self-attention together: gated residual masked convolutions model the local texture, "
        "and causal self-attention layers between them let every pixel look at any earlier pixel in raster "
        "order in one step, so nothing is out of reach (no blind spot, no receptive field to grow layer by "
        "layer). The lecture's example that attention and convolution are complementary."
    ),
    build=PixelSNAIL,
    orderings="fixed",
    lecture_section="Lecture 2, PixelSNAIL (masked convolutions + causal self-attention)",
    data_kinds=("binary", "grey"),
    default_hparams={
        "channels": 64, "blocks": 3, "residual_per_block": 2, "kernel": 3, "first_kernel": 5,
        "heads": 2, "key_channels": 64,
    },
    tiny_hparams={
        "channels": 8, "blocks": 1, "residual_per_block": 1, "kernel": 3, "first_kernel": 3,
        "heads": 1, "key_channels": 8,
    },
)


@hookimpl
def ar_explorer_models():
    return [SPEC]
