"""Raw embeddings of images in one space, ``fisher`` or ``activation``: features, scaled, projected."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import numpy as np
from torch import Tensor

from app.core.fisher.activations import activation_features
from app.core.fisher.errors import FisherError
from app.core.fisher.normalisation import ScoreScaling, parameter_shapes
from app.core.fisher.progress import EmbedProgress, final_event
from app.core.fisher.projection import SparseProjection
from app.core.fisher.scores import as_batch, check_model, num_parameters, per_example_gradients
from app.core.fisher.settings import FisherSettings
from app.core.model import ARModel

SPACES = ("fisher", "activation")


def activation_size(model: ARModel) -> int:
    """How many mean activations ``model`` has."""
    import torch

    return int(activation_features(model, torch.zeros(1, *model.shape)).shape[1])


class Embedder:
    """Projected, not yet standardised, embeddings of images in one space.

    ``fisher``: the score over the parameters ``settings.layers`` selects, multiplied by ``scaling`` (the
    normalisation), projected to ``settings.dim`` numbers. ``activation``: the mean activations, projected to
    ``settings.dim`` numbers where they have more, else as they are.
    """

    def __init__(self, model: ARModel, space: str, settings: FisherSettings,
                 scaling: ScoreScaling | None = None) -> None:
        if space not in SPACES:
            raise FisherError(f"the space must be 'fisher' or 'activation', not {space!r}")
        check_model(model)
        self.model, self.space, self.settings = model, space, settings
        self.scales: Tensor | None = None
        if space == "fisher":
            size = num_parameters(model, settings.layers)
            if scaling is not None:
                scales = scaling.expanded(parameter_shapes(model, settings.layers))
                self.scales = scales.to(model.device) if scales is not None else None
            self.projection: SparseProjection | None = SparseProjection(size, settings.dim, settings.seed, model.device)
        else:
            size = activation_size(model)
            self.projection = (SparseProjection(size, settings.dim, settings.seed + 1, model.device)
                               if size > settings.dim else None)
        self.dim = settings.dim if self.projection is not None else size

    def features(self, x: Tensor) -> Tensor:
        """The unprojected features of a batch: scaled Fisher scores, or mean activations."""
        if self.space == "activation":
            return activation_features(self.model, x)
        g = per_example_gradients(self.model, x, self.settings.method, self.settings.layers)
        return g * self.scales if self.scales is not None else g

    def steps(
        self, images: np.ndarray | Tensor, should_stop: Callable[[], bool] = lambda: False
    ) -> Iterator[EmbedProgress]:
        """Embed ``images`` chunk by chunk, yielding progress; the last event's ``result`` is ``(N, dim)``."""
        x = as_batch(self.model, images)
        n, chunks, start = x.shape[0], [], time.perf_counter()
        for begin in range(0, n, self.settings.batch_size):
            if should_stop():
                return
            features = self.features(x[begin : begin + self.settings.batch_size])
            chunks.append((self.projection(features) if self.projection is not None else features).cpu())
            done = min(n, begin + self.settings.batch_size)
            elapsed = time.perf_counter() - start
            yield EmbedProgress(self.space, done, n, f"{elapsed / done * 1000:.0f} ms per image", elapsed)
        result = (np.concatenate([c.numpy() for c in chunks]).astype(np.float32) if chunks
                  else np.zeros((0, self.dim), np.float32))
        yield EmbedProgress(self.space, n, n, "done", time.perf_counter() - start, result)

    def embed(self, images: np.ndarray | Tensor) -> np.ndarray:
        """``(N, dim)`` float32 raw embeddings."""
        last = final_event(self.steps(images))
        return last.result if last is not None else np.zeros((0, self.dim), np.float32)


__all__ = ["SPACES", "Embedder", "activation_size"]
