"""The 1-D and 2-D demos as plain data: train a toy model step by step and report its density as it learns.

Plugins register demos (:class:`DemoSpec`) through the hook ``ar_explorer_demos``; the built-in ones come from
``plugins.toy``. Qt-free, so that a live view, a script and the tests share it. A demo trains with the core's
training loop
(:func:`app.core.training.train`) and, every few steps, yields a :class:`DemoFrame`: the model's whole
distribution (K probabilities for 1-D data, a K x K table for 2-D data) and its NLL on the training and test
splits (and, for ``toy-1d``, on the band of values that the training split never shows).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from app.core.datasets import DatasetSpec, DataSplit
from app.core.model import ARModel, ModelSpec
from app.core.training import TrainConfig, train

#: ``fit_counts(model, values (N, C, H, W), pseudo_count)``: a model's exact maximum-likelihood fit by counting.
CountFit = Callable[[ARModel, np.ndarray, float], None]


@dataclass(frozen=True)
class DemoSpec:
    """One demo: a toy model on a toy dataset (both by their registry names), with training settings that
    converge in seconds.

    Attributes
    ----------
    name, title
        Identifier and the text of the demo chooser.
    model, dataset
        The names of a model and of a 1-D or 2-D dataset in the registry.
    lr, steps, batch_size
        Adam's constant learning rate, the training steps and the batch size the demo starts with.
    unseen_band
        ``(low, high)``: the values ``low .. high-1`` that the training split never shows, drawn shaded and
        scored on their own (None for none).
    fit_counts
        Fits the model by counting, its exact maximum-likelihood fit (a histogram's); None where the model
        has no such fit. The demo then offers "Fit by counting".
    """

    name: str
    title: str
    model: str
    dataset: str
    lr: float
    steps: int
    batch_size: int = 100
    unseen_band: tuple[int, int] | None = None
    fit_counts: CountFit | None = None


def value_counts(values: np.ndarray, num_values: int) -> np.ndarray:
    """Counts ``(D, K)`` of each value of each dimension of ``values`` ``(N, ...)`` (flattened per example)."""
    flat = np.asarray(values).reshape(len(values), -1).astype(np.int64)
    if flat.size and (flat.min() < 0 or flat.max() >= num_values):
        raise ValueError(f"values must lie in 0..{num_values - 1}")
    return np.stack([np.bincount(flat[:, d], minlength=num_values) for d in range(flat.shape[1])])


@dataclass
class DemoData:
    """The splits of a toy dataset as integer arrays ``(N, D)``, and their empirical distributions."""

    dataset: DatasetSpec
    train: np.ndarray
    test: np.ndarray
    band: tuple[int, int] | None  # values the training split never shows (1-D only)

    @property
    def num_values(self) -> int:
        return self.dataset.num_values

    @property
    def num_dims(self) -> int:
        return int(self.train.shape[1])

    def frequencies(self, split: str = "train") -> np.ndarray:
        """Empirical distribution of a split: ``(K,)`` for 1-D data, ``(K, K)`` (rows x1) for 2-D data."""
        values = self.train if split == "train" else self.test
        k = self.num_values
        if self.num_dims == 1:
            return value_counts(values, k)[0] / len(values)
        joint = value_counts(values[:, :1] * k + values[:, 1:2], k * k)[0] / len(values)
        return joint.reshape(k, k)

    def band_mask(self, values: np.ndarray) -> np.ndarray | None:
        if self.band is None:
            return None
        return (values[:, 0] >= self.band[0]) & (values[:, 0] < self.band[1])


def load_demo_data(dataset: DatasetSpec, data_dir: Path | None = None,
                   band: tuple[int, int] | None = None) -> DemoData:
    """Read the train and test splits of a 1-D or 2-D dataset; ``band`` is the demo's ``unseen_band``."""
    if int(np.prod(dataset.shape)) > 2:
        raise ValueError(f"{dataset.name} has {int(np.prod(dataset.shape))} dimensions; the demos take 1 or 2")
    folder = data_dir or Path(".")
    train_split, test_split = dataset.load("train", folder), dataset.load("test", folder)
    flat = [s.images.reshape(len(s), -1).astype(np.int64) for s in (train_split, test_split)]
    return DemoData(dataset, flat[0], flat[1], band)


@dataclass
class DemoFrame:
    """The state of a demo after ``step`` training steps. NLLs are in nats per example (inf where a value
    has probability zero); ``density`` is the model's whole distribution, shaped like the frequencies."""

    step: int
    total_steps: int
    density: np.ndarray
    train_nll: float
    test_nll: float
    band_nll: float | None
    elapsed_s: float
    done: bool
    fitted_by: str = "gradient descent"


def model_density(model: ARModel) -> np.ndarray:
    """p(x) for every x: ``(K,)`` for one dimension, ``(K, K)`` (rows x1) for two."""
    k, d = model.num_values, model.config.num_dims
    if d > 2:
        raise ValueError("only 1-D and 2-D models have a density to draw")
    grids = torch.meshgrid(*([torch.arange(k)] * d), indexing="ij")
    x = torch.stack([g.reshape(-1) for g in grids], -1).float().reshape(-1, *model.shape)
    with torch.no_grad():
        logp = model.log_prob(x.to(model.device)).reshape(k**d, d).sum(1).double()
    return logp.exp().cpu().numpy().reshape((k,) * d)


def mean_nll(density: np.ndarray, values: np.ndarray) -> float:
    """Mean NLL in nats of ``values`` ``(N, D)`` under a density table (inf if any value has mass zero)."""
    if len(values) == 0:
        return math.nan
    p = density[tuple(values[:, i] for i in range(values.shape[1]))]
    with np.errstate(divide="ignore"):
        return float(-np.log(p).mean())


def frame(model: ARModel, data: DemoData, step: int, total: int, elapsed: float, done: bool,
          fitted_by: str = "gradient descent") -> DemoFrame:
    """Evaluate ``model`` on the demo's data, as a :class:`DemoFrame`."""
    density = model_density(model)
    band = data.band_mask(data.test)
    band_nll = mean_nll(density, data.test[band]) if band is not None else None
    return DemoFrame(step, total, density, mean_nll(density, data.train), mean_nll(density, data.test), band_nll,
                     elapsed, done, fitted_by)


def build_model(spec: ModelSpec, data: DemoData, seed: int = 0) -> ARModel:
    torch.manual_seed(seed)
    return spec.create(spec.make_config(data.dataset.shape, data.num_values))


def train_frames(
    model: ARModel,
    data: DemoData,
    steps: int,
    lr: float,
    batch_size: int = 100,
    every: int = 10,
    seed: int = 0,
    should_stop: Callable[[], bool] = lambda: False,
) -> Iterator[DemoFrame]:
    """Train ``model`` for ``steps`` steps of Adam at a constant ``lr``, yielding a frame before the first step,
    every ``every`` steps and at the end. Stops between steps when ``should_stop()`` is true."""
    images = data.train.reshape(-1, *data.dataset.shape).astype(np.uint8)
    steps_per_epoch = max(1, len(images) // batch_size)
    cfg = TrainConfig(epochs=steps / steps_per_epoch, batch_size=batch_size, lr=lr, warmup_steps=0,
                      schedule="constant", log_every=max(1, every), seed=seed, grad_clip=0.0)
    start = time.perf_counter()
    yield frame(model, data, 0, steps, 0.0, steps == 0)
    if steps == 0:
        return
    last = 0
    for event in train(model, DataSplit(images), None, cfg, None, should_stop=should_stop):
        if event.kind == "step" and event.step < steps:
            last = event.step
            yield frame(model, data, event.step, steps, time.perf_counter() - start, False)
        elif event.kind in ("done", "stopped"):
            last = event.step
    yield frame(model, data, last, steps, time.perf_counter() - start, True)


def count_frame(demo: DemoSpec, model: ARModel, data: DemoData, pseudo_count: float = 0.0) -> DemoFrame:
    """Fit ``model`` by the demo's counting (its exact maximum-likelihood fit, with optional Laplace smoothing)."""
    if demo.fit_counts is None:
        raise ValueError(f"the demo {demo.title} has no fit by counting")
    demo.fit_counts(model, data.train.reshape(-1, *data.dataset.shape), pseudo_count)
    how = "counting" + (f" + {pseudo_count:g} pseudo-count" if pseudo_count else " (maximum likelihood)")
    return frame(model, data, 0, 0, 0.0, True, fitted_by=how)


__all__ = ["CountFit", "DemoData", "DemoFrame", "DemoSpec", "build_model", "count_frame", "frame", "load_demo_data",
           "mean_nll", "model_density", "train_frames", "value_counts"]
