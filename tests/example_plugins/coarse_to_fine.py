"""A third-party model that samples in two stages: every second pixel of every second row first (a coarse
grid, one pixel per network call), then all the others. It declares its stages with ``sampling_stages()``
alone, so the Stages view shows it as it shows the built-in multiscale PixelCNN.

    p(x_i = 1 | x_<i) = sigmoid(b_i + sum_{j<i} W_ij x_j),   the order: the coarse grid, then the rest
"""

import numpy as np
import torch
from torch import nn

from app.core import hookimpl
from app.core.likelihoods import Bernoulli
from app.core.model import ARModel, ModelSpec
from app.core.orderings import Ordering
from app.core.stages import Stage


def coarse_first(height: int, width: int) -> Ordering:
    """The positions of the stride-2 grid in raster order, then the other positions in raster order."""
    coarse = [(r, c) for r in range(0, height, 2) for c in range(0, width, 2)]
    rest = [(r, c) for r in range(height) for c in range(width) if r % 2 or c % 2]
    return Ordering(height, width, np.array(coarse + rest), "coarse-first")


class CoarseToFine(ARModel):
    """An FVSBN over the coarse-first ordering."""

    def __init__(self, config):
        super().__init__(config, Bernoulli(), ordering=coarse_first(config.height, config.width))
        d = config.num_dims
        rank = torch.as_tensor(self.ordering.rank.reshape(-1).copy())
        self.weight = nn.Parameter(torch.zeros(d, d))
        self.bias = nn.Parameter(torch.zeros(d))
        # Dimension i sees dimension j only where j comes earlier in the ordering.
        self.register_buffer("mask", (rank[None, :] < rank[:, None]).float(), persistent=False)

    def forward(self, x, cond=None, ordering=None):
        b = x.shape[0]
        logits = self.normalize(x).reshape(b, -1) @ (self.weight * self.mask).T + self.bias
        return logits.reshape(b, *self.shape, 1)

    def sampling_stages(self):
        _, h, w = self.shape
        coarse = len(range(0, h, 2)) * len(range(0, w, 2))
        return [
            Stage("coarse grid", "every second pixel, one per network call", (1, len(range(0, h, 2)),
                  len(range(0, w, 2))), self.num_values, coarse, coarse, stride=2),
            Stage("fine", "the other pixels, one per network call", (1, h, w), self.num_values, h * w - coarse,
                  h * w - coarse),
        ]


SPEC = ModelSpec(
    name="coarse-to-fine",
    title="Coarse-to-fine FVSBN",
    description="A fully visible sigmoid belief network that draws a coarse grid of pixels before the others.",
    build=CoarseToFine,
    orderings="fixed",
    lecture_section="Lecture 2, orderings",
    data_kinds=("binary",),
)


@hookimpl
def ar_explorer_models():
    return [SPEC]
