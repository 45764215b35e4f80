"""Which images to interpolate between, and what digit each one is.

The standard binarized MNIST has no labels and its test split is ordered by class, so "the first N test
images" are all zeros; pairs and reference sets are therefore drawn at random from a seed, and classes come
from the dataset's labels where it has them, else from the digit classifier the app measures with.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.core.fisher.errors import FisherError


@dataclass(frozen=True)
class Labels:
    """A class per image (``-1``: unknown) and where the classes come from, in words."""

    values: np.ndarray
    source: str

    @property
    def known(self) -> bool:
        return bool(len(self.values)) and bool((self.values >= 0).all())


def read_labels(images: np.ndarray, labels: np.ndarray | None, num_values: int) -> Labels:
    """The dataset's ``labels`` where given, else the digit classifier's reading of 28x28 one-channel images,
    else unknown (``-1``)."""
    if labels is not None:
        return Labels(np.asarray(labels, dtype=np.int64), "the dataset's labels")
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[1] == 1 and images.shape[2] % 28 == 0 and images.shape[2] == images.shape[3]:
        from app.core.classifier import classify, load_classifier
        from app.core.errors import CheckpointError

        try:
            classifier, _ = load_classifier()
        except CheckpointError:
            pass
        else:
            read = classify(classifier, images, num_values)
            return Labels(read.labels.astype(np.int64), "read by the app's digit classifier (the data has no labels)")
    return Labels(np.full(len(images), -1, np.int64), "unknown (no labels, and not digits the classifier reads)")


def random_sample(count: int, size: int, seed: int) -> np.ndarray:
    """``min(size, count)`` distinct indices into ``count`` items, sorted, drawn from ``seed``."""
    if count < 1:
        raise FisherError("there are no images to choose from")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(count, min(size, count), replace=False))


def different_class_pairs(labels: np.ndarray, n: int, seed: int = 0) -> list[tuple[int, int]]:
    """``n`` distinct pairs ``(a, b)`` of indices whose labels differ, drawn at random from ``seed``.

    Unknown labels (``-1``) never count as a class: with no labels at all, any two different images pair.

    Raises
    ------
    FisherError
        Fewer than ``n`` such pairs exist.
    """
    labels = np.asarray(labels)
    count = len(labels)
    known = labels >= 0
    possible = count * (count - 1) // 2
    if known.all():
        same = sum(int(k) * (int(k) - 1) // 2 for k in np.bincount(labels))
        possible -= same
    if n > possible:
        raise FisherError(f"there are only {possible} pairs of images of different classes here, not {n}")
    rng = np.random.default_rng(seed)
    pairs: list[tuple[int, int]] = []
    seen: set[tuple[int, int]] = set()
    while len(pairs) < n:
        a, b = (int(i) for i in rng.choice(count, 2, replace=False))
        if (known[a] and known[b] and labels[a] == labels[b]) or (min(a, b), max(a, b)) in seen:
            continue
        seen.add((min(a, b), max(a, b)))
        pairs.append((a, b))
    return pairs


__all__ = ["Labels", "different_class_pairs", "random_sample", "read_labels"]
