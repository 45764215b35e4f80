"""A third-party convolutional model composed only of the core's layers, with no code of its own for caching.

Its network is one ``nn.Sequential`` of masked convolutions, residual blocks and activations; declaring it
(``cache_program``) and listing the mode ``cached`` is all it takes for the core's cached engine to sample it
one new position per layer and step.
"""

from dataclasses import dataclass

from torch import nn

from app.core import hookimpl
from app.core.cache_program import CacheProgram
from app.core.hparams import Hparams, hparam
from app.core.layers import MaskedConv2d, Residual
from app.core.likelihoods import default_likelihood
from app.core.model import ARModel, ModelSpec


@dataclass(frozen=True)
class MaskedConvNetHparams(Hparams):
    owner = "Masked ConvNet"

    channels: int = hparam(24, ge=1)
    blocks: int = hparam(2, ge=0)
    kernel: int = hparam(3, ge=1, odd=True)


class MaskedConvNet(ARModel):
    """Mask A, residual mask-B blocks (ReLU, conv, Tanh, 1x1 conv), then a 1x1 head: nothing about caching."""

    hparams_class = MaskedConvNetHparams

    def __init__(self, config):
        super().__init__(config, default_likelihood(config.num_values))
        hp = MaskedConvNetHparams.from_hparams(config.hparams)
        c, ch, k = config.channels, max(config.channels, hp.channels - hp.channels % config.channels), hp.kernel
        out = c * self.likelihood.params_per_dim
        self.net = nn.Sequential(
            MaskedConv2d(c, ch, 5, "A", groups=c),
            *(Residual(nn.ReLU(), MaskedConv2d(ch, ch, k, "B", groups=c), nn.Tanh(),
                       MaskedConv2d(ch, ch, 1, "B", groups=c)) for _ in range(hp.blocks)),
            nn.ReLU(),
            MaskedConv2d(ch, out, 1, "B", groups=c),
        )

    def forward(self, x, cond=None, ordering=None):
        b, c, h, w = x.shape
        out = self.net(self.normalize(x))  # (B, C * P, H, W): channel group g holds channel g's parameters
        return out.reshape(b, c, -1, h, w).permute(0, 1, 3, 4, 2)

    def cache_program(self):
        return CacheProgram.sequential(self.net)


SPEC = ModelSpec(
    name="masked-convnet",
    title="Masked ConvNet",
    description="A plugin's PixelCNN-like stack of the core's masked layers, sampled by the core's cached engine.",
    build=MaskedConvNet,
    data_kinds=("binary", "grey", "colour"),
    sampler_modes=("cached",),
    tiny_hparams={"channels": 6, "blocks": 1, "kernel": 3},
)


@hookimpl
def ar_explorer_models():
    return [SPEC]
