"""56x56 binary digits, for models whose sampling cost grows with the image (the parallel multiscale PixelCNN).

How they are made: the 28x28 grey digits (MNIST, or the offline synthetic digits) are upsampled 2x by bilinear
interpolation (``torch.nn.functional.interpolate``, ``align_corners=False``) and thresholded at half the range
(x/255 > 0.5). The strokes keep smooth edges at the finer resolution, so the 56x56 image holds detail that
a nearest-neighbour copy of the 28x28 thresholded digit would not.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from app.core import hookimpl
from app.core.datasets import DatasetSpec, DataSplit
from plugins.datasets import MNIST_FILES, load_mnist, load_synthetic_grey

SIZE = 56


def upsample_threshold(grey: np.ndarray, size: int = SIZE, chunk: int = 2048) -> np.ndarray:
    """Grey images ``(N, 1, h, w)`` uint8 0..255 to binary ``(N, 1, size, size)``: bilinear, then > 127.5."""
    out = np.empty((grey.shape[0], 1, size, size), dtype=np.uint8)
    for start in range(0, grey.shape[0], chunk):
        block = torch.as_tensor(grey[start : start + chunk]).float()
        up = F.interpolate(block, size=(size, size), mode="bilinear", align_corners=False)
        out[start : start + chunk] = (up > 127.5).numpy().astype(np.uint8)
    return out


@lru_cache(maxsize=3)
def _mnist_56(split: str, data_dir: Path) -> DataSplit:
    data = load_mnist(split, data_dir)
    return DataSplit(upsample_threshold(data.images), data.labels)


@lru_cache(maxsize=3)
def _synthetic_56(split: str) -> DataSplit:
    data = load_synthetic_grey(split, Path("."))
    return DataSplit(upsample_threshold(data.images), data.labels)


def load_mnist_threshold_56(split: str, data_dir: Path) -> DataSplit:
    return _mnist_56(split, Path(data_dir))


def load_synthetic_56(split: str, data_dir: Path) -> DataSplit:
    return _synthetic_56(split)


MNIST_THRESHOLD_56 = DatasetSpec(
    name="mnist-threshold-56",
    title="Thresholded MNIST at 56x56",
    description=(
        "MNIST upsampled 2x (bilinear) and thresholded at x/255 > 0.5: binary 56x56 digits with smooth edges, "
        "3136 pixels each. Its NLL figures compare only to other 56x56 figures on this very set."
    ),
    kind="binary",
    shape=(1, SIZE, SIZE),
    num_values=2,
    binarization="MNIST upsampled 2x bilinear, then threshold x/255 > 0.5",
    load=load_mnist_threshold_56,
    files=MNIST_FILES,
    has_labels=True,
)
SYNTHETIC_56 = DatasetSpec(
    name="synthetic-digits-56",
    title="Synthetic digits at 56x56 (offline, binary)",
    description="The offline synthetic digits upsampled 2x (bilinear) and thresholded at 0.5: needs no download.",
    kind="binary",
    shape=(1, SIZE, SIZE),
    num_values=2,
    binarization="synthetic digits (not MNIST) upsampled 2x bilinear, then threshold at 0.5",
    load=load_synthetic_56,
    offline=True,
    has_labels=True,
)


@hookimpl
def ar_explorer_datasets():
    return [MNIST_THRESHOLD_56, SYNTHETIC_56]
