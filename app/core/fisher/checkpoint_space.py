"""A checkpoint's Fisher space from its own data: which training and reference images, and what is recorded.

Shared by ``ar-explorer fisher-decoder``, the Fisher view and the benchmark, so that all three make and
describe a space the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from app.core.fisher.build import build_space_steps
from app.core.fisher.decoder import DecoderTraining
from app.core.fisher.errors import FisherError
from app.core.fisher.pairs import Labels, random_sample, read_labels
from app.core.fisher.progress import EmbedProgress
from app.core.fisher.settings import FisherSettings
from app.core.fisher.space import weights_sha256
from app.core.session import LoadedModel, Session

#: Reference test images kept by default: enough that every digit has about a hundred.
DEFAULT_REFERENCE = 1000


@dataclass
class SplitSample:
    """A seeded random sample of a test split: images, their indices in the split, their classes."""

    images: np.ndarray
    indices: np.ndarray
    labels: Labels
    description: str


def sample_test_split(session: Session, loaded: LoadedModel, size: int, seed: int = 0) -> SplitSample:
    """``size`` test images of the checkpoint's dataset (all of them if it has fewer), drawn from ``seed``."""
    if loaded.dataset is None:
        raise FisherError(f"{loaded.name} names no known dataset to take test images from")
    split = session.split(loaded.dataset, "test")
    index = random_sample(len(split), size, seed)
    labels = read_labels(split.images[index], split.labels[index] if split.labels is not None else None,
                         loaded.model.num_values)
    description = (f"{len(index)} test images of {loaded.dataset.title} drawn at random (seed {seed}) from "
                   f"{len(split)}")
    return SplitSample(split.images[index], index, labels, description)


def sample_training_split(session: Session, loaded: LoadedModel, count: int, seed: int = 0) -> np.ndarray:
    """``count`` training images (0: all) drawn from ``seed``."""
    if loaded.dataset is None:
        raise FisherError(f"{loaded.name} names no known dataset to train the decoders on")
    train = session.split(loaded.dataset, "train")
    return train.images[random_sample(len(train), count or len(train), seed)]


def space_inputs(session: Session, loaded: LoadedModel, train_count: int,
                 reference_count: int = DEFAULT_REFERENCE, seed: int = 0) -> tuple[np.ndarray, SplitSample, dict]:
    """The training images, the reference sample and the metadata a checkpoint's Fisher space is made with."""
    train = sample_training_split(session, loaded, train_count, seed)
    reference = sample_test_split(session, loaded, reference_count, seed)
    meta = {
        "checkpoint": loaded.name,
        "checkpoint_sha256": weights_sha256(loaded.info.weights),
        "dataset": loaded.dataset.name,
        "dataset_title": loaded.dataset.title,
        "binarization": loaded.dataset.binarization,
        "device": str(loaded.model.device),
        "reference_set": reference.description,
        "train_seed": seed,
    }
    return train, reference, meta


def space_steps_for(
    session: Session,
    loaded: LoadedModel,
    train_count: int,
    reference_count: int = DEFAULT_REFERENCE,
    settings: FisherSettings = FisherSettings(),
    training: DecoderTraining = DecoderTraining(),
    seed: int = 0,
    should_stop: Callable[[], bool] = lambda: False,
) -> Iterator[EmbedProgress]:
    """:func:`~app.core.fisher.build.build_space_steps` on ``train_count`` training images and a reference set
    of ``reference_count`` test images of the checkpoint's dataset, with what the space must record."""
    train, reference, meta = space_inputs(session, loaded, train_count, reference_count, seed)
    yield from build_space_steps(loaded.model, train, reference.images, settings, training, meta, should_stop,
                                 reference.labels.values, reference.indices)


__all__ = [
    "DEFAULT_REFERENCE",
    "SplitSample",
    "sample_test_split",
    "sample_training_split",
    "space_inputs",
    "space_steps_for",
]
