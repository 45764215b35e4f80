"""Building blocks of convolutional autoregressive models: masked and shifted convolutions, gates, residuals.

The built-in models are composed of them, and so may a plugin's. The cached-sampling engine
(:mod:`app.core.cached_engine`) understands a network declared in the masked ones
(:class:`~app.core.cache_program.CacheProgram`), so that a model built from them samples from cached
activations with no code of its own for it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def raster_mask(
    kernel: int | tuple[int, int],
    in_channels: int,
    out_channels: int,
    mask_type: str,
    groups: int = 1,
) -> Tensor:
    """The PixelCNN mask of a ``kernel`` convolution for raster order.

    Rows above the centre and pixels left of the centre are visible. At the centre, channels are split into
    ``groups`` (R, G, B for colour): mask ``"A"`` lets output group g see input groups < g, mask ``"B"``
    input groups <= g. With one group, ``"A"`` hides the centre and ``"B"`` shows it.
    """
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    if mask_type not in ("A", "B"):
        raise ValueError("mask_type must be 'A' or 'B'")
    mask = torch.zeros(out_channels, in_channels, kh, kw)
    cy, cx = kh // 2, kw // 2
    mask[:, :, :cy, :] = 1
    mask[:, :, cy, :cx] = 1
    out_group = torch.arange(out_channels) * groups // out_channels
    in_group = torch.arange(in_channels) * groups // in_channels
    allowed = in_group[None, :] < out_group[:, None] if mask_type == "A" else in_group[None, :] <= out_group[:, None]
    mask[:, :, cy, cx] = allowed.float()
    return mask


class MaskedConv2d(nn.Conv2d):
    """A 2-D convolution whose kernel is multiplied by a fixed mask (``raster_mask``), 'same' padding."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, mask_type: str, groups: int = 1) -> None:
        super().__init__(in_channels, out_channels, kernel, padding=kernel // 2)
        self.mask_type = mask_type
        self.register_buffer("mask", raster_mask(kernel, in_channels, out_channels, mask_type, groups), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


def shift_down(x: Tensor, rows: int = 1) -> Tensor:
    """Move every row down by ``rows`` (zeros enter at the top): row r then holds what row r-1 held."""
    return F.pad(x, (0, 0, rows, 0))[:, :, : x.shape[2], :]


def shift_right(x: Tensor, cols: int = 1) -> Tensor:
    """Move every column right by ``cols`` (zeros enter at the left): column c then holds what c-1 held."""
    return F.pad(x, (cols, 0, 0, 0))[:, :, :, : x.shape[3]]


class DownConv(nn.Module):
    """Vertical-stack convolution: output row r sees input rows r - k//2 .. r, all columns within k//2."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int) -> None:
        super().__init__()
        self.kernel = kernel
        self.conv = nn.Conv2d(in_channels, out_channels, (kernel // 2 + 1, kernel))

    def forward(self, x: Tensor) -> Tensor:
        k = self.kernel
        return self.conv(F.pad(x, (k // 2, k // 2, k // 2, 0)))


class RightConv(nn.Module):
    """Horizontal-stack convolution: output column c sees input columns c - k//2 .. c of the same row."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int) -> None:
        super().__init__()
        self.kernel = kernel
        self.conv = nn.Conv2d(in_channels, out_channels, (1, kernel // 2 + 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.pad(x, (self.kernel // 2, 0, 0, 0)))


def gate(x: Tensor) -> Tensor:
    """The gated activation tanh(a) * sigmoid(b) of WaveNet and Gated PixelCNN (channels split in half)."""
    a, b = x.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


class Gate(nn.Module):
    """:func:`gate` as a module, for an ``nn.Sequential``: ``2n`` channels in, ``n`` out."""

    def forward(self, x: Tensor) -> Tensor:
        return gate(x)


class Residual(nn.Module):
    """``x + body(x)``: a residual block around the modules given, run in turn (``body`` keeps the shape)."""

    def __init__(self, *modules: nn.Module) -> None:
        super().__init__()
        self.body = nn.Sequential(*modules)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ClassBias(nn.Module):
    """A learned per-class bias for each layer: how a one-hot label enters every layer (conditional PixelCNN)."""

    def __init__(self, num_classes: int, channels: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_classes, channels)
        nn.init.zeros_(self.embed.weight)

    def forward(self, labels: Tensor) -> Tensor:
        return self.embed(labels.long())[:, :, None, None]
