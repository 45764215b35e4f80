"""PixelCNN++ (Salimans, Karpathy, Chen & Kingma, 2017) for single-channel images.

What it changes from Gated PixelCNN, each visible in this module:

* a discretized mixture of logistics head (:class:`~app.core.likelihoods.DiscretizedLogisticMixture`)
  instead of a 256-way softmax: nearby grey levels share probability, and a value never seen in training
  still gets mass;
* down-shifted (vertical) and down-right-shifted (horizontal) convolutions instead of masks: a stream ``u``
  that sees every row above, and a stream ``ul`` that also sees the pixels to the left; together they leave
  no blind spot;
* gated ResNet blocks with concatenated ELUs;
* two strided downsamplings and two transposed-convolution upsamplings, with shortcut connections from each
  block of the down pass (towards low resolution) to its mirror in the up pass: a large receptive field with
  few layers.

Causality survives the resolution changes: at a coarse level, position ``(I, J)`` of ``u`` has seen only the
fine rows above ``2I``, and of ``ul`` only the fine pixels before ``(2I, 2J)`` in raster order; an upsampled
fine pixel ``(i, j)`` reads coarse position ``(i // 2, j // 2)``, whose top-left fine pixel is not after it.
Odd sizes are handled by cropping the upsampled map to its shortcut's size, so any image size works.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from app.core import hookimpl
from app.core.hparams import Hparams, hparam
from app.core.likelihoods import DiscretizedLogisticMixture
from app.core.model import ARModel, ModelConfig, ModelSpec
from plugins.layers import shift_down, shift_right


def concat_elu(x: Tensor) -> Tensor:
    """ELU of ``x`` and of ``-x``, stacked on channels: keeps both signs' information (PixelCNN++)."""
    return F.elu(torch.cat([x, -x], dim=1))


class DownShiftedConv(nn.Module):
    """Convolution whose output row r sees input rows r - kh + 1 .. r, columns centred on its own.

    With ``stride=2`` it halves the resolution (rounding up) and coarse row R sees fine rows 2R - 1 .. 2R.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, int] = (2, 3), stride: int = 1) -> None:
        super().__init__()
        self.kernel = kernel
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, stride=stride)

    def forward(self, x: Tensor) -> Tensor:
        kh, kw = self.kernel
        return self.conv(F.pad(x, ((kw - 1) // 2, (kw - 1) // 2, kh - 1, 0)))


class DownRightShiftedConv(nn.Module):
    """Convolution whose output (r, c) sees inputs in rows r - kh + 1 .. r and columns c - kw + 1 .. c."""

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, int] = (2, 2), stride: int = 1) -> None:
        super().__init__()
        self.kernel = kernel
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, stride=stride)

    def forward(self, x: Tensor) -> Tensor:
        kh, kw = self.kernel
        return self.conv(F.pad(x, (kw - 1, 0, kh - 1, 0)))


class DownShiftedDeconv(nn.Module):
    """Transposed 2x3 convolution, stride 2: fine row r reads coarse row r // 2 (and neighbouring columns)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.deconv = nn.ConvTranspose2d(in_channels, out_channels, (2, 3), stride=2)

    def forward(self, x: Tensor, size: tuple[int, int]) -> Tensor:
        out = self.deconv(x)  # (2H, 2W + 1): fine column c + 1 holds coarse columns (c - 1) // 2 .. (c + 1) // 2
        return out[:, :, : size[0], 1 : 1 + size[1]]


class DownRightShiftedDeconv(nn.Module):
    """Transposed 2x2 convolution, stride 2: fine pixel (r, c) reads coarse pixel (r // 2, c // 2) only."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.deconv = nn.ConvTranspose2d(in_channels, out_channels, (2, 2), stride=2)

    def forward(self, x: Tensor, size: tuple[int, int]) -> Tensor:
        return self.deconv(x)[:, :, : size[0], : size[1]]


class GatedResnet(nn.Module):
    """x + gate(conv(concat_elu(conv(concat_elu(x)) + nin(concat_elu(a))))), with the gate a * sigmoid(b).

    ``conv`` is a down-shifted convolution for the ``u`` stream, down-right-shifted for ``ul``; ``a`` is the
    extra input (the ``u`` stream and/or a shortcut from the down pass), seen at the same position only.
    """

    def __init__(self, channels: int, conv: type[nn.Module], extra_channels: int = 0, dropout: float = 0.0) -> None:
        super().__init__()
        self.conv_in = conv(2 * channels, channels)
        self.nin = nn.Conv2d(2 * extra_channels, channels, 1) if extra_channels else None
        self.dropout = nn.Dropout(dropout)
        self.conv_out = conv(2 * channels, 2 * channels)
        with torch.no_grad():  # start every block close to the identity, as PixelCNN++'s init_scale=0.1 does
            self.conv_out.conv.weight.mul_(0.1)
            self.conv_out.conv.bias.zero_()

    def forward(self, x: Tensor, a: Tensor | None = None) -> Tensor:
        hidden = self.conv_in(concat_elu(x))
        if self.nin is not None and a is not None:
            hidden = hidden + self.nin(concat_elu(a))
        hidden = self.conv_out(self.dropout(concat_elu(hidden)))
        value, gate = hidden.chunk(2, dim=1)
        return x + value * torch.sigmoid(gate)


def _u_block(ch: int, extra: int, dropout: float) -> GatedResnet:
    return GatedResnet(ch, DownShiftedConv, extra, dropout)


def _ul_block(ch: int, extra: int, dropout: float) -> GatedResnet:
    return GatedResnet(ch, DownRightShiftedConv, extra, dropout)


@dataclass(frozen=True)
class PixelCNNPlusPlusHparams(Hparams):
    """PixelCNN++'s size: ``resnets`` gated ResNets per resolution, ``resolutions`` of them, and the
    components of the discretized logistic mixture."""

    owner = "PixelCNN++"

    channels: int = hparam(36, ge=1)
    resnets: int = hparam(2, ge=1)
    resolutions: int = hparam(3, ge=1)
    mixtures: int = hparam(5, ge=1)
    dropout: float = hparam(0.0, ge=0, lt=1)


class PixelCNNPlusPlus(ARModel):
    """Two-stream gated ResNet over several resolutions with a discretized logistic mixture head."""

    hparams_class = PixelCNNPlusPlusHparams

    def __init__(self, config: ModelConfig) -> None:
        hp = PixelCNNPlusPlusHparams.from_hparams(config.hparams)
        super().__init__(config, DiscretizedLogisticMixture(config.num_values, hp.mixtures))
        if config.channels != 1:
            raise ValueError("this PixelCNN++ models single-channel (grey) images")
        self.hp = hp
        ch, blocks, levels, dropout = hp.channels, hp.resnets, hp.resolutions, hp.dropout
        self.levels, self.blocks = levels, blocks
        # The input carries a channel of ones so that the network can tell the zero padding from black.
        self.u_init = DownShiftedConv(2, ch, (2, 3))
        self.ul_init_above = DownShiftedConv(2, ch, (1, 3))
        self.ul_init_left = DownRightShiftedConv(2, ch, (2, 1))
        self.up_u = nn.ModuleList(nn.ModuleList(_u_block(ch, 0, dropout) for _ in range(blocks)) for _ in range(levels))
        self.up_ul = nn.ModuleList(
            nn.ModuleList(_ul_block(ch, ch, dropout) for _ in range(blocks)) for _ in range(levels)
        )
        self.down_u = nn.ModuleList(DownShiftedConv(ch, ch, (2, 3), stride=2) for _ in range(levels - 1))
        self.down_ul = nn.ModuleList(DownRightShiftedConv(ch, ch, (2, 2), stride=2) for _ in range(levels - 1))
        # The up pass (back to full resolution) has one block more per level than the down pass, after the
        # coarsest level, and reads one shortcut per block (the extra one reads the level's input).
        self.dn_u = nn.ModuleList(
            nn.ModuleList(_u_block(ch, ch, dropout) for _ in range(self._up_blocks(level)))
            for level in range(levels)
        )
        self.dn_ul = nn.ModuleList(
            nn.ModuleList(_ul_block(ch, 2 * ch, dropout) for _ in range(self._up_blocks(level)))
            for level in range(levels)
        )
        self.up_sample_u = nn.ModuleList(DownShiftedDeconv(ch, ch) for _ in range(levels - 1))
        self.up_sample_ul = nn.ModuleList(DownRightShiftedDeconv(ch, ch) for _ in range(levels - 1))
        self.head = nn.Conv2d(ch, self.likelihood.params_per_dim, 1)

    def _up_blocks(self, level: int) -> int:
        """Blocks of the up pass at ``level`` (0 = coarsest): one more than the down pass, except there."""
        return self.blocks if level == 0 else self.blocks + 1

    def _first_streams(self, x: Tensor) -> tuple[Tensor, Tensor]:
        image = self.normalize(x)
        image = torch.cat([image, torch.ones_like(image)], dim=1)
        u = shift_down(self.u_init(image))
        ul = shift_down(self.ul_init_above(image)) + shift_right(self.ul_init_left(image))
        return u, ul

    def _down_pass(self, u: Tensor, ul: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """Towards low resolution; returns every intermediate map, the shortcuts of the up pass."""
        us, uls = [u], [ul]
        for level in range(self.levels):
            for u_block, ul_block in zip(self.up_u[level], self.up_ul[level], strict=True):
                u = u_block(u)
                ul = ul_block(ul, u)
                us.append(u)
                uls.append(ul)
            if level < self.levels - 1:
                u = self.down_u[level](u)
                ul = self.down_ul[level](ul)
                us.append(u)
                uls.append(ul)
        return us, uls

    def _up_pass(self, us: list[Tensor], uls: list[Tensor]) -> Tensor:
        """Back to full resolution, each block reading the matching shortcut of the down pass."""
        u, ul = us.pop(), uls.pop()
        for level in range(self.levels):
            for u_block, ul_block in zip(self.dn_u[level], self.dn_ul[level], strict=True):
                u = u_block(u, us.pop())
                ul = ul_block(ul, torch.cat([u, uls.pop()], dim=1))
            if level < self.levels - 1:
                size = tuple(us[-1].shape[-2:])
                u = self.up_sample_u[level](u, size)
                ul = self.up_sample_ul[level](ul, size)
        return ul

    def forward(self, x: Tensor, cond: Tensor | None = None, ordering=None) -> Tensor:
        u, ul = self._first_streams(x)
        us, uls = self._down_pass(u, ul)
        ul = self._up_pass(us, uls)
        out = self.head(F.elu(ul))
        return out.permute(0, 2, 3, 1).unsqueeze(1)


SPEC = ModelSpec(
    name="pixelcnn++",
    title="PixelCNN++",
    description=(
        "PixelCNN with a discretized mixture of logistics: each grey level's probability is the mass of a "
        "mixture of a few logistic distributions over its bin, so neighbouring levels share probability and "
        "256 values cost 3 numbers per component. Down-shifted and down-right-shifted convolution streams "
        "leave no blind spot; gated ResNet blocks run at three resolutions with shortcuts between the "
        "downsampling and upsampling passes, which widens the receptive field at little cost."
    ),
    build=PixelCNNPlusPlus,
    orderings="fixed",
    lecture_section="Lecture 2, PixelCNN++ (discretized logistic mixture, downsampling, shortcuts)",
    data_kinds=("grey",),
    tiny_hparams={"channels": 6, "resnets": 1, "resolutions": 3, "mixtures": 2, "dropout": 0.0},
    paper_nll="2.92 bits/dim on CIFAR-10 (no MNIST figure in the paper)",
)


@hookimpl
def ar_explorer_models():
    return [SPEC]
