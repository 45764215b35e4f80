"""MADE: Masked Autoencoder for Distribution Estimation (Germain et al., 2015).

An MLP whose weight masks make output d depend only on inputs that precede d in an ordering chosen when the
model is built. Several connectivity masks (hidden-unit degrees) can be trained together, one per batch, and
ensembled at test time: the ensemble is the mixture (1/M) sum_m p_m(x), whose conditionals are computed
exactly (each mask weighted by how well it explained the dimensions already seen), so the ensemble is itself
an autoregressive model with the same ordering.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from app.core import hookimpl
from app.core.hparams import Hparams, hparam
from app.core.likelihoods import Categorical
from app.core.model import ARModel, ModelConfig, ModelSpec


class MaskedLinear(nn.Linear):
    """A linear layer with one of several fixed connectivity masks (non-persistent: rebuilt from the seed)."""

    def __init__(self, in_features: int, out_features: int, masks: Tensor) -> None:
        super().__init__(in_features, out_features)
        self.register_buffer("masks", masks, persistent=False)  # (M, out, in)

    def forward(self, x: Tensor, mask_index: int) -> Tensor:
        return F.linear(x, self.weight * self.masks[mask_index], self.bias)


@dataclass(frozen=True)
class MADEHparams(Hparams):
    """MADE's size: its hidden layers, its connectivity masks, and whether outputs also see inputs directly."""

    owner = "MADE"

    hidden: tuple[int, ...] = hparam((500,), ge=1)
    num_masks: int = hparam(1, ge=1)
    mask_seed: int = hparam(0, ge=0)
    # Checkpoints from before the direct connections were added have none.
    direct: bool = hparam(True, absent=False)


class MADE(ARModel):
    """MADE over the C*H*W dimensions of an image, in the ordering chosen at build time."""

    hparams_class = MADEHparams

    def __init__(self, config: ModelConfig) -> None:
        k = config.num_values
        super().__init__(config, Categorical(k))
        hp = self.hp = MADEHparams.from_hparams(config.hparams)
        hidden = list(hp.hidden)
        self.num_masks = hp.num_masks
        seed = hp.mask_seed
        c, h, w = config.shape
        d = c * h * w
        # Degree of each input dimension = its step in the ordering (positions, then channels within one).
        step_of_position = self.ordering.rank.reshape(-1)  # (H*W,)
        in_degree = np.concatenate([step_of_position * c + ch for ch in range(c)])  # flat dim order c, r, col
        self.register_buffer("in_degree", torch.as_tensor(in_degree), persistent=False)
        self.out_params = k if k > 2 else 1
        sizes = [d, *hidden, d * self.out_params]
        # The layers and their masks are allocated first, through torch, so that a config asking for more than
        # it should (a checkpoint's, say) is stopped by the loader's budget before any mask is computed.
        self.layers = nn.ModuleList(
            MaskedLinear(sizes[i], sizes[i + 1], torch.zeros(self.num_masks, sizes[i + 1], sizes[i]))
            for i in range(len(sizes) - 1)
        )
        rng = np.random.default_rng(seed)
        for m in range(self.num_masks):
            prev = in_degree
            for layer, size in enumerate(hidden):
                low = int(prev.min()) if prev.size else 0
                degrees = rng.integers(low, d - 1, size) if d > 1 else np.zeros(size, dtype=np.int64)
                self.layers[layer].masks[m] = torch.from_numpy((degrees[:, None] >= prev[None, :]).astype(np.float32))
                prev = degrees
            out_deg = np.repeat(in_degree, self.out_params)
            self.layers[-1].masks[m] = torch.from_numpy((out_deg[:, None] > prev[None, :]).astype(np.float32))
        # Output d, parameter p sits at index d * out_params + p.
        self._mask_counter = 0
        # Direct connections (a masked linear map from the inputs to the outputs, as in NADE and FVSBN): every
        # output sees every dimension before it, whatever the hidden units' degrees. Without them an ordering
        # whose first steps are blank pixels (raster: five empty rows) leaves the hidden units of low degree
        # nothing to see, and MADE's NLL depends on the ordering by up to 10 nats.
        # Only the weights the mask allows are parameters (about half of a D x D matrix): the checkpoint holds
        # no zeros, and the dense matrix is rebuilt from them at each call.
        self.direct_weight: nn.Parameter | None = None
        if hp.direct:
            out_deg = np.repeat(in_degree, self.out_params)
            rows, cols = np.nonzero(out_deg[:, None] > in_degree[None, :])
            self.register_buffer("direct_rows", torch.as_tensor(rows), persistent=False)
            self.register_buffer("direct_cols", torch.as_tensor(cols), persistent=False)
            self.direct_weight = nn.Parameter(torch.zeros(len(rows)))
            self.direct_bias = nn.Parameter(torch.zeros(d * self.out_params))

    def _direct(self, inputs: Tensor) -> Tensor:
        """The direct connections: a lower-triangular (in the ordering) linear map from inputs to outputs."""
        d_out = self.direct_bias.shape[0]
        weight = inputs.new_zeros(d_out, inputs.shape[1]).index_put((self.direct_rows, self.direct_cols),
                                                                   self.direct_weight.to(inputs.dtype))
        return F.linear(inputs, weight, self.direct_bias.to(inputs.dtype))

    def _log_probs_one(self, x: Tensor, mask_index: int) -> Tensor:
        """``(B, D, K)`` log-probabilities of every value of every dimension under one mask."""
        b = x.shape[0]
        inputs = h = self.normalize(x).reshape(b, -1)
        for i, layer in enumerate(self.layers):
            h = layer(h, mask_index)
            if i < len(self.layers) - 1:
                h = F.relu(h)
        if self.direct_weight is not None:
            h = h + self._direct(inputs)
        h = h.reshape(b, -1, self.out_params)
        if self.out_params == 1:
            return torch.cat([F.logsigmoid(-h), F.logsigmoid(h)], dim=-1)
        return F.log_softmax(h, dim=-1)

    def forward(self, x: Tensor, cond: Tensor | None = None, ordering=None) -> Tensor:
        b = x.shape[0]
        c, hgt, wid = self.shape
        if self.training and self.num_masks > 1:
            mask_index = self._mask_counter % self.num_masks
            self._mask_counter += 1
            logp = self._log_probs_one(x, mask_index)
        elif self.num_masks == 1:
            logp = self._log_probs_one(x, 0)
        else:
            logp = self._ensemble(x)
        return logp.reshape(b, c, hgt, wid, -1)

    def _ensemble(self, x: Tensor) -> Tensor:
        """Exact conditionals of the mixture of the masks (uniform prior over masks)."""
        xl = x.reshape(x.shape[0], -1).round().long().clamp(0, self.num_values - 1)
        per_mask = torch.stack([self._log_probs_one(x, m) for m in range(self.num_masks)])  # (M, B, D, K)
        observed = per_mask.gather(-1, xl[None, :, :, None].expand(self.num_masks, -1, -1, 1)).squeeze(-1)
        order = torch.argsort(self.in_degree)  # dims in generation order
        in_order = observed[:, :, order]
        before = torch.cumsum(in_order, dim=-1) - in_order  # log prod of conditionals before each step
        cum = torch.empty_like(before)
        cum[:, :, order] = before
        weights = torch.log_softmax(cum, dim=0)  # posterior over masks given x_<d, (M, B, D)
        return torch.logsumexp(weights.unsqueeze(-1) + per_mask, dim=0)


SPEC = ModelSpec(
    name="made",
    title="MADE",
    description=(
        "A masked autoencoder: one fully connected network whose weight masks enforce the autoregressive "
        "property, so all conditionals come from a single forward pass. The ordering is chosen when the model "
        "is built; several connectivity masks can be trained at once and ensembled at test time. Direct "
        "connections from the inputs to the outputs (masked the same way) let every output see all the "
        "dimensions before it."
    ),
    build=MADE,
    orderings="build",
    lecture_section="Lecture 2, Masked Autoencoder for Distribution Estimation (MADE)",
    data_kinds=("binary", "grey", "colour"),
    tiny_hparams={"hidden": [32, 32], "num_masks": 3},
    paper_nll="88.40 (1 mask), 86.64 (32 masks)",
)


@hookimpl
def ar_explorer_models():
    return [SPEC]
