"""Order-agnostic NADE (Uria, Murray & Larochelle 2014, "A Deep and Tractable Density Estimator").

One network predicts every unobserved pixel from any set of observed ones: its input is the image with the
unobserved pixels zeroed, concatenated with the mask that says which pixels are observed. Trained on random
masks, it defines a conditional p(x_i | x_S) for every set S, so under *any* ordering the conditional of the
pixel at step t is the network's output with S = the pixels of steps before t. Scoring an image under an
ordering costs one pass per step (all of them in one batch); sampling, one pass per step.

Training minimises the order-agnostic objective: for a random ordering and a random step t, the loss of the
pixels not yet observed, weighted by D / (D - t). Its expectation is the NLL averaged over orderings.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from app.core import hookimpl
from app.core.likelihoods import Bernoulli
from app.core.model import ARModel, ModelConfig, ModelSpec
from app.core.orderings import Ordering
from app.core.sampling import Sampler


class OrderAgnosticNADE(ARModel):
    """An MLP from (x * mask, mask) to a logit for every pixel, valid for any mask."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config, Bernoulli())
        if config.channels != 1:
            raise ValueError("order-agnostic NADE models single-channel binary images")
        d = config.num_dims
        hidden = [int(h) for h in config.hparams.get("hidden", [500, 500])]
        sizes = [2 * d, *hidden, d]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        self.chunk = int(config.hparams.get("chunk", 4096))

    def logits(self, x_flat: Tensor, mask: Tensor) -> Tensor:
        """``(N, D)`` logits of every pixel given the pixels where ``mask`` (``(N, D)``, 0/1) is 1."""
        h = torch.cat([self.normalize(x_flat) * mask, mask], dim=-1)
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i < len(self.layers) - 1:
                h = F.relu(h)
        return h

    def _step_masks(self, ordering: Ordering, device: torch.device) -> Tensor:
        """``(D, D)``: row t marks the pixels generated before step t."""
        rank = torch.tensor(ordering.rank.reshape(-1), device=device)
        steps = torch.arange(rank.numel(), device=device)
        return (rank[None, :] < steps[:, None]).to(torch.float32)

    def forward(self, x: Tensor, cond: Tensor | None = None, ordering: Ordering | None = None) -> Tensor:
        ordering = ordering or self.ordering
        b = x.shape[0]
        d = self.config.num_dims
        flat = x.reshape(b, d)
        masks = self._step_masks(ordering, x.device).to(x.dtype)  # (D steps, D)
        target = torch.as_tensor(ordering.flat, device=x.device)  # pixel generated at each step
        out = torch.empty(b, d, dtype=x.dtype, device=x.device)
        steps_per_chunk = max(1, self.chunk // b)
        for start in range(0, d, steps_per_chunk):
            stop = min(d, start + steps_per_chunk)
            m = masks[start:stop]  # (S, D)
            inputs = flat[:, None, :].expand(b, stop - start, d).reshape(-1, d)
            logits = self.logits(inputs, m.repeat(b, 1)).reshape(b, stop - start, d)
            index = target[start:stop]
            out[:, index] = logits.gather(2, index[None, :, None].expand(b, -1, 1)).squeeze(-1)
        return out.reshape(b, *self.shape, 1)

    def loss(self, x: Tensor, cond: Tensor | None = None, ordering: Ordering | None = None) -> Tensor:
        """The order-agnostic estimate of the NLL (nats per image): one random ordering and step per image."""
        b = x.shape[0]
        d = self.config.num_dims
        flat = x.reshape(b, d)
        keys = torch.rand(b, d, device=x.device)
        t = torch.randint(0, d, (b, 1), device=x.device)
        rank = keys.argsort(dim=1).argsort(dim=1)  # a random ordering per image
        mask = (rank < t).to(x.dtype)
        logits = self.logits(flat, mask)
        nll = F.binary_cross_entropy_with_logits(logits, flat, reduction="none")
        per_image = (nll * (1 - mask)).sum(1) * d / (d - t.squeeze(1)).to(x.dtype)
        return per_image.mean()

    def make_sampler(self, x: Tensor, cond: Tensor | None = None, ordering: Ordering | None = None, mode: str = "naive") -> Sampler:
        if mode in ("single-pass", "auto"):
            return SinglePassSampler(self, x, cond, ordering)
        return super().make_sampler(x, cond, ordering, mode)


class SinglePassSampler(Sampler):
    """One network pass per step, with the mask of the pixels generated so far."""

    def __init__(self, model: OrderAgnosticNADE, x: Tensor, cond: Tensor | None, ordering: Ordering | None) -> None:
        super().__init__(model, x, cond, ordering)
        self.step_masks = model._step_masks(self.ordering, x.device).to(x.dtype)

    def probs(self, step: int) -> Tensor:
        b = self.x.shape[0]
        dims = torch.as_tensor(self.plan[step], device=self.x.device)
        mask = self.step_masks[step].expand(b, -1)  # the plan follows the ordering: step t = rank t
        logits = self.model.logits(self.x.reshape(b, -1), mask)[:, dims]
        self.network_calls += 1
        return self.model.likelihood.probs(logits.unsqueeze(-1))


SPEC = ModelSpec(
    name="order-agnostic-nade",
    title="Order-agnostic NADE",
    description=(
        "One network for every ordering: it sees the observed pixels and the mask of which ones are observed, "
        "and predicts all the others. Trained on random orderings, it samples, scores and completes images under "
        "any ordering at run time without retraining: paint an ordering and use it at once."
    ),
    build=OrderAgnosticNADE,
    orderings="any",
    lecture_section="Lecture 2, orderings: order-agnostic training (DeepNADE, Uria et al. 2014)",
    data_kinds=("binary",),
    default_hparams={"hidden": [500, 500]},
    tiny_hparams={"hidden": [32, 32]},
    hparam_keys=("chunk",),
    sampler_modes=("single-pass",),
)


@hookimpl
def ar_explorer_models():
    return [SPEC]
