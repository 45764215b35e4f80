"""Measuring a Fisher space over many pairs: what ``benchmarks/fisher_interpolation.py`` prints.

For each seeded pair of test digits of different classes, the three strips are made; each row is judged by the
mean NLL under the model of its interior points (quantised; lower is likelier), by how well its decoder
reconstructs the two ends (binary cross-entropy of the real images under the decoded means, nats per image:
held-out, since the decoders never saw test images), and by how confidently the app's digit classifier reads
its interior points as some digit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from app.core.fisher.interpolation import ROWS, Interpolation, interpolate
from app.core.fisher.measure import RowFigure, quantise
from app.core.fisher.progress import EmbedProgress
from app.core.fisher.space import FisherSpace
from app.core.model import ARModel

_EPS = 1e-6


def end_reconstruction_nats(result: Interpolation, num_values: int) -> dict[str, np.ndarray]:
    """``(2,)`` per decoded row: the binary cross-entropy (nats per image) of images A and B under the row's
    decoded ends, for binary images; an empty dict otherwise."""
    if num_values != 2:
        return {}
    out = {}
    for row in ("activation", "fisher"):
        strip = result.row(row)
        nats = []
        for decoded, image in ((strip[0], result.image_a), (strip[-1], result.image_b)):
            p = np.clip(decoded.astype(np.float64), _EPS, 1 - _EPS)
            nats.append(float(-(image * np.log(p) + (1 - image) * np.log(1 - p)).sum()))
        out[row] = np.asarray(nats)
    return out


def digit_confidence(strip: np.ndarray, num_values: int) -> np.ndarray:
    """``(S - 2,)``: the digit classifier's probability of the digit it reads in each interior point
    (quantised as the model sees it); NaN where no classifier reads these images."""
    from app.core.classifier import classify, load_classifier
    from app.core.errors import CheckpointError

    interior = quantise(strip[1:-1], num_values)
    try:
        classifier, _ = load_classifier()
        return classify(classifier, interior, num_values).confidence.astype(np.float64)
    except (CheckpointError, ValueError):
        return np.full(len(interior), np.nan)


@dataclass
class PairsReport:
    """Per row: ``interior_nll`` ``(P, S-2)`` nats per image, ``confidence`` ``(P, S-2)``; per decoded row:
    ``reconstruction`` ``(P, 2)`` nats per image. ``pairs``: the test-split indices of each pair."""

    pairs: list[tuple[int, int]]
    steps: int
    num_dims: int
    interior_nll: dict[str, np.ndarray] = field(default_factory=dict)
    confidence: dict[str, np.ndarray] = field(default_factory=dict)
    reconstruction: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: float = 0.0

    def figure(self, row: str) -> RowFigure:
        """The mean interior NLL of ``row`` over every pair, with its standard error."""
        return RowFigure.of(self.interior_nll[row], self.num_dims)

    def paired_difference(self, row: str, baseline: str) -> RowFigure:
        """``row`` minus ``baseline``, pair by pair (mean interior NLL per pair): negative means ``row`` is
        likelier. The pairs are the same, so this is measured more closely than either mean."""
        per_pair = self.interior_nll[row].mean(1) - self.interior_nll[baseline].mean(1)
        return RowFigure.of(per_pair, self.num_dims)


def measure_pairs_steps(
    model: ARModel,
    space: FisherSpace,
    images: np.ndarray,
    pairs: list[tuple[int, int]],
    steps: int = 8,
    should_stop: Callable[[], bool] = lambda: False,
) -> Iterator[EmbedProgress]:
    """Interpolate every pair of ``images`` (indices into it) and measure each row; one event per pair, the
    last (stage ``done``) carrying the :class:`PairsReport`."""
    report = PairsReport(list(pairs), steps, int(np.prod(model.shape)))
    collected: dict[str, dict[str, list[np.ndarray]]] = {"nll": {}, "conf": {}, "rec": {}}
    start = time.perf_counter()
    for done, (a, b) in enumerate(pairs, 1):
        if should_stop():
            return
        result = interpolate(model, space, images[a], images[b], steps)
        for row in ROWS:
            collected["nll"].setdefault(row, []).append(result.interior_nll[row])
            collected["conf"].setdefault(row, []).append(digit_confidence(result.row(row), model.num_values))
        for row, nats in end_reconstruction_nats(result, model.num_values).items():
            collected["rec"].setdefault(row, []).append(nats)
        elapsed = time.perf_counter() - start
        yield EmbedProgress("pairs", done, len(pairs), f"{elapsed / done:.1f} s per pair", elapsed)
    report.interior_nll = {row: np.stack(v) for row, v in collected["nll"].items()}
    report.confidence = {row: np.stack(v) for row, v in collected["conf"].items()}
    report.reconstruction = {row: np.stack(v) for row, v in collected["rec"].items()}
    report.seconds = time.perf_counter() - start
    yield EmbedProgress("done", len(pairs), len(pairs), "done", report.seconds, report)


__all__ = ["PairsReport", "digit_confidence", "end_reconstruction_nats", "measure_pairs_steps"]
