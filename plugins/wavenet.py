"""WaveNet (van den Oord et al., 2016) over the pixel sequence, with or without the pixel location.

A stack of causal 1-D convolutions of kernel 2 whose dilation doubles from layer to layer (1, 2, 4, ..., then
again), so the receptive field grows exponentially with depth: 10 layers already see 1024 steps, more than
the 784 pixels of MNIST. Each layer is a gated residual block, tanh(W_f * x) * sigmoid(W_g * x), with a
residual connection to the next layer and a skip connection to the output head. "wavenet-location" gives
every gate the row and column of the pixel being predicted, the way WaveNet is locally conditioned.

Sampling with mode "cached" is Fast WaveNet (Paine et al., 2016): each layer keeps a queue of its last
``dilation`` inputs, so a new step pops the one input it needs from each queue and pushes its own — one
column of work per layer per pixel, instead of recomputing the whole sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from app.core import hookimpl
from app.core.hparams import Hparams, hparam
from app.core.model import ModelConfig, ModelSpec
from app.core.orderings import Ordering
from plugins.sequence_layers import CachedSequenceSampler, SequenceModel


def dilation_schedule(cycle: int, stacks: int) -> list[int]:
    """``1, 2, 4, ..., 2**(cycle-1)``, repeated ``stacks`` times."""
    if cycle < 1 or stacks < 1:
        raise ValueError("the dilation cycle and the number of stacks must be at least 1")
    return [2**i for i in range(cycle)] * stacks


def shift(h: Tensor, steps: int) -> Tensor:
    """``h`` ``(B, T, C)`` moved ``steps`` later along the sequence (zeros enter at the start)."""
    return F.pad(h, (0, 0, steps, 0))[:, : h.shape[1]]


class CausalConv1d(nn.Module):
    """Kernel-2 dilated causal convolution over ``(B, T, C)``: out[t] = W [x[t - dilation], x[t]] + b.

    Written as one linear map of the two taps side by side, so that the full sequence and a single step
    (:meth:`step`, used by the cached sampler) run the very same arithmetic.
    """

    def __init__(self, in_channels: int, out_channels: int, dilation: int = 1) -> None:
        super().__init__()
        self.dilation = dilation
        self.taps = nn.Linear(2 * in_channels, out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.taps(torch.cat([shift(x, self.dilation), x], dim=-1))

    def step(self, past: Tensor, current: Tensor) -> Tensor:
        """One output from the input ``dilation`` steps ago and the current one, each ``(B, C_in)``."""
        return self.taps(torch.cat([past, current], dim=-1))


class GatedResidualLayer(nn.Module):
    """Dilated causal convolution, gate tanh * sigmoid, then a 1x1 residual and a 1x1 skip output."""

    def __init__(self, channels: int, skip_channels: int, dilation: int, location_size: int) -> None:
        super().__init__()
        self.dilation = dilation
        self.conv = CausalConv1d(channels, 2 * channels, dilation)
        self.location = nn.Linear(location_size, 2 * channels, bias=False) if location_size else None
        self.residual = nn.Linear(channels, channels)
        self.skip = nn.Linear(channels, skip_channels)

    def forward(self, h: Tensor, locations: Tensor) -> tuple[Tensor, Tensor]:
        """``h`` ``(B, T, C)`` and ``locations`` ``(T, L)`` to the next ``h`` and this layer's skip output."""
        return self._gated(self.conv(h), h, locations)

    def step(self, h: Tensor, past: Tensor, location: Tensor) -> tuple[Tensor, Tensor]:
        """The same for one step: ``h`` and ``past`` ``(B, C)``, this step's input and the one ``dilation`` ago."""
        return self._gated(self.conv.step(past, h), h, location)

    def _gated(self, pre: Tensor, h: Tensor, location: Tensor) -> tuple[Tensor, Tensor]:
        if self.location is not None:
            pre = pre + self.location(location.to(pre.dtype))
        a, b = pre.chunk(2, dim=-1)
        gated = torch.tanh(a) * torch.sigmoid(b)
        return h + self.residual(gated), self.skip(gated)


@dataclass(frozen=True)
class WaveNetHparams(Hparams):
    """WaveNet's size: ``stacks`` cycles of ``dilation_cycle`` gated layers (dilations 1, 2, 4, ...)."""

    owner = "WaveNet"

    channels: int = hparam(64, ge=1)
    skip_channels: int = hparam(128, ge=1)
    head_channels: int = hparam(128, ge=1)
    dilation_cycle: int = hparam(10, ge=1)
    stacks: int = hparam(2, ge=1)


class WaveNet(SequenceModel):
    """Causal input convolution, gated residual layers with doubling dilations, skip sum, 1x1 head."""

    def __init__(self, config: ModelConfig, use_location: bool = False) -> None:
        super().__init__(config, use_location)
        hp = self.hp = WaveNetHparams.from_hparams(config.hparams)
        channels, skip, head = hp.channels, hp.skip_channels, hp.head_channels
        self.dilations = dilation_schedule(hp.dilation_cycle, hp.stacks)
        self.input = CausalConv1d(self.token_size, channels, 1)
        self.layers = nn.ModuleList(
            GatedResidualLayer(channels, skip, d, self.location_size) for d in self.dilations
        )
        self.head1 = nn.Linear(skip, head)
        self.head2 = nn.Linear(head, self.likelihood.params_per_dim)

    @property
    def receptive_field(self) -> int:
        """How many steps back (this one included) an output can see: 1 + the input layer + sum of dilations."""
        return 2 + sum(self.dilations)

    def sequence_params(self, tokens: Tensor) -> Tensor:
        h = self.input(tokens)
        skip = 0
        for layer in self.layers:
            h, s = layer(h, self.locations)
            skip = skip + s
        return self.head(skip)

    def head(self, skip: Tensor) -> Tensor:
        """Sum of the skip outputs to head parameters: ReLU, 1x1, ReLU, 1x1."""
        return self.head2(F.relu(self.head1(F.relu(skip))))

    def cached_sampler(self, x: Tensor, cond: Tensor | None, ordering: Ordering | None) -> CachedSequenceSampler:
        return FastWaveNetSampler(self, x, cond, ordering)


class FastWaveNetSampler(CachedSequenceSampler):
    """Fast WaveNet: per layer, a queue (ring buffer) of the last ``dilation`` inputs of that layer."""

    model: WaveNet

    def reset(self) -> None:
        b = self.x.shape[0]
        model = self.model
        channels = model.layers[0].residual.in_features if len(model.layers) else model.input.taps.out_features
        like = dict(device=self.x.device, dtype=model._dtype())
        self.input_queue = torch.zeros(b, 1, model.token_size, **like)
        self.queues = [torch.zeros(b, d, channels, **like) for d in model.dilations]

    def advance_token(self, step: int, token: Tensor, location: Tensor) -> Tensor:
        model = self.model
        token = token.to(self.input_queue.dtype)
        h = model.input.step(self.input_queue[:, 0].clone(), token)
        self.input_queue[:, 0] = token
        skip = 0
        for layer, queue in zip(model.layers, self.queues, strict=True):
            slot = step % layer.dilation
            past = queue[:, slot].clone()  # this layer's input `dilation` steps ago (zeros before step 0)
            queue[:, slot] = h
            h, s = layer.step(h, past, location)
            skip = skip + s
        return model.head(skip)


def build_wavenet(config: ModelConfig) -> WaveNet:
    return WaveNet(config, use_location=False)


def build_wavenet_location(config: ModelConfig) -> WaveNet:
    return WaveNet(config, use_location=True)


_COMMON = dict(
    orderings="build",
    lecture_section="Lecture 2, WaveNet (dilated causal convolutions, gated residual blocks)",
    data_kinds=("binary", "grey", "colour"),
    hparams_class=WaveNetHparams,
    tiny_hparams={"channels": 8, "skip_channels": 8, "head_channels": 8, "dilation_cycle": 3, "stacks": 1},
    sampler_modes=("cached",),
)

SPEC = ModelSpec(
    name="wavenet",
    title="WaveNet",
    description=(
        "Dilated causal 1-D convolutions over the pixel sequence: the dilation doubles from layer to layer, so "
        "the receptive field grows exponentially with depth and 10 layers already cover a whole MNIST digit. "
        "Gated residual blocks (tanh * sigmoid) feed skip connections to the head; training is one parallel "
        "pass, and Fast WaveNet sampling keeps a queue of past activations per layer."
    ),
    build=build_wavenet,
    **_COMMON,
)

LOCATION_SPEC = ModelSpec(
    name="wavenet-location",
    title="WaveNet with pixel location",
    description=(
        "The same dilated causal convolutions, with the row and column of the pixel being predicted fed to every "
        "gate (WaveNet's local conditioning). A 1-D convolution shares its weights along the sequence and cannot "
        "tell the end of a row from the middle; the location tells it, as it does the RNN."
    ),
    build=build_wavenet_location,
    **_COMMON,
)


@hookimpl
def ar_explorer_models():
    return [SPEC, LOCATION_SPEC]
