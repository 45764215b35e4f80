"""A fully visible sigmoid belief net whose hand-built mask has one wrong entry: at 28x28, pixel 400 sees
pixel 401. On the kit's small instance there is no pixel 400, so every exact check passes there; only a check
at the real size can find it. ``hparams["leak"]`` moves the wrong entry (``[seeing, seen]``)."""

import torch
from torch import nn

from app.core import hookimpl
from app.core.likelihoods import Bernoulli
from app.core.model import ARModel, ModelSpec


class LeakyFVSBN(ARModel):
    def __init__(self, config):
        super().__init__(config, Bernoulli())
        d = config.num_dims
        self.weight = nn.Parameter(torch.zeros(d, d))
        self.bias = nn.Parameter(torch.zeros(d))
        mask = torch.tril(torch.ones(d, d), diagonal=-1)
        seeing, seen = config.hparams.get("leak", (400, 401))
        if max(seeing, seen) < d:  # the bug only exists where the image has those pixels
            mask[seeing, seen] = 1.0
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x, cond=None, ordering=None):
        b = x.shape[0]
        logits = self.normalize(x).reshape(b, -1) @ (self.weight * self.mask).T + self.bias
        return logits.reshape(b, *self.shape, 1)


SPEC = ModelSpec(
    name="leaky-fvsbn",
    title="FVSBN with a mask bug at pixel 400",
    description="A fully visible sigmoid belief net whose pixel 400 sees pixel 401.",
    build=LeakyFVSBN,
    data_kinds=("binary",),
)


@hookimpl
def ar_explorer_models():
    return [SPEC]
