"""The interpolation as one labelled PNG figure (what ``ar-explorer fisher --out`` writes)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from app.core.fisher.interpolation import ROWS, Interpolation

ROW_TITLES = {
    "pixel": "pixels (cross-fade)",
    "activation": "mean activations",
    "fisher": "Fisher scores",
    "nearest": "nearest test image",
}


def intensity_tile(values: np.ndarray, scale: int) -> np.ndarray:
    """``(C, H, W)`` intensities in [0, 1] to an ``(H*scale, W*scale, 3)`` uint8 tile."""
    array = np.clip(np.asarray(values, dtype=np.float32), 0.0, 1.0)
    rgb = np.repeat(array[0][..., None], 3, axis=2) if array.shape[0] == 1 else array.transpose(1, 2, 0)
    return (rgb * 255).round().astype(np.uint8).repeat(scale, axis=0).repeat(scale, axis=1)


def row_note(result: Interpolation, row: str) -> str:
    """The figure's note beside a row: the mean NLL of its interior points (nats per image), if measured."""
    nats = result.interior_nll.get(row)
    if nats is None or len(nats) == 0:
        return ""
    return f"{float(np.mean(nats)):.1f} nats"


def interpolation_figure(result: Interpolation, num_values: int, scale: int = 3) -> Image.Image:
    """One row per space (A, the decoded points, B), then the nearest reference images; beside each strip the
    mean NLL of its interior points (nats per image, under the model) and under each nearest image its class."""
    steps = len(result.alphas)
    _, h, w = result.image_a.shape
    tile_h, tile_w, pad, label_w, note_w = h * scale, w * scale, 4, 150, 90
    columns = steps + 2
    rows = [*ROWS, *(["nearest"] if result.nearest.size else [])]
    width = label_w + columns * (tile_w + pad) + 2 * pad + note_w
    height = len(rows) * (tile_h + pad) + pad
    canvas = np.full((height, width, 3), 40, dtype=np.uint8)
    ends = (result.image_a / (num_values - 1), result.image_b / (num_values - 1))
    for r, row in enumerate(rows):
        y = pad + r * (tile_h + pad)
        if row == "nearest":
            tiles = [None, *(result.nearest_images[:, 0] / (num_values - 1)), None]
        else:
            tiles = [ends[0], *result.row(row), ends[1]]
        for c, tile in enumerate(tiles):
            if tile is None:
                continue
            x = label_w + pad + c * (tile_w + pad) + (pad if c == columns - 1 else 0) - (pad if c == 0 else 0)
            canvas[y : y + tile_h, x : x + tile_w] = intensity_tile(tile, scale)
    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    note_x = label_w + columns * (tile_w + pad) + 2 * pad
    for r, row in enumerate(rows):
        y = pad + r * (tile_h + pad)
        draw.text((6, y + tile_h // 2 - 6), ROW_TITLES[row], fill=(230, 230, 230))
        draw.text((note_x, y + tile_h // 2 - 6), row_note(result, row) if row != "nearest" else "", fill=(250, 210, 120))
        if row == "nearest" and result.nearest_labels.size:
            for c, label in enumerate(result.nearest_labels[:, 0]):
                if label >= 0:
                    x = label_w + pad + (c + 1) * (tile_w + pad)
                    draw.text((x + 2, y + 1), str(int(label)), fill=(250, 210, 120))
    return image


__all__ = ["ROW_TITLES", "interpolation_figure", "intensity_tile", "row_note"]
