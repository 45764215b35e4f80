"""Completion: keep the known pixels of an image and let a model sample the rest.

The known region is a boolean ``(H, W)`` mask (``True`` = known), from a preset (``top-half``, ``left-half``,
...), an image file (white = known) or an array. :func:`complete` samples ``n`` completions with
:func:`app.core.sampling.prepare_run`, which keeps the known values exactly and, for a model that takes any
ordering, moves the known positions to the front of the ordering so that every sampled pixel is conditioned
on all of them. A model with a fixed or build-time ordering only conditions a pixel on the known pixels that
come before it; :func:`completion_notes` says so when that matters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from app.core.errors import ARExplorerError, ImageError
from app.core.images import convert_image, open_image, to_png_array
from app.core.model import ARModel
from app.core.orderings import Ordering
from app.core.sampling import SampleStep, sample, sample_steps


class CompletionError(ARExplorerError):
    """A known-region mask or an image for completion is unusable."""


def _half(axis: int, first: bool) -> Callable[[int, int], np.ndarray]:
    def make(height: int, width: int) -> np.ndarray:
        mask = np.zeros((height, width), dtype=bool)
        size = (height if axis == 0 else width) // 2
        index = slice(0, size) if first else slice((height if axis == 0 else width) - size, None)
        if axis == 0:
            mask[index, :] = True
        else:
            mask[:, index] = True
        return mask

    return make


def _centre(height: int, width: int) -> np.ndarray:
    mask = np.zeros((height, width), dtype=bool)
    mask[height // 4 : height - height // 4, width // 4 : width - width // 4] = True
    return mask


def _border(height: int, width: int) -> np.ndarray:
    return ~_centre(height, width)


#: Known regions by name: each maps (height, width) to a boolean mask, True where the pixel is known.
MASK_PRESETS: dict[str, Callable[[int, int], np.ndarray]] = {
    "top-half": _half(0, True),
    "bottom-half": _half(0, False),
    "left-half": _half(1, True),
    "right-half": _half(1, False),
    "centre": _centre,
    "border": _border,
}


def mask_preset(name: str, height: int, width: int) -> np.ndarray:
    """The known region named ``name`` on an ``height`` x ``width`` grid."""
    if name not in MASK_PRESETS:
        raise CompletionError(f"no known-region preset {name!r}; presets: {', '.join(MASK_PRESETS)}")
    return MASK_PRESETS[name](height, width)


def mask_from_image(source: str | Path | bytes, height: int, width: int) -> np.ndarray:
    """A known-region mask from an image file: white (or opaque light) pixels are known, black unknown.

    The file is resized to the grid like any input image, but never inverted: white always means known.
    """
    try:
        converted = convert_image(open_image(source), (1, height, width), 2, invert="no")
    except ImageError as exc:
        raise CompletionError(f"cannot read the known-region mask: {exc}") from None
    return converted.values[0].astype(bool)


def resolve_mask(spec: str | Path | np.ndarray, height: int, width: int) -> np.ndarray:
    """A preset name, an image file path or a boolean array, as a validated ``(H, W)`` mask."""
    if isinstance(spec, np.ndarray):
        mask = spec
    elif isinstance(spec, str) and spec in MASK_PRESETS:
        mask = mask_preset(spec, height, width)
    elif Path(spec).exists():
        mask = mask_from_image(spec, height, width)
    else:
        raise CompletionError(
            f"--known {spec!r} is neither a preset ({', '.join(MASK_PRESETS)}) nor an image file"
        )
    return validate_mask(mask, height, width)


def validate_mask(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """Check that ``mask`` is ``(H, W)`` (or ``(1, H, W)``) and leaves something both known and unknown."""
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[0] == 1:
        mask = mask[0]
    if mask.shape != (height, width):
        raise CompletionError(
            f"the known-region mask is {'x'.join(map(str, mask.shape))}; the model's images are {height}x{width}"
        )
    mask = mask.astype(bool)
    if not mask.any():
        raise CompletionError("the known region is empty: nothing to complete from (use sample for new images)")
    if mask.all():
        raise CompletionError("every pixel is known: there is nothing left to complete")
    return mask


def known_is_prefix(ordering: Ordering, known: np.ndarray) -> bool:
    """Whether every known position comes before every unknown one in ``ordering``."""
    ranks = ordering.rank
    return bool(ranks[known].max() < ranks[~known].min())


def completion_notes(model: ARModel, known: np.ndarray, ordering: Ordering | None = None) -> list[str]:
    """What the user should know about how ``model`` uses the known region (empty when it uses all of it)."""
    if model.capability == "any":
        return []
    used = model.resolve_ordering(ordering)
    if known_is_prefix(used, known):
        return []
    return [
        f"{model.spec.title} generates in the {used.name!r} ordering, so a pixel is conditioned only on the known "
        "pixels before it; known pixels after it are kept but were not seen. A model that takes any ordering "
        "conditions on all of them."
    ]


@dataclass
class CompletionResult:
    """``image`` ``(C, H, W)`` the input; ``known`` ``(H, W)``; ``completions`` ``(N, C, H, W)`` uint8."""

    image: np.ndarray
    known: np.ndarray
    completions: np.ndarray
    num_values: int
    notes: list[str] = field(default_factory=list)

    @property
    def num_known(self) -> int:
        return int(self.known.sum())


def _prepare(model: ARModel, image: np.ndarray, known: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    c, h, w = model.shape
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[None]
    if image.shape != (c, h, w):
        raise CompletionError(f"the image is {'x'.join(map(str, image.shape))}; the model takes {c}x{h}x{w}")
    if image.min() < 0 or image.max() >= model.num_values:
        raise CompletionError(f"the image's values must be integers 0..{model.num_values - 1}")
    known = validate_mask(known, h, w)
    return torch.as_tensor(image.astype(np.float32))[None], known


def complete(
    model: ARModel,
    image: np.ndarray,
    known: np.ndarray,
    n: int = 8,
    *,
    seed: int = 0,
    temperature: float = 1.0,
    ordering: Ordering | None = None,
    cond: torch.Tensor | None = None,
    mode: str = "auto",
) -> CompletionResult:
    """Sample ``n`` completions of ``image`` ``(C, H, W)`` that keep the pixels where ``known`` is True."""
    init, known = _prepare(model, image, known)
    values = sample(
        model, n, temperature=temperature, seed=seed, ordering=ordering, cond=cond, mode=mode, init=init, known=known
    )
    completions = values.cpu().numpy().astype(np.uint8)
    return CompletionResult(
        np.asarray(image).reshape(model.shape).astype(np.uint8), known, completions, model.num_values,
        completion_notes(model, known, ordering),
    )


def complete_steps(
    model: ARModel,
    image: np.ndarray,
    known: np.ndarray,
    n: int = 8,
    *,
    every: int = 1,
    **kwargs,
) -> Iterator[SampleStep]:
    """The steps of :func:`complete`, for a live view (see :func:`app.core.sampling.sample_steps`)."""
    init, known = _prepare(model, image, known)
    yield from sample_steps(model, n, every=every, init=init, known=known, **kwargs)


UNKNOWN_TINT = np.array([70, 90, 200], dtype=np.float32)


def masked_preview(image: np.ndarray, known: np.ndarray, num_values: int) -> np.ndarray:
    """``(H, W, 3)`` uint8: the image with its unknown region tinted blue (the hidden original shows faintly)."""
    rgb = to_png_array(np.asarray(image), num_values)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=2)
    out = rgb.astype(np.float32)
    out[~known] = 0.3 * out[~known] + 0.7 * UNKNOWN_TINT
    return out.round().astype(np.uint8)


def tile_row(tiles: list[np.ndarray], scale: int = 4, pad: int = 2, gap_after: int | None = None) -> Image.Image:
    """Tiles ``(H, W, 3)`` uint8 side by side, scaled up, on a grey background (a wider gap after one)."""
    h, w = tiles[0].shape[:2]
    gap = 3 * pad
    widths = [w * scale + (gap if i == gap_after else pad) for i in range(len(tiles))]
    canvas = np.full((h * scale + 2 * pad, pad + sum(widths), 3), 96, dtype=np.uint8)
    x = pad
    for tile, step in zip(tiles, widths, strict=True):
        canvas[pad : pad + h * scale, x : x + w * scale] = tile.repeat(scale, axis=0).repeat(scale, axis=1)
        x += step
    return Image.fromarray(canvas)


def completion_figure(result: CompletionResult, scale: int = 4) -> Image.Image:
    """One row: the input with its unknown region tinted, then every completion."""
    tiles = [masked_preview(result.image, result.known, result.num_values)]
    for values in result.completions:
        tile = to_png_array(values, result.num_values)
        tiles.append(np.repeat(tile[..., None], 3, axis=2) if tile.ndim == 2 else tile)
    return tile_row(tiles, scale=scale, gap_after=0)
