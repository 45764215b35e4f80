"""Words and numbers for people: every likelihood shown names its unit and its data.

Qt-free, so that the wording is tested without a display.
"""

from __future__ import annotations

import math

import numpy as np

from app.core.checkpoints import CheckpointInfo
from app.core.scoring import bits_per_dim
from app.core.session import LoadedModel
from app.ui.hints import eval_command


def format_nll(nats: float, num_dims: int, precision: int = 1) -> str:
    """``87.3 nats per image (0.161 bits/dim)``."""
    if not math.isfinite(nats):
        return "NLL unavailable (the model returned a non-finite value)"
    bpd = float(bits_per_dim(nats, num_dims))
    return f"{nats:.{precision}f} nats per image ({bpd:.3f} bits/dim)"


def data_description(meta: dict, dataset_title: str | None = None) -> str:
    """``Binarized MNIST (standard ...)`` from a checkpoint's metadata and, when known, its dataset spec."""
    name = dataset_title or str(meta.get("dataset") or "an unnamed dataset")
    binarization = meta.get("binarization")
    return f"{name}; binarization: {binarization}" if binarization else name


def loaded_data_description(loaded: LoadedModel) -> str:
    """The dataset and binarization of a loaded checkpoint, for labels next to its numbers."""
    spec = loaded.dataset
    if spec is not None:
        return f"{spec.title}; binarization: {loaded.info.meta.get('binarization') or spec.binarization}"
    return data_description(loaded.info.meta)


def test_nll_text(info: CheckpointInfo, dataset_title: str | None = None) -> str:
    """The recorded test NLL with its units and data, or how to measure it."""
    meta = info.meta
    nats = meta.get("test_nll_nats")
    data = data_description(meta, dataset_title)
    if nats is None:
        return f"test NLL not measured yet ({eval_command(info.name)}); trained on {data}"
    dims = _num_dims(meta)
    bpd = meta.get("test_bits_per_dim")
    if bpd is None and dims:
        bpd = float(bits_per_dim(float(nats), dims))
    stderr = meta.get("test_nll_stderr")
    plus = f" ± {float(stderr):.2f}" if stderr is not None and math.isfinite(float(stderr)) else ""
    bpd_text = f" ({float(bpd):.3f} bits/dim)" if bpd is not None else ""
    count = meta.get("test_num_images")
    on = f"{int(count):,} test images of " if count else "the test split of "
    return f"test NLL {float(nats):.2f}{plus} nats per image{bpd_text} on {on}{data}"


def checkpoint_label(info: CheckpointInfo) -> str:
    """One line for a picker: name, then the test NLL when it was measured."""
    nats = info.test_nll_nats
    return f"{info.name}  ·  {nats:.1f} nats" if nats is not None else info.name


def percentile_text(percentile: float, reference_label: str) -> str:
    """Where a score falls among reference images (``percentile``: % of them with a lower NLL)."""
    if not math.isfinite(percentile):
        return "no test scores to compare with"
    if percentile >= 100.0:
        return f"more surprising than every one of the {reference_label}"
    if percentile <= 0.0:
        return f"less surprising than every one of the {reference_label}"
    return f"more surprising than {percentile:.0f}% of the {reference_label}"


def rank_text(percentile: float) -> str:
    """The short form of :func:`percentile_text`, for a table column about test images."""
    if not math.isfinite(percentile):
        return "not measured"
    if percentile >= 100.0:
        return "above every test image"
    if percentile <= 0.0:
        return "below every test image"
    return f"more surprising than {percentile:.0f}%"


def position_text(position: tuple[int, int, int], channels: int) -> str:
    """``row 12, col 7`` (with the channel for colour models)."""
    c, r, col = position
    where = f"row {r}, col {col}"
    return f"{where}, channel {'RGB'[c] if channels == 3 else c}" if channels > 1 else where


def parameters_text(count: int | None) -> str:
    if not count:
        return ""
    if count >= 1_000_000:
        return f"{count / 1e6:.1f} M parameters"
    return f"{count / 1e3:.0f} k parameters" if count >= 1000 else f"{count} parameters"


def rate_text(steps_per_second: float) -> str:
    if not math.isfinite(steps_per_second):
        return "as fast as the device goes"
    return f"{steps_per_second:.0f} pixels/s" if steps_per_second >= 10 else f"{steps_per_second:.1f} pixels/s"


def _num_dims(meta: dict) -> int:
    shape = (meta.get("config") or {}).get("shape")
    return int(np.prod(shape)) if shape else 0


__all__ = [
    "format_nll",
    "data_description",
    "loaded_data_description",
    "test_nll_text",
    "checkpoint_label",
    "percentile_text",
    "rank_text",
    "position_text",
    "parameters_text",
    "rate_text",
]
