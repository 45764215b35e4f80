"""Interpolating between two images in pixel space (a cross-fade), in mean activations and in Fisher scores."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from app.core.fisher.embedder import Embedder
from app.core.fisher.errors import FisherError
from app.core.fisher.measure import interior_nll
from app.core.fisher.space import FisherSpace
from app.core.model import ARModel

#: The strips of an interpolation, top to bottom.
ROWS = ("pixel", "activation", "fisher")


@dataclass
class Interpolation:
    """Three strips between images A and B, each ``(S, C, H, W)`` intensities in [0, 1], at ``alphas`` ``(S,)``.

    ``pixel`` is the cross-fade; ``activation`` and ``fisher`` decode points on the straight line between the
    two embeddings. ``nearest`` ``(S, k)`` indexes the space's reference images by distance in Fisher space,
    ``nearest_labels`` gives their classes (``-1``: unknown). ``interior_nll`` maps each row to the NLL under
    the model (nats per image) of its interior points, quantised (:mod:`app.core.fisher.measure`); empty
    where it was not measured.
    """

    alphas: np.ndarray
    image_a: np.ndarray
    image_b: np.ndarray
    pixel: np.ndarray
    activation: np.ndarray
    fisher: np.ndarray
    nearest: np.ndarray
    nearest_distances: np.ndarray
    nearest_images: np.ndarray
    nearest_labels: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64))
    interior_nll: dict[str, np.ndarray] = field(default_factory=dict)

    def row(self, name: str) -> np.ndarray:
        """The strip ``name`` (one of :data:`ROWS`)."""
        if name not in ROWS:
            raise FisherError(f"the rows are {', '.join(ROWS)}, not {name!r}")
        return getattr(self, name)


def embed_pair(model: ARModel, space: FisherSpace, images: np.ndarray) -> dict[str, np.ndarray]:
    """Decoder coordinates of a few images ``(N, C, H, W)`` in both spaces."""
    scalings = {"fisher": space.scaling, "activation": None}
    return {
        name: getattr(space, name).standardise(Embedder(model, name, space.settings, scalings[name]).embed(images))
        for name in ("fisher", "activation")
    }


def nearest_references(space: FisherSpace, points: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(S, k)`` and distances of the reference images nearest to each point of Fisher space."""
    reference = space.reference_fisher
    if reference.shape[0] == 0:
        return np.zeros((len(points), 0), np.int64), np.zeros((len(points), 0))
    # |p - r|^2 = |p|^2 - 2 p.r + |r|^2: one matrix product, so that thousands of references stay fast
    d = (points**2).sum(1)[:, None] - 2 * points @ reference.T + (reference**2).sum(1)[None]
    d = np.maximum(d, 0.0)
    k = min(k, d.shape[1])
    index = np.argsort(d, axis=1, kind="stable")[:, :k]
    return index, np.sqrt(np.take_along_axis(d, index, axis=1))


def interpolate(
    model: ARModel,
    space: FisherSpace,
    image_a: np.ndarray,
    image_b: np.ndarray,
    steps: int = 8,
    neighbours: int = 1,
    measure: bool = True,
) -> Interpolation:
    """Interpolate from ``image_a`` to ``image_b`` ``(C, H, W)`` in pixel, activation and Fisher space.

    With ``measure``, each row's interior points are scored under ``model`` (``interior_nll``).
    """
    if steps < 2:
        raise FisherError("an interpolation needs at least 2 steps (the two ends)")
    if tuple(space.reference_images.shape[1:]) != tuple(model.shape) or space.num_values != model.num_values:
        raise FisherError("this Fisher space was made for a model of another shape")
    pair = np.stack([np.asarray(image_a), np.asarray(image_b)]).astype(np.float32)
    alphas = np.linspace(0.0, 1.0, steps).astype(np.float32)
    weights = alphas[:, None]
    embedded = embed_pair(model, space, pair)
    lines = {name: (1 - weights) * z[0] + weights * z[1] for name, z in embedded.items()}
    fades = pair / (model.num_values - 1)
    pixel = ((1 - weights[:, :, None, None]) * fades[0] + weights[:, :, None, None] * fades[1]).astype(np.float32)
    nearest, distances = nearest_references(space, lines["fisher"], neighbours)
    result = Interpolation(
        alphas, pair[0], pair[1], pixel,
        space.activation.decoder.decode(lines["activation"]), space.fisher.decoder.decode(lines["fisher"]),
        nearest, distances,
        space.reference_images[nearest] if nearest.size else np.zeros((steps, 0, *model.shape), np.uint8),
        space.reference_labels[nearest] if nearest.size else np.zeros((steps, 0), np.int64),
    )
    if measure:
        result.interior_nll = {name: interior_nll(model, result.row(name)) for name in ROWS}
    return result


__all__ = ["ROWS", "Interpolation", "embed_pair", "interpolate", "nearest_references"]
