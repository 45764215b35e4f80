"""The work behind the Score view, as plain functions a worker thread runs (Qt-free, tested headless).

Each returns plain data: the per-pixel map of -log p(x_i | x_<i), totals in nats per image and bits/dim,
where the image ranks among test images, and the same image under every compatible checkpoint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from app.core.checkpoints import CheckpointInfo
from app.core.scoring import Conditional, conditional_at, percentile_rank, score
from app.core.session import LoadedModel, Session
from app.ui.example_images import test_images
from app.ui.formatting import data_description

REFERENCE_LIMIT = 1000  # test images scored for a percentile when a checkpoint has no recorded quantiles


@dataclass
class ImageScore:
    """One image under one checkpoint."""

    checkpoint: str
    nll_nats: float
    bits_per_dim: float
    per_pixel_nll: np.ndarray  # (H, W) nats
    percentile: float  # % of reference test images with a lower NLL (nan if none)
    reference: str  # what the percentile compares with


def condition_for(session: Session, loaded: LoadedModel, values: np.ndarray, label: int | None) -> torch.Tensor | None:
    """The condition a conditional model needs to score ``values`` (a class label, or derived from the image)."""
    spec = loaded.model.config.condition
    if spec is None:
        return None
    if spec.kind == "class":
        return session.condition(loaded.model, 1, label=0 if label is None else label)
    return session.condition(loaded.model, 1, image=values)


def reference_quantiles(loaded: LoadedModel) -> np.ndarray | None:
    """The 101 test-NLL quantiles that ``ar-explorer eval`` recorded, if it did."""
    quantiles = loaded.info.meta.get("test_nll_quantiles")
    if not quantiles:
        return None
    array = np.asarray(quantiles, dtype=np.float64)
    return array if array.size and np.all(np.isfinite(array)) else None


def reference_from_test_data(session: Session, loaded: LoadedModel, limit: int = REFERENCE_LIMIT) -> np.ndarray | None:
    """NLLs of up to ``limit`` test images, when the data is here and the model needs no condition."""
    if loaded.model.config.condition is not None:
        return None
    found = test_images(session, loaded, limit)
    if found is None or len(found.images) == 0:
        return None
    return score(loaded.model, found.images).nll_nats


def reference_label(loaded: LoadedModel) -> str:
    title = loaded.dataset.title if loaded.dataset is not None else str(loaded.info.meta.get("dataset", "?"))
    return f"test images of {title}"


def score_image(loaded: LoadedModel, values: np.ndarray, cond: torch.Tensor | None,
                reference: np.ndarray | None) -> ImageScore:
    """Score one image ``(C, H, W)``: totals, the per-pixel map and the percentile."""
    result = score(loaded.model, values[None].astype(np.float32), cond)
    nats = float(result.nll_nats[0])
    percentile = percentile_rank(nats, reference) if reference is not None else math.nan
    return ImageScore(loaded.name, nats, float(result.bits_per_dim[0]), result.per_pixel_nll[0], percentile,
                      reference_label(loaded))


def pixel_conditional(loaded: LoadedModel, values: np.ndarray, position: tuple[int, int, int],
                      cond: torch.Tensor | None) -> Conditional:
    """p(x_i | x_<i) of one pixel of ``values``."""
    return conditional_at(loaded.model, torch.as_tensor(values), position, cond)


@dataclass
class ComparisonRow:
    """One row of the side-by-side table."""

    name: str
    model: str
    data: str
    nll_nats: float
    bits_per_dim: float
    percentile: float
    note: str = ""


def compatible(info: CheckpointInfo, shape: tuple[int, int, int], num_values: int) -> bool:
    config = info.meta.get("config") or {}
    return tuple(config.get("shape") or ()) == tuple(shape) and int(config.get("num_values", -1)) == num_values


def compare_checkpoints(session: Session, infos: list[CheckpointInfo], load, values: np.ndarray, num_values: int,
                        label: int | None, superseded=None, on_rows=None) -> list[ComparisonRow]:
    """Score ``values`` ``(C, H, W)`` under every checkpoint in ``infos`` of its shape and ``num_values``.

    ``load(name) -> LoadedModel`` loads (and caches) a checkpoint. A checkpoint that fails to load or score
    gets a row with the reason instead of numbers. ``superseded()``, checked between checkpoints, stops early
    (with the rows so far) when a newer request is waiting. ``on_rows(rows, total)``, if given, is called after
    each checkpoint but the last (whose row comes with the return value) with the rows so far and how many
    there will be.
    """
    rows = []
    matching = [info for info in infos if compatible(info, tuple(values.shape), num_values)]
    for info in matching:
        if rows and on_rows is not None:
            on_rows(list(rows), len(matching))
        if superseded is not None and superseded():
            break
        dataset = session.registry.datasets.get(str(info.meta.get("dataset")))
        data = data_description(info.meta, dataset.title if dataset is not None else None)
        try:
            loaded = load(info.name)
            cond = condition_for(session, loaded, values, label)
            result = score_image(loaded, values, cond, reference_quantiles(loaded))
        except Exception as exc:  # noqa: BLE001 - one broken checkpoint must not hide the others
            rows.append(ComparisonRow(info.name, info.model, data, math.nan, math.nan, math.nan, str(exc)))
            continue
        note = "scored with class label " + str(label or 0) if loaded.model.config.condition is not None and \
            loaded.model.config.condition.kind == "class" else ""
        rows.append(ComparisonRow(info.name, loaded.title, data, result.nll_nats, result.bits_per_dim,
                                  result.percentile, note))
    return rows


__all__ = [
    "ImageScore",
    "ComparisonRow",
    "score_image",
    "pixel_conditional",
    "compare_checkpoints",
    "condition_for",
    "reference_quantiles",
    "reference_from_test_data",
    "reference_label",
    "compatible",
]
