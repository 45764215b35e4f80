"""Colour MNIST with 2 bits per channel, and the binary grey images of its grayscale hierarchy.

How a colour image is made (seeded, so every split is the same on every machine):

1. the stroke mask of a digit: MNIST grey level x / 255 > 0.5, i.e. exactly the thresholded MNIST
   (``mnist-threshold``); for the offline set, the synthetic digits thresholded the same way;
2. for each image, one draw from ``numpy.random.default_rng(seed of the split)``: a foreground colour uniform
   over the 32 RGB triples of 2-bit levels (0-3 per channel) with R + G + B >= 5, then a background colour
   uniform over the 10 triples with R + G + B <= 2;
3. stroke pixels take the foreground colour, the others the background colour.

The grey image of the hierarchy (``derive="grey"`` in :mod:`app.core.conditions`, 2 levels) is the mean of R,
G and B rounded to 0 or 1, which is on exactly where R + G + B >= 5: by construction it is the stroke mask.
The ``*-grey`` datasets hold these grey images, on which the grey stage of the hierarchy is trained.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from app.core import hookimpl
from app.core.conditions import derive_condition
from app.core.datasets import DatasetSpec, DataSplit
from app.core.model import ConditionSpec
from plugins.datasets import MNIST_FILES, load_mnist_threshold, load_synthetic

LEVELS = 4  # 2 bits per channel
_TRIPLES = np.array([(r, g, b) for r in range(LEVELS) for g in range(LEVELS) for b in range(LEVELS)], dtype=np.uint8)
#: Bright colours for the strokes (grey level 1) and dark ones for the background (grey level 0).
FOREGROUND_COLOURS = _TRIPLES[_TRIPLES.sum(1) >= 5]
BACKGROUND_COLOURS = _TRIPLES[_TRIPLES.sum(1) <= 2]
SPLIT_SEEDS = {"train": 2001, "valid": 2002, "test": 2003}

#: The hierarchy's grey image: mean of the channels quantised to 2 levels (on where R + G + B >= 5).
GREY_CONDITION = ConditionSpec(
    kind="image",
    shape=(1, 28, 28),
    num_values=2,
    derive="grey",
    description="the binary grey image: on where the mean of R, G, B is in the upper half (R + G + B >= 5 of 9)",
)


def colourize(strokes: np.ndarray, seed: int) -> np.ndarray:
    """Colour binary stroke masks ``(N, 1, H, W)``: ``(N, 3, H, W)`` uint8 in ``0 .. 3`` (see the module doc)."""
    rng = np.random.default_rng(seed)
    n = strokes.shape[0]
    foreground = FOREGROUND_COLOURS[rng.integers(0, len(FOREGROUND_COLOURS), n)]
    background = BACKGROUND_COLOURS[rng.integers(0, len(BACKGROUND_COLOURS), n)]
    on = strokes.astype(bool)  # (N, 1, H, W) broadcasts over the 3 channels
    return np.where(on, foreground[:, :, None, None], background[:, :, None, None]).astype(np.uint8)


def grey_of(colour: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """The grey images ``(N, 1, H, W)`` of colour images ``(N, 3, H, W)``: the derivation the models use."""
    out = np.empty((colour.shape[0], 1, *colour.shape[2:]), dtype=np.uint8)
    for start in range(0, colour.shape[0], chunk):
        block = torch.as_tensor(colour[start : start + chunk]).float()
        out[start : start + chunk] = derive_condition(GREY_CONDITION, block, None, LEVELS).numpy().astype(np.uint8)
    return out


@lru_cache(maxsize=6)
def _colour_mnist(split: str, data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    binary = load_mnist_threshold(split, data_dir)
    return colourize(binary.images, SPLIT_SEEDS[split]), binary.labels


@lru_cache(maxsize=6)
def _colour_synthetic(split: str) -> tuple[np.ndarray, np.ndarray]:
    binary = load_synthetic(split, Path("."))
    return colourize(binary.images, SPLIT_SEEDS[split]), binary.labels


def load_colour_mnist(split: str, data_dir: Path) -> DataSplit:
    images, labels = _colour_mnist(split, Path(data_dir))
    return DataSplit(images, labels)


def load_colour_mnist_grey(split: str, data_dir: Path) -> DataSplit:
    images, labels = _colour_mnist(split, Path(data_dir))
    return DataSplit(grey_of(images), labels)


def load_colour_synthetic(split: str, data_dir: Path) -> DataSplit:
    images, labels = _colour_synthetic(split)
    return DataSplit(images, labels)


def load_colour_synthetic_grey(split: str, data_dir: Path) -> DataSplit:
    images, labels = _colour_synthetic(split)
    return DataSplit(grey_of(images), labels)


_RECIPE = (
    "strokes x/255 > 0.5 in one random bright 2-bit colour (R+G+B >= 5) on one random dark one (R+G+B <= 2), "
    "seeded per split"
)
COLOUR_MNIST = DatasetSpec(
    name="colour-mnist",
    title="Colour MNIST (2 bits per channel)",
    description=(
        "MNIST with random colours, 4 levels per channel: each digit's strokes (x/255 > 0.5) in a random bright "
        "colour on a random dark background, drawn from a fixed seed per split. The data of the grayscale "
        "hierarchy: a binary grey stage, then colour given grey."
    ),
    kind="colour",
    shape=(3, 28, 28),
    num_values=LEVELS,
    binarization=f"2 bits per channel: {_RECIPE}",
    load=load_colour_mnist,
    files=MNIST_FILES,
    has_labels=True,
)
COLOUR_MNIST_GREY = DatasetSpec(
    name="colour-mnist-grey",
    title="Colour MNIST, grey stage (binary)",
    description=(
        "The binary grey images of colour MNIST (mean of R, G, B rounded to 0 or 1): the first stage of the "
        "grayscale hierarchy. By construction it equals thresholded MNIST (x/255 > 0.5)."
    ),
    kind="binary",
    shape=(1, 28, 28),
    num_values=2,
    binarization="grey of colour MNIST: on where R+G+B >= 5 (= MNIST x/255 > 0.5)",
    load=load_colour_mnist_grey,
    files=MNIST_FILES,
    has_labels=True,
)
COLOUR_SYNTHETIC = DatasetSpec(
    name="synthetic-colour-digits",
    title="Synthetic colour digits (offline, 2 bits per channel)",
    description=(
        "The offline synthetic digits coloured like colour MNIST: needs no download. For tests and offline demos "
        "of the grayscale hierarchy; its NLL figures compare to nothing published."
    ),
    kind="colour",
    shape=(3, 28, 28),
    num_values=LEVELS,
    binarization=f"2 bits per channel (synthetic digits, not MNIST): {_RECIPE}",
    load=load_colour_synthetic,
    offline=True,
    has_labels=True,
)
COLOUR_SYNTHETIC_GREY = DatasetSpec(
    name="synthetic-colour-digits-grey",
    title="Synthetic colour digits, grey stage (offline, binary)",
    description="The binary grey images of the synthetic colour digits: the first stage of their hierarchy.",
    kind="binary",
    shape=(1, 28, 28),
    num_values=2,
    binarization="grey of synthetic colour digits: on where R+G+B >= 5 (not MNIST)",
    load=load_colour_synthetic_grey,
    offline=True,
    has_labels=True,
)

#: The grey-stage dataset of each colour dataset: a hierarchy pairs checkpoints trained on the two.
GREY_STAGE_DATASET = {
    COLOUR_MNIST.name: COLOUR_MNIST_GREY.name,
    COLOUR_SYNTHETIC.name: COLOUR_SYNTHETIC_GREY.name,
}


@hookimpl
def ar_explorer_datasets():
    return [COLOUR_MNIST, COLOUR_MNIST_GREY, COLOUR_SYNTHETIC, COLOUR_SYNTHETIC_GREY]
