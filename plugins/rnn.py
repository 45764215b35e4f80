"""An RNN over the pixel sequence (the lecture's first image model), with or without the pixel location.

An LSTM (or GRU) reads the image one pixel at a time in its ordering: at step t its input is the value of the
pixel before (a start token at the first step), its hidden state summarises every pixel so far, and a linear
head turns the state into the distribution of pixel t. The weights are shared across steps, so the model has
to work out *where* in the image it is from the sequence alone; "rnn-location" also gives it the row and
column of the pixel it predicts, which the lecture shows helps a lot. Sampling carries the hidden state from
step to step (mode "cached"): one cell step per pixel instead of re-reading the whole sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from app.core import hookimpl
from app.core.hparams import Hparams, hparam
from app.core.model import ModelConfig, ModelSpec
from app.core.orderings import Ordering
from plugins.sequence_layers import CachedSequenceSampler, SequenceModel

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}
#: The hidden state an RNN carries between steps: ``(h, c)`` for an LSTM, ``h`` for a GRU.
RNNState = Tensor | tuple[Tensor, Tensor]


@dataclass(frozen=True)
class RNNHparams(Hparams):
    """The recurrent cell (``lstm`` or ``gru``), its hidden units and its stacked layers."""

    owner = "RNN"

    cell: str = hparam("lstm", choices=tuple(CELLS))
    hidden: int = hparam(256, ge=1)
    layers: int = hparam(2, ge=1)


class PixelRNN(SequenceModel):
    """A stacked LSTM or GRU over the step tokens (and locations), then a linear head per step."""

    def __init__(self, config: ModelConfig, use_location: bool = False) -> None:
        super().__init__(config, use_location)
        hp = self.hp = RNNHparams.from_hparams(config.hparams)
        hidden = hp.hidden
        self.rnn = CELLS[hp.cell](self.token_size + self.location_size, hidden, hp.layers, batch_first=True)
        self.head = nn.Linear(hidden, self.likelihood.params_per_dim)

    def inputs(self, tokens: Tensor, locations: Tensor) -> Tensor:
        """Step tokens ``(B, T, K + 1)`` with the locations ``(T, L)`` of their steps appended."""
        if not self.use_location:
            return tokens
        return torch.cat([tokens, locations.to(tokens.dtype).expand(tokens.shape[0], -1, -1)], dim=-1)

    def run(self, inputs: Tensor, state: RNNState | None = None) -> tuple[Tensor, RNNState]:
        """Run the recurrence over ``inputs`` ``(B, T, F)`` from ``state``; returns the outputs and the new state.

        It runs in float32 even under mixed precision: recurrent kernels have no bfloat16 path on every device.
        """
        with torch.autocast(inputs.device.type, enabled=False):
            return self.rnn(inputs.float(), state)

    def sequence_params(self, tokens: Tensor) -> Tensor:
        out, _ = self.run(self.inputs(tokens, self.locations))
        return self.head(out)

    def cached_sampler(self, x: Tensor, cond: Tensor | None, ordering: Ordering | None) -> CachedSequenceSampler:
        return RNNStateSampler(self, x, cond, ordering)


class RNNStateSampler(CachedSequenceSampler):
    """Carries the RNN's hidden state: each step is one cell update on the previous pixel's value."""

    model: PixelRNN

    def reset(self) -> None:
        self.state = None

    def advance_token(self, step: int, token: Tensor, location: Tensor) -> Tensor:
        inputs = self.model.inputs(token.unsqueeze(1), location.unsqueeze(0))
        out, self.state = self.model.run(inputs, self.state)
        return self.model.head(out[:, 0])


def build_rnn(config: ModelConfig) -> PixelRNN:
    return PixelRNN(config, use_location=False)


def build_rnn_location(config: ModelConfig) -> PixelRNN:
    return PixelRNN(config, use_location=True)


_COMMON = dict(
    orderings="build",
    lecture_section="Lecture 2, RNN-based autoregressive models (pixel sequence, with and without location)",
    data_kinds=("binary", "grey", "colour"),
    hparams_class=RNNHparams,
    tiny_hparams={"cell": "lstm", "hidden": 8, "layers": 1},
    sampler_modes=("cached",),
)

SPEC = ModelSpec(
    name="rnn",
    title="RNN",
    description=(
        "An LSTM reads the image as a sequence of pixels in its ordering: the input at each step is the previous "
        "pixel's value, the hidden state carries everything seen so far, and a shared head gives the next "
        "pixel's distribution. The same weights serve every step, so the model must infer where it is in the "
        "image from the sequence alone. Sampling carries the hidden state, one cell step per pixel."
    ),
    build=build_rnn,
    **_COMMON,
)

LOCATION_SPEC = ModelSpec(
    name="rnn-location",
    title="RNN with pixel location",
    description=(
        "The same LSTM over the pixel sequence, with the row and column of the pixel being predicted appended "
        "to every input. Knowing where it is lets the shared weights behave differently at the border and in "
        "the middle of the digit, which lowers the NLL markedly: the lecture's example of adding position "
        "information to a weight-shared model."
    ),
    build=build_rnn_location,
    **_COMMON,
)


@hookimpl
def ar_explorer_models():
    return [SPEC, LOCATION_SPEC]
