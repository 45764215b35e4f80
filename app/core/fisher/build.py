"""Making a Fisher space: score statistics, both embeddings of the training images, both decoders, the
reference images' Fisher coordinates."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from app.core.fisher.components import Coordinates
from app.core.fisher.decoder import DecoderTraining, train_decoder_steps
from app.core.fisher.embedder import Embedder
from app.core.fisher.normalisation import ScoreScaling, mean_square_steps, parameter_shapes
from app.core.fisher.pairs import read_labels
from app.core.fisher.progress import EmbedProgress
from app.core.fisher.scores import num_parameters
from app.core.fisher.settings import FisherSettings
from app.core.fisher.space import EmbeddingSpace, FisherSpace
from app.core.model import ARModel


@dataclass
class RawEmbeddings:
    """What the slow part of making a space computes: the normalisation, the raw embeddings of the training
    images in both spaces ``(N, D)``, and the reference images' raw Fisher embeddings ``(R, D)``."""

    scaling: ScoreScaling
    fisher: np.ndarray
    activation: np.ndarray
    reference_fisher: np.ndarray
    seconds_per_image: dict[str, float]


def scaling_steps(model: ARModel, train_images: np.ndarray, settings: FisherSettings,
                  should_stop: Callable[[], bool] = lambda: False) -> Iterator[EmbedProgress]:
    """Stage ``statistics``: the normalisation from the first ``stats_images`` training images; the last
    event's ``result`` is the :class:`ScoreScaling`."""
    if settings.normalisation == "none":
        yield EmbedProgress("statistics", 0, 0, "no normalisation", 0.0, ScoreScaling.identity())
        return
    count = max(1, min(settings.stats_images, len(train_images)))
    last = None
    for last in mean_square_steps(model, train_images[:count], settings.layers, settings.method,
                                  settings.batch_size, should_stop):
        if last.result is None:
            yield last
    if last is None or last.result is None:
        return
    scaling = ScoreScaling.from_mean_square(settings.normalisation, last.result,
                                            parameter_shapes(model, settings.layers))
    yield EmbedProgress("statistics", count, count, "done", last.elapsed_s, scaling)


def embedding_steps(model: ARModel, train_images: np.ndarray, reference_images: np.ndarray,
                    settings: FisherSettings, should_stop: Callable[[], bool] = lambda: False
                    ) -> Iterator[EmbedProgress]:
    """Stages ``statistics``, ``fisher``, ``activation``, ``reference``; the last event (stage ``embedded``)
    carries the :class:`RawEmbeddings`. Returns early, with no such event, when ``should_stop()`` is true."""
    last = None
    for last in scaling_steps(model, train_images, settings, should_stop):
        if last.result is None:
            yield last
    if last is None or last.result is None:
        return
    scaling = last.result
    raw, rates = {}, {}
    jobs = (("fisher", Embedder(model, "fisher", settings, scaling), train_images),
            ("activation", Embedder(model, "activation", settings), train_images),
            ("reference", Embedder(model, "fisher", settings, scaling), reference_images))
    for stage, embedder, images in jobs:
        last = None
        for last in embedder.steps(images, should_stop):
            yield EmbedProgress(stage, last.done, last.total, last.message, last.elapsed_s)
        if last is None or last.result is None:
            return
        raw[stage], rates[f"{stage}_seconds_per_image"] = last.result, last.elapsed_s / max(1, len(images))
    yield EmbedProgress("embedded", 1, 1, "done", 0.0,
                        RawEmbeddings(scaling, raw["fisher"], raw["activation"], raw["reference"], rates))


def space_steps(
    model: ARModel,
    raw: RawEmbeddings,
    train_images: np.ndarray,
    reference_images: np.ndarray,
    settings: FisherSettings,
    training: DecoderTraining = DecoderTraining(),
    meta: dict[str, Any] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    reference_labels: np.ndarray | None = None,
    reference_indices: np.ndarray | None = None,
) -> Iterator[EmbedProgress]:
    """Stages ``fisher-decoder``, ``activation-decoder``: each space's coordinates and decoder from ``raw``;
    the last event (stage ``done``) carries the :class:`FisherSpace`."""
    spaces: dict[str, EmbeddingSpace] = {}
    record: dict[str, Any] = {}
    for name, embeddings in (("fisher", raw.fisher), ("activation", raw.activation)):
        coordinates = Coordinates.fit(embeddings, min(settings.components, len(train_images) - 1,
                                                      embeddings.shape[1]))
        last = None
        for last in train_decoder_steps(coordinates.transform(embeddings), train_images, model.num_values,
                                        training, f"{name}-decoder", should_stop, model.device):
            yield last
        if last is None or last.result is None:
            return
        decoder, history = last.result
        spaces[name] = EmbeddingSpace(coordinates, decoder)
        record[f"{name}_dim"] = int(embeddings.shape[1])
        record[f"{name}_decoder_valid_nats"] = history[-1]["valid_nats"] if history else math.nan
        record[f"{name}_decoder_best_valid_nats"] = min(h["valid_nats"] for h in history) if history else math.nan
    labels = read_labels(reference_images, reference_labels, model.num_values)
    record = {**(meta or {}), **raw.seconds_per_image, **record, "num_train_images": int(len(train_images)),
              "num_parameters": num_parameters(model, settings.layers), "decoder_training": asdict(training),
              "reference_labels_source": labels.source}
    space = FisherSpace(settings, spaces["fisher"], spaces["activation"],
                        np.asarray(reference_images, dtype=np.uint8), spaces["fisher"].standardise(raw.reference_fisher),
                        model.num_values, record, raw.scaling, labels.values, reference_indices)
    yield EmbedProgress("done", 1, 1, "done", 0.0, space)


def build_space_steps(
    model: ARModel,
    train_images: np.ndarray,
    reference_images: np.ndarray,
    settings: FisherSettings = FisherSettings(),
    training: DecoderTraining = DecoderTraining(),
    meta: dict[str, Any] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    reference_labels: np.ndarray | None = None,
    reference_indices: np.ndarray | None = None,
) -> Iterator[EmbedProgress]:
    """Make the Fisher space of ``model``, yielding :class:`EmbedProgress` for every chunk and epoch.

    Stages, in order: ``statistics`` (the normalisation's; skipped for ``none``), ``fisher``, ``activation``,
    ``reference``, ``fisher-decoder``, ``activation-decoder``; the last event (stage ``done``) carries the
    :class:`FisherSpace`. Returns early, with no ``done`` event, when ``should_stop()`` becomes true.
    ``reference_labels``: the reference images' classes (default: read as
    :func:`app.core.fisher.pairs.read_labels` does).
    """
    last = None
    for last in embedding_steps(model, train_images, reference_images, settings, should_stop):
        if last.stage != "embedded":
            yield last
    if last is None or last.stage != "embedded":
        return
    yield from space_steps(model, last.result, train_images, reference_images, settings, training, meta,
                           should_stop, reference_labels, reference_indices)


__all__ = ["RawEmbeddings", "build_space_steps", "embedding_steps", "scaling_steps", "space_steps"]
