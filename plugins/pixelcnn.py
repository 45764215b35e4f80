"""PixelCNN (van den Oord et al., 2016): a stack of masked convolutions in raster order.

The first layer uses mask A (the centre pixel is hidden), later layers mask B (the centre's own features,
which already exclude the pixel itself, are visible). Stacking such masks leaves a *blind spot*: pixels above
and to the right of the current one never reach it, however deep the stack. Gated PixelCNN removes it.
Colour images use channel groups at the centre (R before G before B).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from app.core import hookimpl
from app.core.cache_program import INPUT, Activation, Add, CacheProgram, Conv
from app.core.hparams import Hparams, hparam
from app.core.layers import ClassBias, MaskedConv2d
from app.core.likelihoods import default_likelihood, make_likelihood
from app.core.model import ARModel, ModelConfig, ModelSpec


@dataclass(frozen=True)
class PixelCNNHparams(Hparams):
    """PixelCNN's size: residual mask-B layers of ``channels`` features, then a 1x1 head."""

    owner = "PixelCNN"

    channels: int = hparam(64, ge=1)
    layers: int = hparam(5, ge=0)
    kernel: int = hparam(7, ge=1, odd=True)  # masked kernels need a centre pixel
    first_kernel: int = hparam(7, ge=1, odd=True)
    head_channels: int = hparam(128, ge=1)
    likelihood: str | None = hparam(None, listed=False)  # a head of app.core.likelihoods by name
    likelihood_args: dict[str, Any] = hparam(factory=dict, listed=False)


def likelihood_for(config: ModelConfig, hp: Hparams):
    """The head ``hp.likelihood`` names (with ``hp.likelihood_args``), else the data's default head."""
    name = getattr(hp, "likelihood", None)
    if name:
        return make_likelihood(name, config.num_values, **getattr(hp, "likelihood_args", {}))
    return default_likelihood(config.num_values)


class PixelCNN(ARModel):
    """7x7 mask-A convolution, residual mask-B layers, then two 1x1 layers to the head's parameters."""

    hparams_class: type[Hparams] = PixelCNNHparams

    def __init__(self, config: ModelConfig) -> None:
        hp = self.hparams_class.from_hparams(config.hparams)
        super().__init__(config, likelihood_for(config, hp))
        self.hp = hp
        c = config.channels
        ch = max(c, hp.channels - hp.channels % c)  # divisible by the channel groups
        layers, kernel, first_kernel = hp.layers, hp.kernel, hp.first_kernel
        head = max(c, hp.head_channels - hp.head_channels % c)
        self.groups = c
        self.first = MaskedConv2d(c, ch, first_kernel, "A", groups=c)
        self.layers = nn.ModuleList(MaskedConv2d(ch, ch, kernel, "B", groups=c) for _ in range(layers))
        self.head1 = MaskedConv2d(ch, head, 1, "B", groups=c)
        self.head2 = MaskedConv2d(head, c * self.likelihood.params_per_dim, 1, "B", groups=c)
        cond = config.condition
        self.class_bias = None
        if cond is not None and cond.kind == "class":
            self.class_bias = nn.ModuleList(ClassBias(cond.num_classes, ch) for _ in range(layers + 1))

    def forward(self, x: Tensor, cond: Tensor | None = None, ordering=None) -> Tensor:
        b, c, h, w = x.shape
        hidden = self.first(self.normalize(x))
        if self.class_bias is not None:
            hidden = hidden + self.class_bias[0](cond)
        for i, layer in enumerate(self.layers):
            update = layer(F.relu(hidden))
            if self.class_bias is not None:
                update = update + self.class_bias[i + 1](cond)
            hidden = hidden + update
        out = self.head2(F.relu(self.head1(F.relu(hidden))))
        # Channel group g holds the parameters of colour channel g.
        return out.reshape(b, c, -1, h, w).permute(0, 1, 3, 4, 2)

    def cache_program(self) -> CacheProgram | None:
        """:meth:`forward` as a program of masked layers: the core's cached engine samples it (Fast PixelCNN).

        None for a subclass that changes the forward pass (it samples naively)."""
        if type(self).forward is not PixelCNN.forward:
            return None

        def bias(i: int):
            return self.class_bias[i] if self.class_bias is not None else None

        ops = [Conv(self.first, INPUT, "h0", bias(0))]
        for i, layer in enumerate(self.layers):
            ops += [Activation("relu", f"h{i}", f"r{i}"), Conv(layer, f"r{i}", f"u{i}", bias(i + 1)),
                    Add(f"h{i}", f"u{i}", f"h{i + 1}")]
        top = f"h{len(self.layers)}"
        ops += [Activation("relu", top, "r"), Conv(self.head1, "r", "head"), Activation("relu", "head", "rhead"),
                Conv(self.head2, "rhead", "out")]
        return CacheProgram(tuple(ops), "out")


SPEC = ModelSpec(
    name="pixelcnn",
    title="PixelCNN",
    description=(
        "Masked convolutions in raster order: every conditional p(x_i | x_<i) comes from one convolutional "
        "forward pass, so training is parallel while sampling stays one pixel at a time. The stacked masks "
        "leave a blind spot above and to the right of each pixel: click a pixel to see it."
    ),
    build=PixelCNN,
    orderings="fixed",
    lecture_section="Lecture 2, PixelCNN (masked convolutions, blind spot)",
    data_kinds=("binary", "grey", "colour"),
    sampler_modes=("cached",),
    tiny_hparams={"channels": 12, "layers": 2, "kernel": 3, "first_kernel": 3, "head_channels": 12},
    paper_nll="81.30",
)


@hookimpl
def ar_explorer_models():
    return [SPEC]
