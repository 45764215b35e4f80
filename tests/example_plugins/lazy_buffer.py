"""A model that makes a buffer on its first forward pass, as pytorch-generative's models do: the checkpoint
of a model that has run holds a tensor that a freshly built model lacks, so it cannot be loaded. A model that
never ran saves and loads fine, which is how a kit that saves before any forward pass is fooled."""

import torch
from torch import nn

from app.core import hookimpl
from app.core.likelihoods import Bernoulli
from app.core.model import ARModel, ModelSpec


class LazyFVSBN(ARModel):
    def __init__(self, config):
        super().__init__(config, Bernoulli())
        d = config.num_dims
        self.weight = nn.Parameter(torch.zeros(d, d))
        self.bias = nn.Parameter(torch.zeros(d))

    def forward(self, x, cond=None, ordering=None):
        if "mask" not in self._buffers:  # made once, on first use
            d = self.config.num_dims
            self.register_buffer("mask", torch.tril(torch.ones(d, d, device=x.device), diagonal=-1))
        b = x.shape[0]
        logits = self.normalize(x).reshape(b, -1) @ (self.weight * self.mask).T + self.bias
        return logits.reshape(b, *self.shape, 1)


SPEC = ModelSpec(
    name="lazy-fvsbn",
    title="FVSBN with a buffer made on first use",
    description="A fully visible sigmoid belief net whose mask is registered on its first forward pass.",
    build=LazyFVSBN,
    data_kinds=("binary",),
)


@hookimpl
def ar_explorer_models():
    return [SPEC]
