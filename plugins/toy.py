"""The lecture's first likelihood models, on 1-D and 2-D toy data, as ordinary model plugins.

* ``histogram``: p(x) is a table of K probabilities (a softmax over K free logits), one table per dimension.
  On one dimension it is the lecture's histogram; on several it is the product of marginals, the baseline
  that ignores every dependence. Its maximum-likelihood fit is the table of frequencies
  (:meth:`HistogramModel.fit_counts`): a value never seen in training gets probability zero.
* ``dmol``: a discretized mixture of logistics with free parameters, one per dimension. A few components
  spread mass smoothly over neighbouring values, so it generalises to values missing from the training data.
* ``ar2d``: p(x1) p(x2 | x1) on two dimensions: a histogram for x1 and an MLP that maps x1 to the K logits of
  x2. The simplest autoregressive model that is not a product of marginals.

All three return head parameters ``(B, C, H, W, P)`` like any image model, so sampling, scoring, training,
checkpoints and the conformance kit treat them like the others.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from app.core import hookimpl
from app.core.hparams import Hparams, hparam
from app.core.likelihoods import Categorical, DiscretizedLogisticMixture
from app.core.model import ARModel, ModelConfig, ModelSpec, differentiable_one_hot
from app.core.toy_demos import DemoSpec, value_counts
from plugins.toy_datasets import MISSING_BAND


def _expand(table: Tensor, batch: int) -> Tensor:
    """A per-dimension parameter table ``(C, H, W, P)`` repeated for a batch: ``(B, C, H, W, P)``."""
    return table.unsqueeze(0).expand(batch, *table.shape)


@dataclass(frozen=True)
class HistogramHparams(Hparams):
    """None: a histogram has one free logit per value and nothing to size."""

    owner = "Histogram"


class HistogramModel(ARModel):
    """A free K-way table per dimension: p(x_d = k) = softmax(logits_d)_k, independent of the other dims."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config, Categorical(config.num_values))
        self.logits = nn.Parameter(torch.zeros(*config.shape, config.num_values))

    def forward(self, x: Tensor, cond: Tensor | None = None, ordering=None) -> Tensor:
        return _expand(self.logits, x.shape[0])

    @torch.no_grad()
    def fit_counts(self, values: np.ndarray, pseudo_count: float = 0.0) -> None:
        """Set the table to the maximum-likelihood fit: frequencies of ``values`` ``(N, C, H, W)``.

        ``pseudo_count`` (Laplace smoothing) is added to every count; with 0, a value never seen gets
        probability exactly zero (logit -inf), hence an infinite NLL wherever the test data shows it.
        """
        if pseudo_count < 0:
            raise ValueError("pseudo_count must be >= 0")
        counts = value_counts(values, self.num_values).astype(np.float64) + pseudo_count
        if np.any(counts.sum(1) <= 0):
            raise ValueError("no data to count: give at least one example or a positive pseudo_count")
        with np.errstate(divide="ignore"):
            logits = np.log(counts / counts.sum(1, keepdims=True))
        self.logits.copy_(torch.as_tensor(logits, dtype=self.logits.dtype).reshape(self.logits.shape))


@dataclass(frozen=True)
class MixtureHparams(Hparams):
    """The components of the 1-D mixture."""

    owner = "Discretized logistic mixture"

    mixtures: int = hparam(4, ge=1)


class MixtureModel(ARModel):
    """A discretized logistic mixture with free parameters per dimension (no network: there is no context)."""

    def __init__(self, config: ModelConfig) -> None:
        m = MixtureHparams.from_hparams(config.hparams).mixtures
        super().__init__(config, DiscretizedLogisticMixture(config.num_values, m))
        # Components start spread over [-1, 1], each a few bins wide, so that every value gets gradient.
        init = torch.cat([torch.zeros(m), torch.linspace(-0.8, 0.8, m), torch.full((m,), math.log(0.5 / m))])
        self.table = nn.Parameter(init.repeat(*config.shape, 1))

    def forward(self, x: Tensor, cond: Tensor | None = None, ordering=None) -> Tensor:
        return _expand(self.table, x.shape[0])


@dataclass(frozen=True)
class TwoDimHparams(Hparams):
    """The width of the MLP from x1 to the distribution of x2."""

    owner = "2-D autoregressive model"

    hidden: int = hparam(64, ge=1)


class TwoDimModel(ARModel):
    """p(x1) p(x2 | x1): a K-way table for x1, an MLP from the one-hot x1 to the K logits of x2."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config, Categorical(config.num_values))
        if config.num_dims != 2:
            raise ValueError(f"the 2-D model needs data of exactly 2 dimensions (shape (1, 1, 2)), not {config.shape}")
        k = config.num_values
        hidden = TwoDimHparams.from_hparams(config.hparams).hidden
        self.x1_logits = nn.Parameter(torch.zeros(k))
        self.x2_net = nn.Sequential(nn.Linear(k, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                    nn.Linear(hidden, k))

    def forward(self, x: Tensor, cond: Tensor | None = None, ordering=None) -> Tensor:
        flat = x.reshape(x.shape[0], 2)
        first = self.x1_logits.expand(x.shape[0], -1)
        second = self.x2_net(differentiable_one_hot(flat[:, 0], self.num_values))
        return torch.stack([first, second], dim=1).reshape(x.shape[0], *self.shape, self.num_values)

    @torch.no_grad()
    def density(self) -> Tensor:
        """``(K, K)`` probabilities p(x1 = i, x2 = j), rows i = x1: the whole joint, for a picture."""
        k = self.num_values
        x = torch.stack(torch.meshgrid(torch.arange(k), torch.arange(k), indexing="ij"), -1).reshape(-1, *self.shape)
        logp = self.log_prob(x.float().to(self.device)).reshape(k * k, 2).sum(1)
        return logp.exp().reshape(k, k)


HISTOGRAM = ModelSpec(
    name="histogram",
    title="Histogram",
    description=(
        "The simplest likelihood model: one free probability per value, p(x = k) = softmax(theta)_k. Its "
        "maximum-likelihood fit is the table of training frequencies, so a value the training data never "
        "shows gets probability zero and an infinite test NLL: a histogram memorises, it does not "
        "generalise. On several dimensions it is the product of marginals, which ignores every dependence."
    ),
    build=HistogramModel,
    orderings="fixed",
    lecture_section="Lecture 2, likelihood models: histograms (1-D data, missing test values)",
    data_kinds=("1d", "2d"),
    hparams_class=HistogramHparams,
    tiny_hparams={"kit_shape": [1, 1, 1], "kit_num_values": 6},
)
MIXTURE = ModelSpec(
    name="dmol",
    title="Discretized logistic mixture (1-D)",
    description=(
        "A mixture of a few logistic distributions, each value getting the mass of its bin: 3 numbers per "
        "component instead of one per value. Mass spreads smoothly over neighbouring values, so values that "
        "are missing from the training data still get sensible probability: the head PixelCNN++ puts on "
        "every pixel, here on its own."
    ),
    build=MixtureModel,
    orderings="fixed",
    lecture_section="Lecture 2, likelihood models: parameterised distributions (discretized logistic mixture)",
    data_kinds=("1d",),
    hparams_class=MixtureHparams,
    tiny_hparams={"mixtures": 2, "kit_shape": [1, 1, 1], "kit_num_values": 6},
)
TWO_DIM = ModelSpec(
    name="ar2d",
    title="2-D autoregressive model p(x1) p(x2 | x1)",
    description=(
        "Two dimensions, factored by the chain rule: a histogram for x1 and a small MLP that maps x1 to the "
        "distribution of x2. Unlike the product of marginals p(x1) p(x2), it captures the dependence between "
        "the two; sampling draws x1, then x2 given it."
    ),
    build=TwoDimModel,
    orderings="fixed",
    lecture_section="Lecture 2, autoregressive models: p(x1) p(x2 | x1) on 2-D data",
    data_kinds=("2d",),
    hparams_class=TwoDimHparams,
    tiny_hparams={"hidden": 8, "kit_shape": [1, 1, 2], "kit_num_values": 6},
)


def _fit_histogram(model: ARModel, values: np.ndarray, pseudo_count: float) -> None:
    if not isinstance(model, HistogramModel):
        raise TypeError(f"{type(model).__name__} is no histogram, so it is not fitted by counting")
    model.fit_counts(values, pseudo_count)


#: The 1-D / 2-D demos, in the order the demo chooser lists them.
DEMOS: tuple[DemoSpec, ...] = (
    DemoSpec("histogram-1d", "1-D: histogram", "histogram", "toy-1d", lr=0.1, steps=400, unseen_band=MISSING_BAND,
             fit_counts=_fit_histogram),
    DemoSpec("dmol-1d", "1-D: discretized logistic mixture", "dmol", "toy-1d", lr=0.02, steps=400,
             unseen_band=MISSING_BAND),
    DemoSpec("ar2d", "2-D: p(x1) p(x2 | x1)", "ar2d", "toy-2d", lr=0.01, steps=600),
    DemoSpec("marginals-2d", "2-D: p(x1) p(x2) (histograms)", "histogram", "toy-2d", lr=0.05, steps=600,
             fit_counts=_fit_histogram),
)


@hookimpl
def ar_explorer_models():
    return [HISTOGRAM, MIXTURE, TWO_DIM]


@hookimpl
def ar_explorer_demos():
    return list(DEMOS)
