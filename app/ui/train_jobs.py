"""Training from the app (Qt-free): what to train, where the checkpoint goes, and the run itself.

The Train view builds a :class:`TrainPlan` (the core's :class:`app.core.train_plan.TrainPlan` with the view's
defaults) from its form; :func:`run_plan` runs it on a worker thread through the core's one training path and
appends every event to a list that the view reads on its timer, so that the curves get every point however
seldom the view repaints.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.errors import ARExplorerError
from app.core.model import ModelSpec
from app.core.registry import Registry
from app.core.session import Session
from app.core.train_plan import TrainPlan as CoreTrainPlan
from app.core.train_plan import TrainRun
from app.core.train_plan import run_plan as core_run_plan
from app.core.training import TrainEvent

VALID_IMAGES = 1000  # validation images per evaluation: a point on the curve every few seconds, not minutes
EVALS_PER_EPOCH = 10
EVALS_PER_RUN = 20  # and at least this many over the time budget, however slow the device


@dataclass
class TrainPlan(CoreTrainPlan):
    """A training run from the app: the core's plan with the Train view's defaults (a short run, a point on
    the live curves every few seconds); ``start_from`` names a loaded checkpoint to continue."""

    epochs: float = 1.0
    batch_size: int = 64
    lr: float = 2e-3
    minutes: float | None = 5.0
    valid_images: int = VALID_IMAGES  # per validation
    curve_points_per_epoch: int = EVALS_PER_EPOCH
    curve_points_per_run: int = EVALS_PER_RUN


#: What the view reads while a run goes on: every event so far, the phase, and the test NLL at the end.
RunRecord = TrainRun


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
    """Run ``plan`` on a worker thread (:func:`app.core.train_plan.run_plan`); every event also goes into
    ``record.events``. The checkpoint at ``plan.out`` is written at each better validation."""
    return core_run_plan(session, plan, record, should_stop)


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
