"""From raw embeddings to the coordinates a decoder reads: standardised, then reduced to principal components.

Each raw coordinate is standardised with the mean and standard deviation of the training images. With
``components`` > 0 the standardised embeddings are then projected on their first principal components (over
the same training images): measured on the shipped Gated PixelCNN, a decoder trained on 128 components decodes
interior points of Fisher-space lines into images the model finds likelier than one trained on all 4096
coordinates, and it keeps the stored decoder small.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.core.fisher.errors import FisherError


@dataclass
class Coordinates:
    """``mean`` and ``std`` ``(D,)`` of the raw coordinates; ``basis`` ``(k, D)`` (principal directions of the
    standardised ones, by decreasing variance) or None to keep all ``D`` standardised coordinates."""

    mean: np.ndarray
    std: np.ndarray
    basis: np.ndarray | None = None

    @classmethod
    def fit(cls, raw: np.ndarray, components: int = 0) -> Coordinates:
        """Statistics of ``raw`` ``(N, D)`` training embeddings; ``components`` principal directions (0: none)."""
        raw = np.asarray(raw, dtype=np.float64)
        if raw.ndim != 2 or raw.shape[0] < 2:
            raise FisherError("coordinates need at least two training embeddings")
        mean, std = raw.mean(0), raw.std(0) + 1e-6
        if components <= 0:
            return cls(mean.astype(np.float32), std.astype(np.float32))
        if components > min(raw.shape):
            raise FisherError(f"{components} principal components need at least as many training images and "
                              f"coordinates, not {raw.shape[0]} images of {raw.shape[1]}")
        _, _, vt = np.linalg.svd((raw - mean) / std, full_matrices=False)
        # A principal direction has no sign of its own: fix one so that the same data give the same basis.
        vt = vt[:components] * np.sign(vt[:components, :1] + 1e-30)
        return cls(mean.astype(np.float32), std.astype(np.float32), vt.astype(np.float32))

    @property
    def size(self) -> int:
        """How many numbers :meth:`transform` gives per image."""
        return int(self.basis.shape[0]) if self.basis is not None else int(self.mean.shape[0])

    def transform(self, raw: np.ndarray) -> np.ndarray:
        """``(N, D)`` raw embeddings to ``(N, size)`` float32 decoder coordinates."""
        standard = (np.asarray(raw, dtype=np.float32) - self.mean) / self.std
        return (standard @ self.basis.T if self.basis is not None else standard).astype(np.float32)


__all__ = ["Coordinates"]
