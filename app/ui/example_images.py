"""Images to show a model when the user has none: its test split when present, else synthetic digits.

Qt-free. Every image comes back as ``(N, C, H, W)`` uint8 values ``0 .. K-1`` in the model's shape, with a
label saying where it came from (a number is never shown without its data).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.core.errors import DataError, PluginError
from app.core.session import LoadedModel, Session
from app.core.synthetic import synthetic_digits


@dataclass
class Examples:
    images: np.ndarray  # (N, C, H, W) uint8
    labels: np.ndarray | None
    source: str  # "the test split of Binarized MNIST", "synthetic digits (not MNIST)"
    from_test_split: bool


def test_images(session: Session, loaded: LoadedModel, limit: int = 0) -> Examples | None:
    """The test split of the checkpoint's dataset, or None where it is not on this machine."""
    spec = loaded.dataset
    if spec is None or (tuple(spec.shape), spec.num_values) != (tuple(loaded.model.shape), loaded.model.num_values):
        return None
    try:
        split = session.split(spec, "test", limit)
    except (DataError, PluginError, OSError):
        return None
    return Examples(split.images, split.labels, f"the test split of {spec.title}", True)


def synthetic_images(shape: tuple[int, int, int], num_values: int, n: int, seed: int = 0) -> Examples:
    """Stroke-drawn digits quantised to the model's values (grey to colour by repetition)."""
    c, h, w = shape
    grey, labels = synthetic_digits(n, seed, size=max(h, w))
    grey = grey[:, :, :h, :w].astype(np.float32) / 255.0
    if num_values == 2:
        values = (grey > 0.5).astype(np.uint8)
    else:
        values = np.clip(np.round(grey * (num_values - 1)), 0, num_values - 1).astype(np.uint8)
    values = np.repeat(values, c, axis=1)
    return Examples(values, labels, "synthetic stroke-drawn digits (not MNIST)", False)


def example_images(session: Session, loaded: LoadedModel, n: int, seed: int = 0) -> Examples:
    """``n`` test images picked by ``seed`` where the data is present, else ``n`` synthetic digits."""
    found = test_images(session, loaded)
    if found is None or len(found.images) == 0:
        return synthetic_images(tuple(loaded.model.shape), loaded.model.num_values, n, seed)
    rng = np.random.default_rng(seed)
    index = rng.choice(len(found.images), size=n, replace=len(found.images) < n)
    labels = found.labels[index] if found.labels is not None else None
    return Examples(found.images[index], labels, found.source, True)


__all__ = ["Examples", "test_images", "synthetic_images", "example_images"]
