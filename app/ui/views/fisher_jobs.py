"""The Fisher view's work, Qt-free: what runs on its workers, and the strips as pixels.

Each job returns plain data tagged with the checkpoint it was computed for, so that the view can drop a result
that arrives after the user switched to another checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from app.core.fisher import FisherSettings, FisherSpace, Interpolation, interpolate, load_space_for, space_path
from app.core.fisher.checkpoint_space import DEFAULT_REFERENCE, space_steps_for
from app.core.fisher.progress import EmbedProgress
from app.core.session import LoadedModel, Session

#: The lecture's example pair (a 2 and a 9), where the reference set has both.
PREFERRED_PAIR = (2, 9)


def load_space(loaded: LoadedModel, user_dir: Path | None) -> tuple[str, FisherSpace]:
    """The checkpoint's stored Fisher space (raises :class:`~app.core.fisher.FisherError` where there is none)."""
    return loaded.name, load_space_for(loaded.info.weights, user_dir)


def interpolation_job(loaded: LoadedModel, space: FisherSpace, a: np.ndarray, b: np.ndarray, steps: int,
                      sources: tuple[str, str]) -> tuple[str, tuple[str, str], Interpolation]:
    """The three strips between ``a`` and ``b``, each row's interior points scored under the model."""
    return loaded.name, sources, interpolate(loaded.model, space, a, b, steps)


def making_events(session: Session, loaded: LoadedModel, count: int, target: Path
                  ) -> Callable[[Callable[[], bool]], Iterator[EmbedProgress]]:
    """A factory of progress events for :class:`~app.ui.progress_task.ProgressTask`: makes the space with the
    default settings on ``count`` training images and writes it to ``target`` when done."""

    def events(should_stop: Callable[[], bool]) -> Iterator[EmbedProgress]:
        for event in space_steps_for(session, loaded, count, DEFAULT_REFERENCE, FisherSettings(),
                                     should_stop=should_stop):
            if event.stage == "done":
                target.parent.mkdir(parents=True, exist_ok=True)
                event.result.save(target)
            yield event

    return events


def space_target(weights: Path, user_dir: Path, writable: bool) -> Path:
    """Beside the checkpoint where that folder is writable, else in the user's checkpoint folder."""
    return space_path(weights) if writable else user_dir / space_path(weights).name


def default_pair(labels: np.ndarray) -> tuple[int, int]:
    """Two reference images of different digits: the first 2 and the first 9 where both are there (the
    lecture's example), else the first two images of different classes, else the first two images."""
    labels = np.asarray(labels)
    first = {int(c): int(np.flatnonzero(labels == c)[0]) for c in np.unique(labels) if c >= 0}
    if all(c in first for c in PREFERRED_PAIR):
        return first[PREFERRED_PAIR[0]], first[PREFERRED_PAIR[1]]
    if len(first) >= 2:
        a, b = sorted(first.values())[:2]
        return a, b
    return 0, min(1, len(labels) - 1)


def digit_text(label: int) -> str:
    """``"a 4"``, ``"an 8"``; empty for an unknown class."""
    if label < 0:
        return ""
    return f"an {label}" if label == 8 else f"a {label}"


def strip_rgb(tiles: np.ndarray, ends_gap: int = 3) -> np.ndarray:
    """``(S, C, H, W)`` intensities in [0, 1] to one ``(H, S*W + gaps, 3)`` uint8 row; the two ends are set
    apart from the interior by a wider gap (a missing tile, all NaN, stays background)."""
    tiles = np.asarray(tiles, dtype=np.float32)
    count, channels, h, w = tiles.shape
    gaps = [1] * (count - 1)
    if count > 2:
        gaps[0] = gaps[-1] = ends_gap
    width = count * w + sum(gaps)
    row = np.full((h, width, 3), 40, np.uint8)
    x = 0
    for i, tile in enumerate(tiles):
        if not np.isnan(tile).all():
            rgb = np.repeat(tile[0][..., None], 3, 2) if channels == 1 else tile.transpose(1, 2, 0)
            row[:, x : x + w] = (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8)
        x += w + (gaps[i] if i < len(gaps) else 0)
    return row


__all__ = [
    "default_pair",
    "digit_text",
    "interpolation_job",
    "load_space",
    "making_events",
    "space_target",
    "strip_rgb",
]
