"""How a Fisher space is made: the embedding settings, recorded in the space's metadata."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from app.core.fisher.errors import FisherError
from app.core.fisher.normalisation import NORMALISATIONS
from app.core.fisher.scores import ALL_LAYERS

#: What a space written before these settings existed was made with.
_LEGACY = {"normalisation": "none", "layers": ALL_LAYERS, "stats_images": 0, "components": 0}


@dataclass(frozen=True)
class FisherSettings:
    """How embeddings are computed.

    Parameters
    ----------
    dim
        Size of the sparse random projection of Fisher scores; mean activations are projected to it too where
        they have more numbers, and kept as they are otherwise.
    seed
        The projections' seed.
    method
        Per-example gradients by ``"vmap"``, ``"loop"`` or ``"auto"`` (vmap on a GPU, the loop on a CPU).
    batch_size
        Images per chunk.
    normalisation
        How each parameter's gradient is scaled before the projection (:mod:`app.core.fisher.normalisation`).
    layers
        ``"all"``, or comma-separated prefixes of parameter names: the score is taken over those only.
    stats_images
        Training images whose gradients give the normalisation's statistics.
    components
        Principal components of each space that its decoder reads (0: every standardised coordinate); nearest
        images are found in the same coordinates (:mod:`app.core.fisher.components`).

    The defaults are the settings measured best on the shipped Gated PixelCNN (``benchmarks/fisher_interpolation.py``).
    """

    dim: int = 4096
    seed: int = 0
    method: str = "auto"
    batch_size: int = 32
    normalisation: str = "tensor"
    layers: str = ALL_LAYERS
    stats_images: int = 256
    components: int = 128

    def __post_init__(self) -> None:
        if self.dim < 1 or self.batch_size < 1:
            raise FisherError("the projection size and the batch size must be at least 1")
        if self.components < 0 or self.stats_images < 0:
            raise FisherError("the number of components and of statistics images cannot be negative")
        if self.normalisation not in NORMALISATIONS:
            raise FisherError(f"the normalisation must be one of {', '.join(NORMALISATIONS)}, not "
                              f"{self.normalisation!r}")
        if self.method not in ("auto", "vmap", "loop"):
            raise FisherError(f"the gradient method must be auto, vmap or loop, not {self.method!r}")

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> FisherSettings:
        """Settings from a space's metadata; a space made before a setting existed gets what it was made with."""
        known = {f.name for f in fields(cls)}
        values = {**_LEGACY, **record}
        return cls(**{k: v for k, v in values.items() if k in known})


__all__ = ["FisherSettings"]
