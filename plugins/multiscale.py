"""Parallel multiscale PixelCNN (Reed et al., 2017): O(log N) network calls to sample an N-pixel image.

The pixels of an H x W image are split into nested subsampled grids. The base grid, every 2^L-th pixel in both
directions (7x7 for a 28x28 image with L = 2, or a 56x56 image with L = 3), is generated pixel by pixel by a
small PixelCNN. Then, at every doubling of the resolution, the pixels of the finer grid that the coarser one
lacks come in three groups (right of a known pixel, below it, diagonal to it); all pixels of a group are drawn
*in parallel*, each conditioned on every pixel of the earlier groups and coarser grids (a convolutional net per
resolution sees them all, with the unknown pixels zeroed and flagged). Pixels of one group are conditionally
independent of each other: that is the price of parallel sampling.

Sampling therefore takes (H/2^L)(W/2^L) + 3L network calls: 49 + 6 = 55 for 28x28 and 49 + 9 = 58 for 56x56,
instead of 784 and 3136 for a raster PixelCNN. The model's sampling plan lists exactly these groups, so every
sampler, the conformance kit and the views treat it like any other model. The sampler mode ``partial`` runs
only the sub-network that a step needs (the base PixelCNN, or one resolution's net) rather than all of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from app.core import hookimpl
from app.core.errors import ModelError
from app.core.hparams import Hparams, hparam
from app.core.model import ARModel, ModelConfig, ModelSpec
from app.core.orderings import Ordering
from app.core.sampling import Sampler
from app.core.stages import Stage
from plugins.layers import MaskedConv2d
from plugins.pixelcnn import likelihood_for

#: The offsets (row, col) within each 2x2 cell of a finer grid, in the order their groups are sampled; the
#: offset (0, 0) is the coarser grid, known before any of them.
GROUP_OFFSETS = ((0, 1), (1, 0), (1, 1))


def num_levels(height: int, width: int, base: int) -> int:
    """How many doublings lead from a ``base``-pixel-high grid to ``height``; refuses sizes that do not fit."""
    if base < 1 or height % base:
        raise ModelError(f"the image height {height} is not a multiple of the base size {base}")
    ratio = height // base
    levels = int(round(math.log2(ratio)))
    if 2**levels != ratio or width % ratio:
        raise ModelError(
            f"a {height}x{width} image is not a {base}-pixel base grid doubled a whole number of times "
            f"(height / base = {ratio} must be a power of two that also divides the width)"
        )
    return levels


def auto_base(height: int, width: int) -> int:
    """The base grid's height when the hyperparameter ``base`` is 0: the image height halved as many times as
    height and width allow together (28x28 -> 7, 56x56 -> 7, 8x8 -> 1)."""
    ratio = 1
    while height % (2 * ratio) == 0 and width % (2 * ratio) == 0:
        ratio *= 2
    return height // ratio


def multiscale_plan(height: int, width: int, levels: int) -> list[np.ndarray]:
    """Groups of flat positions: the base grid pixel by pixel (raster), then 3 groups per doubling."""
    index = np.arange(height * width).reshape(height, width)
    stride = 2**levels
    plan = [np.array([p], dtype=np.int64) for p in index[::stride, ::stride].reshape(-1)]
    for level in range(1, levels + 1):
        step = 2 ** (levels - level)
        for dr, dc in GROUP_OFFSETS:
            plan.append(index[dr * step :: 2 * step, dc * step :: 2 * step].reshape(-1).astype(np.int64))
    return plan


class BasePixelCNN(nn.Module):
    """A small PixelCNN (mask A, then residual mask-B layers) over the base grid, in raster order."""

    def __init__(self, channels: int, layers: int, kernel: int, params: int) -> None:
        super().__init__()
        self.first = MaskedConv2d(1, channels, kernel, "A")
        self.layers = nn.ModuleList(MaskedConv2d(channels, channels, kernel, "B") for _ in range(layers))
        self.head1 = MaskedConv2d(channels, channels, 1, "B")
        self.head2 = MaskedConv2d(channels, params, 1, "B")

    def forward(self, x: Tensor) -> Tensor:
        hidden = self.first(x)
        for layer in self.layers:
            hidden = hidden + layer(F.relu(hidden))
        return self.head2(F.relu(self.head1(F.relu(hidden))))


class GroupNet(nn.Module):
    """One resolution's net: the known pixels of a grid (unknown ones zeroed and flagged) and the group's
    one-hot to the parameters of every pixel; only the pixels of the group are read from its output."""

    def __init__(self, channels: int, dilations: tuple[int, ...], params: int) -> None:
        super().__init__()
        self.inp = nn.Conv2d(2 + len(GROUP_OFFSETS), channels, 3, padding=1)
        self.blocks = nn.ModuleList(nn.Conv2d(channels, channels, 3, padding=d, dilation=d) for d in dilations)
        self.mixes = nn.ModuleList(nn.Conv2d(channels, channels, 1) for _ in dilations)
        self.head1 = nn.Conv2d(channels, channels, 1)
        self.head2 = nn.Conv2d(channels, params, 1)

    def forward(self, values: Tensor, known: Tensor, group: int) -> Tensor:
        b, _, h, w = values.shape
        onehot = values.new_zeros(b, len(GROUP_OFFSETS), h, w)
        onehot[:, group] = 1.0
        hidden = self.inp(torch.cat([values * known, known.expand(b, 1, h, w), onehot], 1))
        for block, mix in zip(self.blocks, self.mixes, strict=True):
            hidden = hidden + mix(F.relu(block(F.relu(hidden))))
        return self.head2(F.relu(self.head1(F.relu(hidden))))


def known_mask(height: int, width: int, group: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """``(1, 1, H, W)``: 1 at the pixels of a grid known before ``group`` (the coarser grid and earlier groups)."""
    mask = torch.zeros(1, 1, height, width, device=device, dtype=dtype)
    mask[:, :, ::2, ::2] = 1.0
    for dr, dc in GROUP_OFFSETS[:group]:
        mask[:, :, dr::2, dc::2] = 1.0
    return mask


@dataclass(frozen=True)
class MultiscaleHparams(Hparams):
    """The base grid (``base`` x ``base``, 0 for the largest that halves down from the image) and its PixelCNN,
    and the dilated group nets of every finer grid."""

    owner = "Parallel multiscale PixelCNN"

    base: int = hparam(7, ge=0)
    base_channels: int = hparam(32, ge=1)
    base_layers: int = hparam(3, ge=1)
    base_kernel: int = hparam(5, ge=1, odd=True)
    channels: int = hparam(48, ge=1)
    dilations: tuple[int, ...] = hparam((1, 2, 4, 8), ge=1, min_items=1)


class MultiscalePixelCNN(ARModel):
    """A base-grid PixelCNN and one parallel group net per doubling of the resolution (single channel)."""

    hparams_class = MultiscaleHparams

    def __init__(self, config: ModelConfig) -> None:
        hp = self.hp = MultiscaleHparams.from_hparams(config.hparams)
        super().__init__(config, likelihood_for(config, hp))
        if config.channels != 1:
            raise ValueError("this multiscale PixelCNN models single-channel images (binary or grey)")
        base = hp.base or auto_base(config.height, config.width)
        self.levels = num_levels(config.height, config.width, base)
        params = self.likelihood.params_per_dim
        self.base = BasePixelCNN(hp.base_channels, hp.base_layers, hp.base_kernel, params)
        self.group_nets = nn.ModuleList(GroupNet(hp.channels, hp.dilations, params) for _ in range(self.levels))
        self.plan = multiscale_plan(config.height, config.width, self.levels)
        self.ordering = Ordering(
            config.height, config.width, _positions(np.concatenate(self.plan), config.width), name="multiscale"
        )

    # the parts, each one network call ---------------------------------------------------------------------
    def stride(self, level: int) -> int:
        """The subsampling stride of grid ``level`` (0 = base grid, ``levels`` = the full image)."""
        return 2 ** (self.levels - level)

    def base_params(self, x: Tensor) -> Tensor:
        """``(B, P, h, w)``: parameters of the base-grid pixels, from the base grid alone (raster order)."""
        s = self.stride(0)
        return self.base(self.normalize(x[:, :, ::s, ::s]))

    def group_params(self, x: Tensor, level: int, group: int) -> Tensor:
        """``(B, P, h, w)`` over grid ``level``; the pixels of ``group`` depend only on the earlier ones."""
        s = self.stride(level)
        grid = x[:, :, ::s, ::s]
        known = known_mask(grid.shape[2], grid.shape[3], group, x.device, x.dtype)
        return self.group_nets[level - 1](self.normalize(grid), known, group)

    # the contract ------------------------------------------------------------------------------------------
    def forward(self, x: Tensor, cond: Tensor | None = None, ordering=None) -> Tensor:
        b, _, h, w = x.shape
        out = x.new_zeros(b, self.likelihood.params_per_dim, h, w)
        s = self.stride(0)
        out[:, :, ::s, ::s] = self.base_params(x)
        for level in range(1, self.levels + 1):
            s = self.stride(level)
            for group, (dr, dc) in enumerate(GROUP_OFFSETS):
                params = self.group_params(x, level, group)
                out[:, :, dr * s :: 2 * s, dc * s :: 2 * s] = params[:, :, dr::2, dc::2]
        return out.permute(0, 2, 3, 1).unsqueeze(1)

    def sampling_plan(self, ordering: Ordering | None = None) -> list[np.ndarray]:
        self.resolve_ordering(ordering)
        return [group.copy() for group in self.plan]

    def sampling_stages(self) -> list[Stage]:
        """The base grid pixel by pixel, then every finer grid in three calls of many pixels each."""
        _, h, w = self.shape
        stride = self.stride(0)
        bh, bw = h // stride, w // stride
        stages = [Stage(f"{bh}x{bw} base grid", "a PixelCNN, one pixel per network call", (1, bh, bw),
                        self.num_values, bh * bw, bh * bw, stride)]
        for level in range(1, self.levels + 1):
            s = self.stride(level)
            gh, gw = h // s, w // s
            new = gh * gw - (gh // 2) * (gw // 2)
            per_group = new // len(GROUP_OFFSETS)
            stages.append(Stage(f"{gh}x{gw}", f"{len(GROUP_OFFSETS)} network calls of {per_group} pixels drawn in "
                                "parallel", (1, gh, gw), self.num_values, len(GROUP_OFFSETS), new, s))
        return stages

    def step_part(self, step: int) -> tuple[int, int]:
        """``(level, group)`` of a step of the plan: level 0 for the base grid (group -1)."""
        base = len(self.plan) - 3 * self.levels
        if step < base:
            return 0, -1
        level, group = divmod(step - base, 3)
        return level + 1, group

    def make_sampler(self, x: Tensor, cond: Tensor | None = None, ordering: Ordering | None = None, mode: str = "naive"):
        if mode == "partial":
            return PartialSampler(self, x, cond, ordering)
        return super().make_sampler(x, cond, ordering, mode)


def _positions(flat: np.ndarray, width: int) -> np.ndarray:
    return np.stack([flat // width, flat % width], axis=1)


class PartialSampler(Sampler):
    """Runs only the sub-network a step needs: the base PixelCNN for a base pixel, else one resolution's net.

    The conditionals are computed by the very same modules on the very same inputs as the full forward pass,
    so they equal the naive sampler's; each step is still one network call.
    """

    model: MultiscalePixelCNN

    def probs(self, step: int) -> Tensor:
        model = self.model
        level, group = model.step_part(step)
        if level == 0:
            params = model.base_params(self.x)
            s = model.stride(0)
        else:
            params = model.group_params(self.x, level, group)
            s = model.stride(level)
        self.network_calls += 1
        b = params.shape[0]
        w = model.config.width
        dims = torch.as_tensor(self.plan[step], device=params.device)
        rows, cols = dims // w // s, dims % w // s
        picked = params.permute(0, 2, 3, 1)[:, rows, cols]  # (B, G, P)
        return model.likelihood.probs(picked.reshape(b, -1, params.shape[1]))


SPEC = ModelSpec(
    name="multiscale-pixelcnn",
    title="Parallel multiscale PixelCNN",
    description=(
        "Reed et al. (2017): a small base image (every 4th pixel of a 28x28 image, 7x7) is generated pixel by "
        "pixel, then each doubling of the resolution adds three groups of pixels, every pixel of a group drawn in "
        "parallel given all coarser pixels. 55 network calls sample a 28x28 image (58 for 56x56) where a raster "
        "PixelCNN needs 784 (3136): O(log N) instead of O(N), at the cost of independence within a group."
    ),
    build=MultiscalePixelCNN,
    orderings="fixed",
    lecture_section="Lecture 2, parallel multiscale PixelCNN (O(log N) sampling)",
    data_kinds=("binary", "grey"),
    tiny_hparams={
        "base": 0, "base_channels": 6, "base_layers": 1, "base_kernel": 3, "channels": 6, "dilations": [1, 2],
        "kit_shape": (1, 4, 4), "kit_norm_shape": (1, 2, 4),
    },
    sampler_modes=("partial",),
)


@hookimpl
def ar_explorer_models():
    return [SPEC]
