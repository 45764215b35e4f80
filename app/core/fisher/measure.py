"""Judging an interpolation by the model itself: is each intermediate an image the model finds likely?

A decoded point is a mean intensity per pixel. It is turned into an image of the model's values (binary
images: a pixel is ink where its intensity is above 0.5; K grey levels: the nearest level) and scored under
the model: its NLL, in nats per image, says how plausible the model finds the intermediate. The two ends of a
strip are the images themselves, so only the interior points are judged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from app.core.model import ARModel
from app.core.scoring import bits_per_dim, score

#: A binary pixel is ink where its intensity is above this (the app's thresholding of MNIST, x/255 > 0.5).
INK_THRESHOLD = 0.5


def quantise(intensities: np.ndarray, num_values: int) -> np.ndarray:
    """Intensities in [0, 1] to uint8 values ``0 .. K-1``: above 0.5 for binary images, else the nearest level."""
    values = np.clip(np.asarray(intensities, dtype=np.float32), 0.0, 1.0)
    if num_values == 2:
        return (values > INK_THRESHOLD).astype(np.uint8)
    return np.round(values * (num_values - 1)).astype(np.uint8)


def interior_nll(model: ARModel, strip: np.ndarray) -> np.ndarray:
    """``(S - 2,)``: the NLL in nats per image of each interior point of ``strip`` ``(S, C, H, W)``, quantised."""
    interior = np.asarray(strip)[1:-1]
    if len(interior) == 0:
        return np.zeros(0)
    return score(model, quantise(interior, model.num_values)).nll_nats


@dataclass(frozen=True)
class RowFigure:
    """The mean of some NLLs (nats per image) with its standard error, and the same in bits/dim."""

    mean_nats: float
    stderr_nats: float
    bits_per_dim: float
    count: int

    @classmethod
    def of(cls, nats: np.ndarray, num_dims: int) -> RowFigure:
        values = np.asarray(nats, dtype=np.float64).ravel()
        if values.size == 0:
            return cls(math.nan, math.nan, math.nan, 0)
        stderr = float(values.std(ddof=1) / math.sqrt(values.size)) if values.size > 1 else math.nan
        mean = float(values.mean())
        return cls(mean, stderr, float(bits_per_dim(mean, num_dims)), int(values.size))


__all__ = ["INK_THRESHOLD", "RowFigure", "interior_nll", "quantise"]
