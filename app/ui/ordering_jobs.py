"""Work behind the ordering editor, without Qt: NLL by ordering, the checkpoints trained with each ordering,
and training a model with an edited ordering (a generator of progress events, stopped between steps)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from app.core.checkpoints import CheckpointInfo
from app.core.errors import ARExplorerError
from app.core.model import ModelConfig
from app.core.orderings import Ordering
from app.core.scoring import bits_per_dim, score
from app.core.session import LoadedModel, Session
from app.core.training import TrainConfig, TrainEvent, train
from app.ui.train_jobs import output_path


@dataclass
class MeasureProgress:
    """How far :func:`measure_orderings` has come: the orderings finished, and batches scored of all."""

    rows: list[OrderingRow]
    done: int
    total: int
    current: str  # the ordering being scored


@dataclass
class OrderingRow:
    """One line of the NLL-by-ordering table; ``nll_nats`` is the mean over ``num_images`` images."""

    model: str
    ordering: str
    nll_nats: float
    bits_per_dim: float
    num_images: int
    source: str  # "measured now" or "recorded at training"


def nll_under(loaded: LoadedModel, images: np.ndarray, ordering: Ordering | None) -> tuple[float, float]:
    """Mean NLL (nats per image, bits/dim) of ``images`` under the model and ``ordering``."""
    result = score(loaded.model, images, ordering=ordering, batch_size=64)
    nats = float(result.nll_nats.mean())
    return nats, float(bits_per_dim(nats, int(np.prod(loaded.model.shape))))


def nll_by_ordering(
    loaded: LoadedModel, images: np.ndarray, orderings: dict[str, Ordering], should_stop: Callable[[], bool] = lambda: False
) -> list[OrderingRow]:
    """Score the same images under each ordering with one any-order model."""
    rows = []
    for name, ordering in orderings.items():
        if should_stop():
            break
        nats, bpd = nll_under(loaded, images, ordering)
        rows.append(OrderingRow(loaded.name, name, nats, bpd, len(images), "measured now"))
    return rows


def measure_orderings(
    loaded: LoadedModel, images: np.ndarray, orderings: dict[str, Ordering],
    should_stop: Callable[[], bool] = lambda: False, batch_size: int = 32,
) -> Iterator[MeasureProgress]:
    """Score the same images under each ordering, a batch at a time, yielding progress after every batch.

    An any-order model scores an ordering in one network pass per pixel, so a table of nine orderings takes
    minutes on a CPU: the caller shows the progress and may stop between two batches (the orderings finished
    by then keep their rows).
    """
    batches = [images[i:i + batch_size] for i in range(0, len(images), batch_size)]
    total = len(orderings) * len(batches)
    rows: list[OrderingRow] = []
    done = 0
    dims = int(np.prod(loaded.model.shape))
    for name, ordering in orderings.items():
        nll = []
        for batch in batches:
            if should_stop():
                return
            nll.append(score(loaded.model, batch, ordering=ordering, batch_size=batch_size).nll_nats)
            done += 1
            yield MeasureProgress(list(rows), done, total, name)
        nats = float(np.concatenate(nll).mean())
        rows.append(OrderingRow(loaded.name, name, nats, float(bits_per_dim(nats, dims)), len(images), "measured now"))
        yield MeasureProgress(list(rows), done, total, name)


def _ordering_name(info: CheckpointInfo) -> str:
    ordering = (info.meta.get("config") or {}).get("ordering")
    return str(ordering.get("name", "custom")) if isinstance(ordering, dict) else "raster"


def recorded_rows(infos: list[CheckpointInfo], dataset: str | None, shape: tuple[int, ...]) -> list[OrderingRow]:
    """Checkpoints of the same data and shape with a recorded test NLL, with the ordering each was trained in."""
    rows = []
    for info in infos:
        config = info.meta.get("config") or {}
        if info.dataset != dataset or tuple(config.get("shape", ())) != tuple(shape):
            continue
        nats = info.test_nll_nats
        if nats is None or not math.isfinite(nats):
            continue
        count = int(info.meta.get("test_num_images") or 0)
        bpd = float(info.meta.get("test_bits_per_dim") or bits_per_dim(nats, int(np.prod(shape))))
        rows.append(OrderingRow(info.name, _ordering_name(info), float(nats), bpd, count, "recorded at training"))
    return sorted(rows, key=lambda row: (row.ordering, row.nll_nats))


def training_output(loaded: LoadedModel, ordering: Ordering, folder: Path, taken: Iterable[str] = ()) -> Path:
    """A new checkpoint in ``folder`` for ``loaded``'s model trained with ``ordering``, named after both and
    never after a checkpoint that exists (``taken``: the names of every checkpoint the app lists)."""
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in ordering.name).strip("-") or "custom"
    dataset = loaded.info.meta.get("dataset", "data")
    return output_path(folder, f"{loaded.model.spec.name}-{dataset}-{safe}-trained", taken)


def train_with_ordering(
    session: Session,
    loaded: LoadedModel,
    ordering: Ordering,
    out: Path,
    minutes: float,
    should_stop: Callable[[], bool] = lambda: False,
    limit: int = 0,
    epochs: float = 20.0,
) -> Iterator[TrainEvent]:
    """Train a fresh model like ``loaded`` (same family and size) with ``ordering``, on its own dataset.

    Yields the training loop's events; the best checkpoint by validation NLL is written to ``out``.
    """
    spec = loaded.model.spec
    if spec.orderings != "build":
        raise ARExplorerError(f"{spec.title} does not take an ordering when it is built")
    if loaded.dataset is None:
        raise ARExplorerError(f"{loaded.name} names no known dataset to train on")
    old = loaded.model.config
    config = ModelConfig(old.shape, old.num_values, dict(old.hparams), ordering, old.condition)
    torch.manual_seed(0)
    model = spec.create(config).to(session.device)
    train_split = session.split(loaded.dataset, "train", limit)
    valid_split = session.split(loaded.dataset, "valid", min(limit, 2000) if limit else 2000)
    cfg = TrainConfig(epochs=epochs, batch_size=128, lr=1e-3, max_minutes=minutes, log_every=10)
    meta = {"dataset": loaded.dataset.name, "binarization": loaded.dataset.binarization,
            "trained_from": loaded.name}
    yield from train(model, train_split, valid_split, cfg, out, meta, should_stop=should_stop)


__all__ = ["OrderingRow", "MeasureProgress", "nll_under", "nll_by_ordering", "measure_orderings", "recorded_rows",
           "training_output", "train_with_ordering"]
