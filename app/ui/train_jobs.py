"""Training from the app (Qt-free): what to train, where the checkpoint goes, and the run itself.

The Train view builds a :class:`TrainPlan` from its form; :func:`run_plan` does the work on a worker thread
(building the model, loading the data, training, measuring the test NLL) and appends every event to a list that
the view reads on its timer, so that the curves get every point however seldom the view repaints.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from app.core.errors import ARExplorerError, Cancelled, ModelError
from app.core.model import ARModel, ModelSpec
from app.core.registry import Registry
from app.core.session import Session
from app.core.training import TrainConfig, TrainEvent, train

VALID_IMAGES = 1000  # validation images per evaluation: a point on the curve every few seconds, not minutes
EVALS_PER_EPOCH = 10
EVALS_PER_RUN = 20  # and at least this many over the time budget, however slow the device


@dataclass
class TrainPlan:
    """Everything a training run from the app needs; ``start_from`` names a loaded checkpoint to continue."""

    model: str
    dataset: str
    hparams: dict[str, Any]
    out: Path
    ordering: str | None = None
    epochs: float = 1.0
    batch_size: int = 64
    lr: float = 2e-3
    minutes: float = 5.0
    start_from: str | None = None  # the checkpoint whose weights ``start_model`` is a copy of
    start_model: ARModel | None = None
    measure_test: bool = True
    valid_images: int = VALID_IMAGES  # per validation


@dataclass
class RunRecord:
    """What the view reads while a run goes on: every event so far, and the test NLL at the end."""

    events: list[TrainEvent] = field(default_factory=list)
    phase: str = "preparing"
    test: dict[str, Any] | None = None
    out: Path | None = None


def compatible_datasets(registry: Registry, spec: ModelSpec) -> list[str]:
    """The datasets whose kind the model takes, in the registry's order."""
    return [name for name, d in registry.datasets.items() if d.kind in spec.data_kinds]


def parse_hparams(text: str) -> dict[str, Any]:
    """The hyperparameters typed in the view: a JSON object (``{"channels": 32, "layers": 4}``)."""
    text = text.strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ARExplorerError(f"the hyperparameters are not valid JSON ({exc.msg} at character {exc.pos}); "
                              'write them like {"channels": 32, "layers": 4}') from None
    if not isinstance(value, dict):
        raise ARExplorerError('the hyperparameters must be a JSON object, like {"channels": 32, "layers": 4}')
    return value


def output_path(folder: Path, stem: str, taken: Iterable[str] = ()) -> Path:
    """A new checkpoint in ``folder`` named ``stem`` (then ``stem-2``, ``stem-3``...): never an existing file,
    and never the name of a checkpoint in ``taken``.

    The app lists checkpoints by name, the shipped folder first: a checkpoint of the user's under a shipped
    checkpoint's name would never show in the list, and opening it would show the shipped one's figures.
    """
    stem = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in stem).strip("-.") or "model"
    taken = set(taken)
    candidate, n = folder / f"{stem}.safetensors", 1
    while candidate.exists() or candidate.with_suffix(".json").exists() or candidate.stem in taken:
        n += 1
        candidate = folder / f"{stem}-{n}.safetensors"
    return candidate


def output_stem(model: str, dataset: str, ordering: str | None, start_from: str | None) -> str:
    """The name a run from the app gives its checkpoint: what it is and that it was trained here (the
    shipped ones are named ``MODEL-DATASET``), or what it continues."""
    if start_from:
        return f"{start_from}-continued"
    return f"{model}-{dataset}" + (f"-{ordering}" if ordering else "") + "-trained"


def run_plan(session: Session, plan: TrainPlan, record: RunRecord,
             should_stop: Callable[[], bool] = lambda: False) -> Iterator[TrainEvent]:
    """Build (or copy) the model, train it with the plan, then measure its test NLL; every event also goes
    into ``record.events``. The checkpoint at ``plan.out`` is written at each better validation."""
    registry = session.registry
    spec = registry.model(plan.model)
    dataset = registry.dataset(plan.dataset)
    if dataset.kind not in spec.data_kinds:
        raise ARExplorerError(f"{spec.title} models {', '.join(spec.data_kinds)} data; {dataset.title} is {dataset.kind}")
    record.phase = "loading the data"
    train_split = session.split(dataset, "train")
    valid_split = session.split(dataset, "valid", plan.valid_images) if "valid" in dataset.splits else None
    record.phase = "building the model"
    if plan.start_model is not None:
        source = plan.start_model
        if source.spec.name != spec.name or tuple(source.shape) != tuple(dataset.shape) \
                or source.num_values != dataset.num_values:
            raise ARExplorerError(f"{plan.start_from} is a {source.spec.title} of {tuple(source.shape)} images "
                                  f"with {source.num_values} values: it cannot continue on {dataset.title}")
        model = source.float().to(session.device)
    else:
        ordering = registry.ordering(plan.ordering, dataset.shape[1], dataset.shape[2], 0) \
            if plan.ordering and spec.orderings == "build" else None
        config = spec.make_config(dataset.shape, dataset.num_values, plan.hparams, ordering)
        torch.manual_seed(0)
        try:
            model = spec.create(config).to(session.device)
        except Exception as exc:  # noqa: BLE001 - a plugin's constructor may raise anything on bad hparams
            raise ModelError(f"building {spec.title} with these hyperparameters failed: {type(exc).__name__}: {exc}") from None
    n = len(train_split.images)
    steps_per_epoch = max(1, n // max(1, plan.batch_size))
    cfg = TrainConfig(epochs=plan.epochs, batch_size=plan.batch_size, lr=plan.lr, max_minutes=plan.minutes or None,
                      eval_every=max(1, steps_per_epoch // EVALS_PER_EPOCH), valid_limit=plan.valid_images,
                      eval_seconds=max(5.0, 60.0 * plan.minutes / EVALS_PER_RUN) if plan.minutes else 0.0,
                      log_every=max(1, min(20, steps_per_epoch // 20)))
    meta = {"dataset": dataset.name, "binarization": dataset.binarization}
    if plan.start_from:
        meta["trained_from"] = plan.start_from
    plan.out.parent.mkdir(parents=True, exist_ok=True)
    record.out = plan.out
    record.phase = "training"
    for event in train(model, train_split, valid_split, cfg, plan.out, meta, should_stop=should_stop):
        record.events.append(event)
        yield event
    if plan.measure_test and plan.out.exists() and "test" in dataset.splits and not should_stop():
        record.phase = "measuring the test NLL"
        loaded = session.load(plan.out)
        try:
            record.test = session.evaluate(loaded, split="test", should_stop=should_stop)
        except Cancelled:
            record.phase = "stopped before the test NLL was measured"
            return
    record.phase = "done"


def describe_event(event: TrainEvent, dims: int) -> str:
    """One line of progress: step, epoch, speed, the latest training and the best validation NLL."""
    parts = [f"step {event.step}", f"epoch {event.epoch:.2f}", f"{event.elapsed_s:.0f} s"]
    if event.images_per_s:
        parts.append(f"{event.images_per_s:.0f} images/s")
    if event.train_nll is not None and math.isfinite(event.train_nll):
        parts.append(f"training batch {event.train_nll:.1f} nats per image")
    if event.best_valid_nll is not None and math.isfinite(event.best_valid_nll):
        bpd = event.best_valid_nll / (dims * math.log(2))
        parts.append(f"best validation {event.best_valid_nll:.2f} nats per image ({bpd:.4f} bits/dim)")
    return " · ".join(parts)


__all__ = ["TrainPlan", "RunRecord", "compatible_datasets", "parse_hparams", "output_path", "output_stem", "run_plan",
           "describe_event", "VALID_IMAGES"]
