"""Images to RGB arrays for display: tiled sample grids, heat maps, receptive fields, ordering ranks.

Qt-free numpy, so that the pictures are tested without a display. Every function returns C-contiguous
``uint8`` arrays ``(H, W, 3)`` in row-major order, the fast path of pyqtgraph's ``ImageItem``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Anchors of perceptually ordered colour maps (close to matplotlib's inferno and viridis).
_INFERNO = [(0, 0, 4), (40, 11, 84), (101, 21, 110), (159, 42, 99), (212, 72, 66), (245, 125, 21),
            (250, 193, 39), (252, 255, 164)]
_VIRIDIS = [(68, 1, 84), (72, 40, 120), (62, 74, 137), (49, 104, 142), (38, 130, 142), (31, 158, 137),
            (53, 183, 121), (110, 206, 88), (181, 222, 43), (253, 231, 37)]

UNSAMPLED = (38, 46, 62)  # a pixel not drawn yet: not black, which is a drawn 0
PADDING = (70, 78, 92)
HIDDEN = (235, 64, 52)  # an earlier pixel hidden although pixels beyond it are seen: a blind spot
OUT_OF_REACH = (92, 84, 140)  # an earlier pixel beyond the reach of the layers
LATER = (58, 62, 70)  # a pixel after the inspected one in the ordering
TARGET = (80, 200, 255)


def lut(anchors: list[tuple[int, int, int]], size: int = 256) -> np.ndarray:
    """A ``(size, 3)`` uint8 lookup table interpolated between colour anchors."""
    anchors_arr = np.asarray(anchors, dtype=np.float64)
    x = np.linspace(0, 1, len(anchors_arr))
    t = np.linspace(0, 1, size)
    return np.stack([np.interp(t, x, anchors_arr[:, i]) for i in range(3)], axis=1).round().astype(np.uint8)


INFERNO = lut(_INFERNO)
VIRIDIS = lut(_VIRIDIS)


def values_to_rgb(values: np.ndarray, num_values: int) -> np.ndarray:
    """``(C, H, W)`` values ``0 .. K-1`` to ``(H, W, 3)`` uint8: grey for one channel, colour for three."""
    scaled = np.asarray(values, dtype=np.float32) * (255.0 / max(num_values - 1, 1))
    scaled = np.clip(scaled.round(), 0, 255).astype(np.uint8)
    if scaled.shape[0] == 3:
        return np.ascontiguousarray(scaled.transpose(1, 2, 0))
    return np.ascontiguousarray(np.repeat(scaled[0][..., None], 3, axis=2))


def apply_lut(array: np.ndarray, table: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """Map ``(H, W)`` floats through a colour table with fixed limits (no autolevels)."""
    span = vmax - vmin if vmax > vmin else 1.0
    index = np.clip((np.asarray(array, dtype=np.float64) - vmin) / span, 0, 1) * (len(table) - 1)
    return np.ascontiguousarray(table[np.nan_to_num(index).round().astype(np.int64)])


def heatmap_rgb(array: np.ndarray, vmax: float | None = None) -> np.ndarray:
    """A per-pixel NLL map ``(H, W)`` in nats as an inferno heat map from 0 to ``vmax``."""
    vmax = float(vmax if vmax is not None else max(float(np.max(array)), 1e-6))
    return apply_lut(array, INFERNO, 0.0, vmax)


@dataclass
class GridLayout:
    """Where each image of a tiled grid lies: tile ``i`` starts at ``origin(i)`` (row, col) in the grid."""

    count: int
    columns: int
    height: int
    width: int
    pad: int = 1

    @property
    def rows(self) -> int:
        return -(-self.count // self.columns)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows * (self.height + self.pad) + self.pad, self.columns * (self.width + self.pad) + self.pad)

    def origin(self, index: int) -> tuple[int, int]:
        r, c = divmod(index, self.columns)
        return (self.pad + r * (self.height + self.pad), self.pad + c * (self.width + self.pad))

    def locate(self, row: float, col: float) -> tuple[int, int, int] | None:
        """Grid coordinates to ``(image index, row, col)``, or None on the padding or outside."""
        r, c = int(np.floor(row)), int(np.floor(col))
        tile_r, in_r = divmod(r - self.pad, self.height + self.pad)
        tile_c, in_c = divmod(c - self.pad, self.width + self.pad)
        if r < self.pad or c < self.pad or in_r >= self.height or in_c >= self.width:
            return None
        index = tile_r * self.columns + tile_c
        if tile_c >= self.columns or not 0 <= index < self.count:
            return None
        return index, in_r, in_c


def grid_layout(count: int, height: int, width: int, pad: int = 1) -> GridLayout:
    """A near-square grid for ``count`` images."""
    return GridLayout(count, int(np.ceil(np.sqrt(count))), height, width, pad)


def tile_rgb(
    images: np.ndarray,
    num_values: int,
    layout: GridLayout,
    drawn: np.ndarray | None = None,
    rank: np.ndarray | None = None,
) -> np.ndarray:
    """Tile ``(N, C, H, W)`` images into one RGB grid.

    ``drawn`` ``(H, W)`` marks the positions already sampled: the others are shown in a muted colour, or, with
    ``rank`` ``(H, W)`` (the step of the ordering at which each position is drawn), coloured by when they will be
    drawn, dark first to bright last.
    """
    grid = np.empty((*layout.shape, 3), dtype=np.uint8)
    grid[:] = PADDING
    pending = None
    if drawn is not None:
        pending = np.empty((layout.height, layout.width, 3), dtype=np.uint8)
        if rank is not None:
            pending[:] = apply_lut(rank, VIRIDIS, 0, max(int(rank.max()), 1)) // 2 + 20
        else:
            pending[:] = UNSAMPLED
    for i in range(layout.count):
        tile = values_to_rgb(images[i], num_values)
        if pending is not None:
            tile = np.where(drawn[..., None], tile, pending)
        r, c = layout.origin(i)
        grid[r : r + layout.height, c : c + layout.width] = tile
    return grid


def blind_spot_mask(field: np.ndarray, rank: np.ndarray, target: tuple[int, int]) -> np.ndarray:
    """Earlier positions above the target that the conditional cannot see although it sees a position further
    up the same column: holes inside what it sees, not the edge of its reach (PixelCNN's blind spot)."""
    r, _ = target
    hidden = (rank < rank[target]) & ~(np.asarray(field) > 0)
    seen = np.asarray(field) > 0
    seen_above = np.cumsum(seen, axis=0) - seen > 0  # some position higher in the same column is seen
    mask = hidden & seen_above
    mask[r:] = False
    return mask


def receptive_field_rgb(field: np.ndarray, rank: np.ndarray, target: tuple[int, int]) -> np.ndarray:
    """Colour a receptive field ``(H, W)`` (``|gradient|``, summed over channels) for a target pixel.

    Positions the conditional sees are coloured by ``log |gradient|``; earlier positions it cannot see are red
    inside what it sees (the blind spot) and violet beyond its reach; later positions are dark.
    """
    field = np.asarray(field, dtype=np.float64)
    r, c = target
    before = rank < rank[r, c]
    seen = field > 0
    out = np.empty((*field.shape, 3), dtype=np.uint8)
    out[:] = LATER
    if seen.any():
        logs = np.log10(field[seen])
        hi = float(logs.max())
        lo = max(float(logs.min()), hi - 4.0)  # four decades of influence
        coloured = apply_lut(np.log10(np.where(seen, field, 1e-300)), INFERNO[40:], lo, hi)
        out[seen] = coloured[seen]
    out[before & ~seen] = OUT_OF_REACH
    out[blind_spot_mask(field, rank, target)] = HIDDEN
    out[r, c] = TARGET
    return np.ascontiguousarray(out)


@dataclass
class FieldSummary:
    """What a receptive field says about one conditional, in numbers a lecture can quote."""

    before: int  # positions before the target in the ordering
    seen: int  # of those, positions with a non-zero gradient
    blind: int  # hidden earlier positions inside what it sees (see :func:`blind_spot_mask`)
    nearest_blind: tuple[int, int] | None  # the closest of them
    nearest_blind_distance: float
    seen_after: int  # positions after the target with a non-zero gradient (must be 0)

    @property
    def hidden(self) -> int:
        return self.before - self.seen

    @property
    def out_of_reach(self) -> int:
        return self.hidden - self.blind


def summarize_field(field: np.ndarray, rank: np.ndarray, target: tuple[int, int]) -> FieldSummary:
    """Count what the conditional at ``target`` sees and what lies in its blind spot."""
    r, c = target
    before = rank < rank[r, c]
    seen = np.asarray(field) > 0
    blind = blind_spot_mask(field, rank, target)
    nearest, distance = None, float("inf")
    if blind.any():
        rows, cols = np.nonzero(blind)
        d = np.hypot(rows - r, cols - c)
        i = int(np.argmin(d))
        nearest, distance = (int(rows[i]), int(cols[i])), float(d[i])
    after = ~before & seen
    after[r, c] = False  # a colour channel may see the earlier channels of its own pixel
    return FieldSummary(int(before.sum()), int((before & seen).sum()), int(blind.sum()), nearest, distance,
                        int(after.sum()))


__all__ = [
    "GridLayout",
    "grid_layout",
    "tile_rgb",
    "values_to_rgb",
    "heatmap_rgb",
    "apply_lut",
    "blind_spot_mask",
    "receptive_field_rgb",
    "summarize_field",
    "FieldSummary",
    "INFERNO",
    "VIRIDIS",
]
