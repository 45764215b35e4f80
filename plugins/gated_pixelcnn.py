"""Gated PixelCNN (van den Oord et al., 2016, "Conditional Image Generation with PixelCNN Decoders").

Two stacks remove the blind spot: a vertical stack sees every row above (all columns within its kernel),
a horizontal stack sees the pixels to the left on the current row; the vertical stack feeds the horizontal one
after a one-row shift. Each layer uses the gated activation tanh(W_f * x) * sigmoid(W_g * x), with residual
connections on the horizontal stack and skip connections to the output. A class label can enter every layer
as a learned bias.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

from app.core import hookimpl
from app.core.hparams import Hparams, hparam
from app.core.model import ARModel, ModelConfig, ModelSpec
from plugins.fast_pixelcnn import GatedPixelCNNProgram, make_cached_sampler, register_family
from plugins.layers import ClassBias, DownConv, RightConv, gate, shift_down, shift_right
from plugins.pixelcnn import likelihood_for


class GatedLayer(nn.Module):
    def __init__(self, in_channels: int, channels: int, kernel: int, first: bool, num_classes: int = 0) -> None:
        super().__init__()
        self.first = first
        self.v_conv = DownConv(in_channels, 2 * channels, kernel)
        self.h_conv = RightConv(in_channels, 2 * channels, kernel)
        self.v_to_h = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.h_out = nn.Conv2d(channels, channels, 1)
        self.skip = nn.Conv2d(channels, channels, 1)
        self.class_bias = ClassBias(num_classes, 2 * channels) if num_classes else None

    def forward(self, v: Tensor, h: Tensor, cond: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        v_pre = self.v_conv(v)
        h_pre = self.h_conv(h)
        if self.first:
            # Mask A: the horizontal stack must not see the current pixel, so it looks one column further left.
            h_pre = shift_right(h_pre)
        # The vertical stack at row r has seen rows <= r: shifted down, it gives rows < r to the horizontal one.
        h_pre = h_pre + self.v_to_h(shift_down(v_pre))
        if self.class_bias is not None:
            bias = self.class_bias(cond)
            v_pre = v_pre + bias
            h_pre = h_pre + bias
        v_out = gate(v_pre)
        gated = gate(h_pre)
        h_out = self.h_out(gated)
        if not self.first:
            h_out = h_out + h
        return v_out, h_out, self.skip(gated)


@dataclass(frozen=True)
class GatedPixelCNNHparams(Hparams):
    """Gated PixelCNN's size: ``layers`` gated layers of ``channels`` features, skip sum, a 1x1 head."""

    owner = "Gated PixelCNN"

    channels: int = hparam(64, ge=1)
    layers: int = hparam(10, ge=1)
    kernel: int = hparam(5, ge=1, odd=True)  # the stacks' kernels need a centre column
    first_kernel: int = hparam(7, ge=1, odd=True)
    head_channels: int = hparam(128, ge=1)


class GatedPixelCNN(ARModel):
    """Vertical and horizontal stacks of gated layers, skip connections, a 1x1 head."""

    hparams_class: type[Hparams] = GatedPixelCNNHparams

    def __init__(self, config: ModelConfig) -> None:
        hp = self.hparams_class.from_hparams(config.hparams)
        super().__init__(config, likelihood_for(config, hp))
        if config.channels != 1:
            raise ValueError("this Gated PixelCNN models single-channel images (binary or grey)")
        self.hp = hp
        ch = hp.channels
        num_classes = config.condition.num_classes if config.condition and config.condition.kind == "class" else 0
        self.layers = nn.ModuleList(
            GatedLayer(1 if i == 0 else ch, ch, hp.kernel if i else hp.first_kernel, i == 0, num_classes)
            for i in range(hp.layers)
        )
        head = hp.head_channels
        self.head1 = nn.Conv2d(ch, head, 1)
        self.head2 = nn.Conv2d(head, self.likelihood.params_per_dim, 1)

    def forward(self, x: Tensor, cond: Tensor | None = None, ordering=None) -> Tensor:
        v = h = self.normalize(x)
        skip = 0
        for layer in self.layers:
            v, h, s = layer(v, h, cond)
            skip = skip + s
        out = self.head2(F.relu(self.head1(F.relu(skip))))
        return out.permute(0, 2, 3, 1).unsqueeze(1)

    def make_sampler(self, x: Tensor, cond: Tensor | None = None, ordering=None, mode: str = "naive"):
        """``cached``: fast sampling by caching activations (:mod:`plugins.fast_pixelcnn`)."""
        if mode == "cached":
            return make_cached_sampler(self, x, cond, ordering)
        return super().make_sampler(x, cond, ordering, mode)


register_family(GatedPixelCNN, GatedPixelCNNProgram)

SPEC = ModelSpec(
    name="gated-pixelcnn",
    title="Gated PixelCNN",
    description=(
        "PixelCNN without the blind spot: a vertical stack sees all rows above, a horizontal stack the pixels to "
        "the left, and gated activations tanh * sigmoid with residual and skip connections give it the "
        "modelling power of PixelRNN at the speed of a convolution."
    ),
    build=GatedPixelCNN,
    orderings="fixed",
    lecture_section="Lecture 2, Gated PixelCNN (vertical and horizontal stacks)",
    data_kinds=("binary", "grey"),
    sampler_modes=("cached",),
    tiny_hparams={"channels": 8, "layers": 3, "kernel": 3, "first_kernel": 3, "head_channels": 8},
)


@hookimpl
def ar_explorer_models():
    return [SPEC]
