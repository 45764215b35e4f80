"""NADE (Larochelle & Murray 2011) as a foreign model is written: it returns probabilities, not logits, as
an image ``(B, C, H, W)``, generates column by column, and has its own ``sample()``. The plugin uses the
shorthands for each: ``Bernoulli(inputs="probs")``, a fixed ``ordering`` passed to ``ARModel``, and the
sampler mode ``"own"``.

    h_i = sigmoid(c + W[:, <i] x_<i),    p(x_i = 1 | x_<i) = sigmoid(b_i + V_i . h_i)
"""

import torch
from torch import nn

from app.core import hookimpl
from app.core.likelihoods import Bernoulli
from app.core.model import ARModel, ModelSpec
from app.core.orderings import columns


class NADE(nn.Module):
    """The network as a zoo ships it: flat binary vectors in its own order, probabilities out."""

    def __init__(self, dims: int, hidden: int) -> None:
        super().__init__()
        self.W = nn.Parameter(0.1 * torch.randn(hidden, dims))
        self.c = nn.Parameter(torch.zeros(hidden))
        self.V = nn.Parameter(0.1 * torch.randn(dims, hidden))
        self.b = nn.Parameter(torch.zeros(dims))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        contributions = x[:, :, None] * self.W.T[None]  # (B, D, hidden): what x_j adds to every later a
        a = self.c + contributions.cumsum(1) - contributions  # the sum over j < i only
        return torch.sigmoid(self.b + (torch.sigmoid(a) * self.V).sum(-1))

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        a = self.c.expand(n, -1).clone()
        out = torch.zeros(n, self.b.numel(), device=self.b.device)
        for i in range(self.b.numel()):
            p = torch.sigmoid(self.b[i] + torch.sigmoid(a) @ self.V[i])
            out[:, i] = torch.bernoulli(p)
            a = a + out[:, i : i + 1] * self.W[:, i]
        return out


class ColumnNADE(ARModel):
    """The adapter: reorders pixels into the network's order and back."""

    def __init__(self, config):
        order = columns(config.height, config.width)
        super().__init__(config, Bernoulli(inputs="probs"), ordering=order)
        self.register_buffer("order", torch.as_tensor(order.flat, dtype=torch.long), persistent=False)
        self.net = NADE(config.num_dims, int(config.hparams.get("hidden", 32)))

    def forward(self, x, cond=None, ordering=None):
        b = x.shape[0]
        probs = torch.empty(b, self.config.num_dims, dtype=x.dtype, device=x.device)
        probs[:, self.order] = self.net(x.reshape(b, -1)[:, self.order])
        return probs.reshape(b, *self.shape)  # (B, C, H, W): one parameter per dimension

    def own_sample(self, n, cond=None):
        images = torch.empty(n, self.config.num_dims, device=self.order.device)
        images[:, self.order] = self.net.sample(n)
        return images.reshape(n, *self.shape)


SPEC = ModelSpec(
    name="column-nade",
    title="NADE, column by column",
    description="NADE wrapped from a model zoo: probabilities out, a column ordering, its own sampler.",
    build=ColumnNADE,
    orderings="fixed",
    lecture_section="Lecture 2, NADE",
    data_kinds=("binary",),
    default_hparams={"hidden": 500},
    tiny_hparams={"hidden": 8},
    sampler_modes=("own",),
)


@hookimpl
def ar_explorer_models():
    return [SPEC]
