"""Order-agnostic NADE (Uria, Murray & Larochelle 2014, "A Deep and Tractable Density Estimator").

One network predicts every unobserved pixel from any set of observed ones: its input is the image with the
unobserved pixels zeroed, concatenated with the mask that says which pixels are observed. Trained on random
masks, it defines a conditional p(x_i | x_S) for every set S, so under *any* ordering the conditional of the
pixel at step t is the network's output with S = the pixels of steps before t.

Scoring under an ordering needs the network at every step, but not all of it: the first layer is linear in
(x * mask, mask), and the mask grows by one pixel per step, so its pre-activations at step t are a running sum
of one column per pixel already generated (NADE's own trick). Only the layers after it run per step, and of the
last layer only the row of the pixel being generated. That makes scoring 64 images under a freshly painted
ordering take a fraction of a second on a CPU, and sampling one small update per step.

Training minimises the order-agnostic objective: for a random ordering and a random step t, the loss of the
pixels not yet observed, weighted by D / (D - t). Its expectation is the NLL averaged over orderings. The
orderings are uniform random permutations, or (hyperparameter ``structured``, the share of a batch) drawn from
the structured families of :mod:`app.core.ordering_families` — sweeps, rings, grown regions, the presets —
which are what the lecture's orderings and a painted one look like.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from app.core import hookimpl
from app.core.hparams import Hparams, hparam
from app.core.likelihoods import Bernoulli
from app.core.model import ARModel, ModelConfig, ModelSpec
from app.core.ordering_families import DEFAULT_MIX, TrainingOrderings
from app.core.orderings import Ordering
from app.core.sampling import Sampler


@dataclass(frozen=True)
class OrderAgnosticHparams(Hparams):
    """The MLP's hidden layers, the share of structured orderings among training orderings, and how many
    rows (image x step) of hidden units the single-pass scorer computes at a time."""

    owner = "Order-agnostic NADE"

    # Checkpoints from before the defaults grew have 500 x 500 and random orderings only.
    hidden: tuple[int, ...] = hparam((1000, 1000), ge=1, min_items=1, absent=(500, 500))
    structured: float = hparam(0.6, ge=0, le=1, absent=0.0)
    chunk: int = hparam(16384, ge=1, listed=False)


class OrderAgnosticNADE(ARModel):
    """An MLP from (x * mask, mask) to a logit for every pixel, valid for any mask."""

    hparams_class = OrderAgnosticHparams

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config, Bernoulli())
        if config.channels != 1:
            raise ValueError("order-agnostic NADE models single-channel binary images")
        d = config.num_dims
        hp = self.hp = OrderAgnosticHparams.from_hparams(config.hparams)
        hidden = list(hp.hidden)
        sizes = [2 * d, *hidden, d]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        self.chunk = hp.chunk
        structured = hp.structured
        self.families = None
        if structured > 0:
            mix = {k: v * structured / (1 - DEFAULT_MIX["random"]) for k, v in DEFAULT_MIX.items() if k != "random"}
            mix["random"] = 1.0 - structured
            self.families = TrainingOrderings(config.height, config.width, mix)

    def logits(self, x_flat: Tensor, mask: Tensor) -> Tensor:
        """``(N, D)`` logits of every pixel given the pixels where ``mask`` (``(N, D)``, 0/1) is 1."""
        h = torch.cat([self.normalize(x_flat) * mask, mask], dim=-1)
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i < len(self.layers) - 1:
                h = F.relu(h)
        return h

    def _first_layer_parts(self) -> tuple[Tensor, Tensor, Tensor]:
        """The first layer's weights on the pixel values and on the mask (each ``(D, H)``), and its bias."""
        d = self.config.num_dims
        first = self.layers[0]
        return first.weight[:, :d].t(), first.weight[:, d:].t(), first.bias

    def step_logits(self, pre: Tensor, targets: Tensor) -> Tensor:
        """Logits ``(N,)`` of pixel ``targets`` ``(N,)`` from the first layer's pre-activations ``pre`` ``(N, H)``."""
        h = F.relu(pre)
        for layer in self.layers[1:-1]:
            h = F.relu(layer(h))
        last = self.layers[-1]
        return (h * last.weight[targets]).sum(-1) + last.bias[targets]

    def forward(self, x: Tensor, cond: Tensor | None = None, ordering: Ordering | None = None) -> Tensor:
        ordering = ordering or self.ordering
        b, d = x.shape[0], self.config.num_dims
        flat = self.normalize(x.reshape(b, d))
        seq = torch.as_tensor(ordering.flat, device=x.device)  # the pixel generated at each step
        w_value, w_mask, bias = self._first_layer_parts()
        # Step t sees the pixels of steps < t: an exclusive running sum of their columns.
        columns = flat[:, seq, None] * w_value[seq][None] + w_mask[seq][None]  # (B, D, H)
        pre = torch.cumsum(columns, dim=1) - columns + bias
        out_seq = torch.empty(b, d, dtype=pre.dtype, device=x.device)
        rows = max(1, self.chunk // d)
        for start in range(0, b, rows):
            part = pre[start : start + rows].reshape(-1, pre.shape[-1])
            targets = seq.repeat(min(rows, b - start))
            out_seq[start : start + rows] = self.step_logits(part, targets).reshape(-1, d)
        # Back from step order to pixel order by a gather (so that per-example gradients can be taken).
        return out_seq[:, torch.argsort(seq)].reshape(b, *self.shape, 1)

    def loss(self, x: Tensor, cond: Tensor | None = None, ordering: Ordering | None = None) -> Tensor:
        """The order-agnostic estimate of the NLL (nats per image): one random ordering and step per image."""
        b = x.shape[0]
        d = self.config.num_dims
        flat = x.reshape(b, d)
        if self.families is not None:
            rank = self.families.sample(b).to(x.device)
        else:
            rank = torch.rand(b, d, device=x.device).argsort(dim=1).argsort(dim=1)  # a random ordering per image
        t = torch.randint(0, d, (b, 1), device=x.device)
        mask = (rank < t).to(x.dtype)
        logits = self.logits(flat, mask)
        nll = F.binary_cross_entropy_with_logits(logits, flat, reduction="none")
        per_image = (nll * (1 - mask)).sum(1) * d / (d - t.squeeze(1)).to(x.dtype)
        return per_image.mean()

    def make_sampler(self, x: Tensor, cond: Tensor | None = None, ordering: Ordering | None = None, mode: str = "naive") -> Sampler:
        if mode in ("single-pass", "auto"):
            return IncrementalSampler(self, x, cond, ordering)
        return super().make_sampler(x, cond, ordering, mode)


class IncrementalSampler(Sampler):
    """One small update per step: the first layer's running sum gains the pixel just drawn (or known), and
    only the layers after it run, for the one pixel being generated."""

    def __init__(self, model: OrderAgnosticNADE, x: Tensor, cond: Tensor | None, ordering: Ordering | None) -> None:
        super().__init__(model, x, cond, ordering)
        self.seq = torch.as_tensor(self.ordering.flat, device=x.device)
        self.w_value, self.w_mask, bias = model._first_layer_parts()
        self.pre = bias.expand(x.shape[0], -1).clone()
        self.done = 0  # steps whose pixel is in the running sum

    def probs(self, step: int) -> Tensor:
        model: OrderAgnosticNADE = self.model  # type: ignore[assignment]
        if step < self.done:
            raise ValueError("the incremental sampler only steps forward")
        b = self.x.shape[0]
        flat = model.normalize(self.x.reshape(b, -1))
        if step > self.done:  # pixels committed since (known ones of a completion come first in the ordering)
            seen = self.seq[self.done : step]
            self.pre = self.pre + flat[:, seen] @ self.w_value[seen] + self.w_mask[seen].sum(0)
            self.done = step
        target = self.seq[step].expand(b)
        logits = model.step_logits(self.pre, target)
        self.network_calls += 1
        return model.likelihood.probs(logits.reshape(b, 1, 1))


SPEC = ModelSpec(
    name="order-agnostic-nade",
    title="Order-agnostic NADE",
    description=(
        "One network for every ordering: it sees the observed pixels and the mask of which ones are observed, "
        "and predicts all the others. Trained on random and structured orderings, it samples, scores and "
        "completes images under any ordering at run time without retraining: paint an ordering and use it at once."
    ),
    build=OrderAgnosticNADE,
    orderings="any",
    lecture_section="Lecture 2, orderings: order-agnostic training (DeepNADE, Uria et al. 2014)",
    data_kinds=("binary",),
    tiny_hparams={"hidden": [32, 32]},
    sampler_modes=("single-pass",),
)


@hookimpl
def ar_explorer_models():
    return [SPEC]
