"""The ordering editor's state, without Qt: the ordering being edited, painting, undo, validation, pictures.

Painting gives each cell clicked or dragged over the next rank (:func:`app.core.orderings.painted`); cells not
painted yet either follow in raster order ("fill the rest") or are reported as missing, and the ordering is not
usable until they are painted. Every change can be undone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.core.errors import OrderingError
from app.core.orderings import Ordering, painted, raster, validate_order
from app.ui.rendering import TARGET, UNSAMPLED, VIRIDIS, apply_lut

UNDO_LIMIT = 100
DIMMED = 0.4  # the brightness left to the cells a selected cell may not see


@dataclass
class Validation:
    """Whether the edited ordering is usable, and a sentence saying why or why not."""

    ok: bool
    message: str


class OrderingEditor:
    """The ordering of an ``height`` x ``width`` grid being edited."""

    def __init__(self, height: int, width: int, ordering: Ordering | None = None) -> None:
        self.height, self.width = int(height), int(width)
        self.ordering = ordering or raster(height, width)
        self.strokes: list[tuple[int, int]] | None = None  # cells painted so far, while painting
        self.fill_rest = True
        self._stroke_open = False
        self._undo: list[tuple[Ordering, list[tuple[int, int]] | None]] = []

    # -- history -----------------------------------------------------------------------------------------------
    def _push(self) -> None:
        self._undo.append((self.ordering, None if self.strokes is None else list(self.strokes)))
        del self._undo[:-UNDO_LIMIT]

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    def undo(self) -> bool:
        if not self._undo:
            return False
        self.ordering, self.strokes = self._undo.pop()
        return True

    # -- whole-ordering edits ------------------------------------------------------------------------------------
    def set(self, ordering: Ordering) -> None:
        """Replace the ordering (a preset, a loaded file); stops painting."""
        if (ordering.height, ordering.width) != (self.height, self.width):
            raise OrderingError(
                f"the ordering is {ordering.height}x{ordering.width}; the model's images are {self.height}x{self.width}"
            )
        self._push()
        self.ordering, self.strokes = ordering, None

    def reverse(self) -> None:
        self.set(self.ordering.reversed())

    def transpose(self) -> None:
        if self.height != self.width:
            raise OrderingError("only a square grid can be transposed")
        self.set(self.ordering.transposed())

    def flip(self, axis: str) -> None:
        self.set(self.ordering.flipped(axis))

    # -- painting ------------------------------------------------------------------------------------------------
    @property
    def painting(self) -> bool:
        return self.strokes is not None

    def start_painting(self) -> None:
        """Start a painted ordering from nothing (the first cell painted comes first)."""
        self._push()
        self.strokes = []
        self._stroke_open = True  # the first stroke belongs to the same undo step
        self._update_painted()

    def paint(self, cells: list[tuple[int, int]]) -> int:
        """Give the cells not painted yet the next ranks; returns how many were new."""
        if self.strokes is None:
            self.start_painting()
        seen = set(self.strokes)
        new = [(int(r), int(c)) for r, c in cells
               if 0 <= r < self.height and 0 <= c < self.width and (int(r), int(c)) not in seen]
        new = list(dict.fromkeys(new))
        if new:
            if not self._stroke_open:  # one undo step per stroke, however many cells it crosses
                self._push()
                self._stroke_open = True
            self.strokes.extend(new)
            self._update_painted()
        return len(new)

    def end_stroke(self) -> None:
        self._stroke_open = False

    def set_fill_rest(self, fill: bool) -> None:
        self.fill_rest = bool(fill)
        if self.painting:
            self._update_painted()

    def _update_painted(self) -> None:
        self.ordering = painted(self.height, self.width, self.strokes or [])

    @property
    def num_painted(self) -> int:
        return len(self.strokes) if self.strokes is not None else self.height * self.width

    # -- what is usable --------------------------------------------------------------------------------------------
    def validation(self) -> Validation:
        """Usable or not, in words: what is missing while painting without filling the rest."""
        total = self.height * self.width
        if not self.painting or self.num_painted == total:
            return Validation(True, f"{self.ordering.name}: all {total} positions, each once")
        if self.fill_rest:
            return Validation(True, f"{self.num_painted} of {total} positions painted; the other "
                              f"{total - self.num_painted} follow in raster order")
        try:
            validate_order(self.height, self.width, self.strokes)
        except OrderingError as exc:
            return Validation(False, f"not usable yet: {exc}")
        return Validation(True, "complete")

    def usable(self) -> Ordering | None:
        """The ordering to apply, or None while it is incomplete."""
        return self.ordering if self.validation().ok else None

    def rank(self) -> np.ndarray:
        return self.ordering.rank

    def painted_mask(self) -> np.ndarray:
        """``(H, W)``: True where a cell has a rank the user chose (everywhere unless painting)."""
        mask = np.zeros((self.height, self.width), dtype=bool)
        if self.strokes is None:
            mask[:] = True
        elif self.strokes:
            rows, cols = zip(*self.strokes, strict=True)
            mask[list(rows), list(cols)] = True
        return mask

    def visible_from(self, cell: tuple[int, int]) -> np.ndarray:
        """``(H, W)``: the positions whose values the conditional of ``cell`` may depend on (earlier ranks)."""
        rank = self.rank()
        return rank < rank[cell]


def ordering_rgb(editor: OrderingEditor, selected: tuple[int, int] | None = None) -> np.ndarray:
    """Each cell coloured by its rank (dark first, bright last); unpainted cells grey while the rest is not
    filled; with a ``selected`` cell, the cells it may not see are dimmed (to 40%: still the ordering's colours,
    so a projected picture is never a black square) and the cell itself is marked."""
    rank = editor.rank()
    rgb = apply_lut(rank, VIRIDIS, 0, max(rank.size - 1, 1))
    if editor.painting and not editor.fill_rest:
        rgb[~editor.painted_mask()] = UNSAMPLED
    if selected is not None:
        hidden = ~editor.visible_from(selected)
        rgb[hidden] = (rgb[hidden].astype(np.float32) * DIMMED).round().astype(np.uint8)
        rgb[selected] = TARGET
    return np.ascontiguousarray(rgb)


def describe_cell(editor: OrderingEditor, cell: tuple[int, int]) -> str:
    """``row 3, col 5: step 42 of 784 (sees the 41 positions before it)``."""
    r, c = cell
    total = editor.height * editor.width
    if editor.painting and not editor.fill_rest and not editor.painted_mask()[r, c]:
        return f"row {r}, col {c}: not painted yet"
    step = int(editor.rank()[r, c])
    return f"row {r}, col {c}: step {step + 1} of {total} (its conditional may see the {step} positions before it)"


__all__ = ["OrderingEditor", "Validation", "ordering_rgb", "describe_cell"]
