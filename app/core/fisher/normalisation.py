"""Normalising Fisher scores before they are projected.

A raw score is dominated by a few parameters: on the shipped Gated PixelCNN the 128 weights of the output layer
carry 22% of its squared norm, the 1.6 M others share the rest. A random projection mixes every parameter into
every coordinate, so what dominates the raw score dominates each coordinate, and standardising the coordinates
afterwards cannot undo it. Each parameter (or group of them) is therefore divided by the root mean square of
its gradient over training images first, which is whitening by the diagonal of the empirical Fisher information
``F_ii = E[(d log p(x) / d theta_i)^2]`` (exactly for ``diagonal``, averaged over a group otherwise):

- ``none``: the raw score;
- ``tensor``: one scale per parameter tensor (every weight of a layer counts alike);
- ``channel``: one scale per output channel of each tensor;
- ``diagonal``: one scale per parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from app.core.fisher.errors import FisherError
from app.core.fisher.progress import EmbedProgress
from app.core.fisher.scores import ALL_LAYERS, as_batch, per_example_gradients, selected_parameters
from app.core.model import ARModel

NORMALISATIONS = ("none", "tensor", "channel", "diagonal")

#: A parameter whose gradient is (almost) always zero gets the scale of a parameter this much below the median
#: mean square, so that one rare non-zero gradient cannot dominate a score.
_FLOOR = 1e-3


def _group_sizes(shapes: list[tuple[int, ...]], kind: str) -> list[int]:
    """How many consecutive parameters share one scale, group by group, for ``kind``."""
    if kind == "tensor":
        return [int(np.prod(shape)) for shape in shapes]
    if kind == "channel":
        sizes: list[int] = []
        for shape in shapes:
            rows = shape[0] if shape else 1
            sizes.extend([int(np.prod(shape)) // rows] * rows)
        return sizes
    raise FisherError(f"no groups for the normalisation {kind!r}")


@dataclass
class ScoreScaling:
    """Multipliers of a Fisher score's numbers, one per group of parameters (see the module's docstring).

    ``group_scales`` is empty for ``none``, one number per tensor for ``tensor``, per output channel for
    ``channel``, per parameter for ``diagonal``.
    """

    kind: str
    group_scales: np.ndarray

    @classmethod
    def identity(cls) -> ScoreScaling:
        return cls("none", np.zeros(0, np.float32))

    @classmethod
    def from_mean_square(cls, kind: str, mean_square: np.ndarray, shapes: list[tuple[int, ...]]) -> ScoreScaling:
        """The scaling of ``kind`` from the mean squared gradient of every parameter ``(P,)``."""
        if kind not in NORMALISATIONS:
            raise FisherError(f"the normalisation must be one of {', '.join(NORMALISATIONS)}, not {kind!r}")
        if kind == "none":
            return cls.identity()
        mean_square = np.asarray(mean_square, dtype=np.float64)
        if kind == "diagonal":
            groups = mean_square
        else:
            sizes = np.asarray(_group_sizes(shapes, kind))
            starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            groups = np.add.reduceat(mean_square, starts) / sizes
        positive = groups[groups > 0]
        floor = _FLOOR * float(np.median(positive)) if positive.size else 1.0
        return cls(kind, (1.0 / np.sqrt(np.maximum(groups, floor))).astype(np.float32))

    def expanded(self, shapes: list[tuple[int, ...]]) -> Tensor | None:
        """The multiplier of every parameter ``(P,)``, or None for ``none``."""
        if self.kind == "none":
            return None
        scales = torch.as_tensor(self.group_scales, dtype=torch.float32)
        sizes = [int(np.prod(shape)) for shape in shapes] if self.kind == "diagonal" else _group_sizes(shapes, self.kind)
        groups = sum(sizes) if self.kind == "diagonal" else len(sizes)
        if scales.numel() != groups:
            raise FisherError(f"this {self.kind} normalisation was made for {scales.numel()} groups of parameters, "
                              f"not {groups}: make the Fisher space again")
        return scales if self.kind == "diagonal" else torch.repeat_interleave(scales, torch.as_tensor(sizes))


def parameter_shapes(model: ARModel, layers: str = ALL_LAYERS) -> list[tuple[int, ...]]:
    """The shapes of the parameters a Fisher score over ``layers`` takes, in order."""
    return [tuple(p.shape) for _, p in selected_parameters(model, layers)]


def mean_square_steps(
    model: ARModel,
    images: np.ndarray,
    layers: str = ALL_LAYERS,
    method: str = "auto",
    batch_size: int = 32,
    should_stop: Callable[[], bool] = lambda: False,
) -> Iterator[EmbedProgress]:
    """The mean squared gradient of every parameter over ``images``, chunk by chunk (stage ``statistics``).

    The last event's ``result`` is ``(P,)`` float64 (the diagonal of the empirical Fisher information).
    """
    import time

    x = as_batch(model, images)
    total, start = None, time.perf_counter()
    for begin in range(0, x.shape[0], batch_size):
        if should_stop():
            return
        g = per_example_gradients(model, x[begin : begin + batch_size], method, layers).double()
        squares = (g * g).sum(0).cpu()
        total = squares if total is None else total + squares
        done = min(x.shape[0], begin + batch_size)
        elapsed = time.perf_counter() - start
        yield EmbedProgress("statistics", done, x.shape[0], f"{elapsed / done * 1000:.0f} ms per image", elapsed)
    if total is None:
        raise FisherError("statistics of Fisher scores need at least one image")
    yield EmbedProgress("statistics", x.shape[0], x.shape[0], "done", time.perf_counter() - start,
                        (total / x.shape[0]).numpy())


__all__ = ["NORMALISATIONS", "ScoreScaling", "mean_square_steps", "parameter_shapes"]
