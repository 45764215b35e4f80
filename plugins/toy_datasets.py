"""The lecture's 1-D and 2-D toy datasets, made on the fly (no download).

``toy-1d``: one value in 0..99 from a two-bump mixture (:func:`app.core.synthetic.mixture_1d`), stored as
images of shape (1, 1, 1). The training and validation splits never show the values of :data:`MISSING_BAND`,
which the test split contains: a histogram fitted to the training data gives them no probability (infinite
NLL), while a discretized logistic mixture spreads its mass over them and generalises.

``toy-2d``: pairs (x1, x2) on a 40 x 40 grid drawn as a smiley (:func:`app.core.synthetic.smiley_2d`),
stored as images of shape (1, 1, 2), for the model p(x1) p(x2 | x1).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from app.core import hookimpl
from app.core.datasets import DatasetSpec, DataSplit
from app.core.errors import DataError
from app.core.synthetic import mixture_1d, smiley_2d

TOY_1D_VALUES = 100
#: Values ``start <= x < stop`` that the training and validation splits of ``toy-1d`` never contain.
MISSING_BAND = (76, 86)
TOY_1D_SIZES = {"train": 1000, "valid": 1000, "test": 10000}
TOY_2D_VALUES = 40
TOY_2D_SIZES = {"train": 10000, "valid": 2000, "test": 5000}
_SEEDS = {"train": 11, "valid": 12, "test": 13}
_SPLITS = ("train", "valid", "test")


def _check_split(split: str) -> None:
    if split not in _SPLITS:
        raise DataError(f"unknown split {split!r}; choose one of {', '.join(_SPLITS)}")


def in_missing_band(values: np.ndarray) -> np.ndarray:
    """Boolean mask of the values that the ``toy-1d`` training split never shows."""
    return (values >= MISSING_BAND[0]) & (values < MISSING_BAND[1])


@lru_cache(maxsize=3)
def _toy_1d(split: str) -> np.ndarray:
    n = TOY_1D_SIZES[split]
    if split == "test":
        values = mixture_1d(n, seed=_SEEDS[split], num_values=TOY_1D_VALUES)
    else:
        # Draw more than needed and drop the band: the same distribution, conditioned on missing it.
        drawn = mixture_1d(2 * n, seed=_SEEDS[split], num_values=TOY_1D_VALUES)
        values = drawn[~in_missing_band(drawn)][:n]
    return values.astype(np.uint8).reshape(-1, 1, 1, 1)


def load_toy_1d(split: str, data_dir: Path) -> DataSplit:
    """A split of ``toy-1d``: ``(N, 1, 1, 1)`` uint8 values in 0..99."""
    _check_split(split)
    return DataSplit(_toy_1d(split).copy())


@lru_cache(maxsize=3)
def _toy_2d(split: str) -> np.ndarray:
    pairs = smiley_2d(TOY_2D_SIZES[split], seed=_SEEDS[split], num_values=TOY_2D_VALUES)
    return pairs.astype(np.uint8).reshape(-1, 1, 1, 2)


def load_toy_2d(split: str, data_dir: Path) -> DataSplit:
    """A split of ``toy-2d``: ``(N, 1, 1, 2)`` uint8 pairs (x1, x2) in 0..39."""
    _check_split(split)
    return DataSplit(_toy_2d(split).copy())


TOY_1D = DatasetSpec(
    name="toy-1d",
    title="1-D toy: two bumps with a missing band",
    description=(
        f"One value in 0..{TOY_1D_VALUES - 1} from a mixture of two bumps. The training and validation splits "
        f"never show the values {MISSING_BAND[0]}..{MISSING_BAND[1] - 1}, which the test split contains: a "
        "histogram gives them zero probability, a discretized logistic mixture generalises to them."
    ),
    kind="1d",
    shape=(1, 1, 1),
    num_values=TOY_1D_VALUES,
    binarization=f"none (integers 0..{TOY_1D_VALUES - 1}; train/valid lack {MISSING_BAND[0]}..{MISSING_BAND[1] - 1})",
    load=load_toy_1d,
    offline=True,
)
TOY_2D = DatasetSpec(
    name="toy-2d",
    title="2-D toy: a smiley on a 40 x 40 grid",
    description=(
        f"Pairs (x1, x2), each in 0..{TOY_2D_VALUES - 1}: two eyes and a smile. The dependence between x1 and "
        "x2 is what a product of marginals p(x1) p(x2) misses and p(x1) p(x2 | x1) captures."
    ),
    kind="2d",
    shape=(1, 1, 2),
    num_values=TOY_2D_VALUES,
    binarization=f"none (integer pairs on a {TOY_2D_VALUES} x {TOY_2D_VALUES} grid)",
    load=load_toy_2d,
    offline=True,
)


@hookimpl
def ar_explorer_datasets():
    return [TOY_1D, TOY_2D]
