"""Autoregressive orderings: permutations of the pixel positions of an H x W image.

An :class:`Ordering` lists positions ``(row, col)`` in generation order. Every channel of a position is
generated together with it (red, then green, then blue), so an ordering is over positions, not channels.

The JSON file format is ``{"height": H, "width": W, "order": [[row, col], ...]}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.core.errors import OrderingError
from app.core.files import FileTooLarge, NotARegularFile, atomic_write_text, describe_os_error, read_limited

#: The largest grid side an ordering may have, and the largest ordering file read.
MAX_SIDE = 4096
MAX_FILE_BYTES = 64 * 1024 * 1024


def _short(value: object, limit: int = 60) -> str:
    """``repr`` of a value from an untrusted file, cut to fit in a one-line message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True, eq=False)
class Ordering:
    """A generation order over the positions of an ``height`` x ``width`` grid.

    Parameters
    ----------
    height, width
        Grid size.
    order
        Integer array of shape ``(height * width, 2)``: the ``(row, col)`` of the position generated at each
        step. It must be a permutation of all positions; :func:`validate_order` says what is wrong if not.
    name
        A label for display (``"raster"``, ``"spiral"``, a file name, ...).
    """

    height: int
    width: int
    order: np.ndarray
    name: str = "custom"
    _rank: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        order = validate_order(self.height, self.width, self.order)
        object.__setattr__(self, "order", order)
        rank = np.empty((self.height, self.width), dtype=np.int64)
        rank[order[:, 0], order[:, 1]] = np.arange(len(order))
        rank.setflags(write=False)
        order.setflags(write=False)
        object.__setattr__(self, "_rank", rank)

    @property
    def num_positions(self) -> int:
        return self.height * self.width

    @property
    def rank(self) -> np.ndarray:
        """``(H, W)`` array: the step at which each position is generated (0 first)."""
        return self._rank

    @property
    def flat(self) -> np.ndarray:
        """Flat position indices ``row * width + col`` in generation order."""
        return self.order[:, 0] * self.width + self.order[:, 1]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Ordering):
            return NotImplemented
        return (self.height, self.width) == (other.height, other.width) and bool(
            np.array_equal(self.order, other.order)
        )

    def __hash__(self) -> int:
        return hash((self.height, self.width, self.order.tobytes()))

    def with_name(self, name: str) -> Ordering:
        return Ordering(self.height, self.width, self.order.copy(), name=name)

    def is_raster(self) -> bool:
        return bool(np.array_equal(self.flat, np.arange(self.num_positions)))

    # transforms used by the ordering editor ----------------------------------------------------------------
    def reversed(self) -> Ordering:
        return Ordering(self.height, self.width, self.order[::-1].copy(), name=f"{self.name} reversed")

    def transposed(self) -> Ordering:
        return Ordering(self.width, self.height, self.order[:, ::-1].copy(), name=f"{self.name} transposed")

    def flipped(self, axis: str = "horizontal") -> Ordering:
        order = self.order.copy()
        if axis == "horizontal":
            order[:, 1] = self.width - 1 - order[:, 1]
        elif axis == "vertical":
            order[:, 0] = self.height - 1 - order[:, 0]
        else:
            raise ValueError(f"axis must be 'horizontal' or 'vertical', not {axis!r}")
        return Ordering(self.height, self.width, order, name=f"{self.name} flipped")

    # serialisation ------------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"height": self.height, "width": self.width, "order": self.order.tolist(), "name": self.name}

    @classmethod
    def from_dict(cls, data: object, name: str | None = None) -> Ordering:
        if not isinstance(data, dict):
            raise OrderingError("an ordering must be a JSON object with keys height, width and order")
        missing = [k for k in ("height", "width", "order") if k not in data]
        if missing:
            raise OrderingError(f"the ordering is missing the key(s): {', '.join(missing)}")
        height, width = data["height"], data["width"]
        for key, value in (("height", height), ("width", width)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1 or value > MAX_SIDE:
                raise OrderingError(f"{key} must be a positive integer (at most {MAX_SIDE}), not {_short(value)}")
        order = data["order"]
        if not isinstance(order, list):
            raise OrderingError("order must be a list of [row, col] pairs")
        for i, item in enumerate(order):
            if (
                not isinstance(item, (list, tuple))
                or len(item) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in item)
            ):
                raise OrderingError(f"order[{i}] must be a pair of integers [row, col], not {_short(item)}")
            if not all(-MAX_SIDE <= v <= MAX_SIDE for v in item):
                raise OrderingError(f"position {_short(list(item))} (entry {i}) is outside the {height}x{width} grid")
        array = np.asarray(order, dtype=np.int64).reshape(-1, 2)
        return cls(height, width, array, name=name or str(data.get("name") or "custom"))

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def save(self, path: str | Path) -> None:
        """Write the ordering as JSON, atomically (a crash never leaves half a file)."""
        atomic_write_text(Path(path), json.dumps(self.to_dict(), indent=None) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Ordering:
        """Read an ordering saved by :meth:`save`; :class:`OrderingError` says what is wrong with the file."""
        path = Path(path)
        try:
            # A regular file only (a FIFO would hang, /dev/zero never end), and never more than the limit read.
            # utf-8-sig: editors on Windows start files with a byte-order mark.
            text = read_limited(path, MAX_FILE_BYTES).decode("utf-8-sig")
        except FileNotFoundError:
            raise OrderingError(f"no ordering file at {path}") from None
        except NotARegularFile as exc:
            raise OrderingError(f"{path} is {exc.kind}, not an ordering file") from None
        except FileTooLarge as exc:
            raise OrderingError(f"{path.name} is refused as an ordering file: {exc.strerror}") from None
        except OSError as exc:
            raise OrderingError(f"cannot read the ordering file {path.name}: {describe_os_error(exc)}") from None
        except UnicodeDecodeError as exc:
            raise OrderingError(f"cannot read the ordering file {path.name}: it is not UTF-8 text ({exc.reason} at "
                                f"byte {exc.start})") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise OrderingError(f"{path.name} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
        except RecursionError:
            raise OrderingError(f"{path.name} is not an ordering: its JSON is nested too deeply") from None
        return cls.from_dict(data, name=path.stem)


def validate_order(height: int, width: int, order: object) -> np.ndarray:
    """Check that ``order`` is a permutation of all ``height x width`` positions; return it as an array.

    Raises
    ------
    OrderingError
        Saying precisely what is wrong: the shape, positions out of range, duplicates or missing positions.
    """
    for value in (height, width):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise OrderingError(f"the grid's height and width must be integers, not {_short(height)}x{_short(width)}")
    if height < 1 or width < 1:
        raise OrderingError(f"the grid must be at least 1x1, not {height}x{width}")
    try:
        array = np.asarray(order)
    except Exception:  # ragged lists and other junk
        raise OrderingError("the order is not a list of [row, col] pairs (its entries differ in shape)") from None
    if array.size == 0:
        raise OrderingError(f"the order is empty; it must list all {height * width} positions")
    if array.ndim != 2 or array.shape[1] != 2:
        raise OrderingError(f"the order must be a list of [row, col] pairs, got an array of shape {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        if np.issubdtype(array.dtype, np.floating) and np.all(np.isfinite(array)) and np.all(array == np.round(array)):
            huge = np.flatnonzero(np.abs(array).max(axis=1) > MAX_SIDE)
            if huge.size:  # cast, it would wrap around int64
                i = int(huge[0])
                raise OrderingError(f"position {array[i].tolist()} (entry {i}) is outside the {height}x{width} grid")
            array = array.astype(np.int64)
        else:
            raise OrderingError("positions must be integers")
    array = array.astype(np.int64)
    rows, cols = array[:, 0], array[:, 1]
    bad = np.flatnonzero((rows < 0) | (rows >= height) | (cols < 0) | (cols >= width))
    if bad.size:
        i = int(bad[0])
        raise OrderingError(
            f"position {array[i].tolist()} (entry {i}) is outside the {height}x{width} grid"
            + (f", and {bad.size - 1} more" if bad.size > 1 else "")
        )
    flat = rows * width + cols
    counts = np.bincount(flat, minlength=height * width)
    duplicates = np.flatnonzero(counts > 1)
    missing = np.flatnonzero(counts == 0)
    problems = []
    if duplicates.size:
        shown = ", ".join(str([int(d // width), int(d % width)]) for d in duplicates[:5])
        problems.append(f"{duplicates.size} position(s) appear more than once ({shown})")
    if missing.size:
        shown = ", ".join(str([int(m // width), int(m % width)]) for m in missing[:5])
        problems.append(f"{missing.size} position(s) are missing ({shown}{', ...' if missing.size > 5 else ''})")
    if problems:
        raise OrderingError(
            f"not a permutation of the {height}x{width} positions: " + "; ".join(problems)
        )
    return array.copy()


# presets ---------------------------------------------------------------------------------------------------------


def _from_rank(rank: np.ndarray, name: str) -> Ordering:
    """Build an ordering that visits positions by increasing ``rank`` (ties broken by raster order)."""
    height, width = rank.shape
    flat = np.lexsort((np.arange(rank.size), rank.ravel()))
    order = np.stack([flat // width, flat % width], axis=1)
    return Ordering(height, width, order, name=name)


def raster(height: int, width: int, seed: int | None = None) -> Ordering:
    """Row by row, left to right: the PixelCNN ordering."""
    return _from_rank(np.arange(height * width).reshape(height, width), "raster")


def columns(height: int, width: int, seed: int | None = None) -> Ordering:
    """Column by column, top to bottom."""
    return _from_rank(np.arange(height * width).reshape(width, height).T, "columns")


def random(height: int, width: int, seed: int | None = 0) -> Ordering:
    """A uniformly random permutation, reproducible from ``seed``."""
    rng = np.random.default_rng(0 if seed is None else seed)
    flat = rng.permutation(height * width)
    return Ordering(height, width, np.stack([flat // width, flat % width], axis=1), name=f"random-{seed or 0}")


def even_then_odd(height: int, width: int, seed: int | None = None) -> Ordering:
    """Even-indexed positions first (a checkerboard by raster index), then the odd ones."""
    index = np.arange(height * width).reshape(height, width)
    return _from_rank((index % 2) * index.size + index, "even-then-odd")


def top_bottom_to_middle(height: int, width: int, seed: int | None = None) -> Ordering:
    """Rows alternately from the top and the bottom, meeting in the middle."""
    row_rank = np.empty(height, dtype=np.int64)
    top, bottom, k = 0, height - 1, 0
    while top <= bottom:
        row_rank[top] = k
        k += 1
        if bottom != top:
            row_rank[bottom] = k
            k += 1
        top, bottom = top + 1, bottom - 1
    rank = row_rank[:, None] * width + np.arange(width)[None, :]
    return _from_rank(rank, "top-bottom-to-middle")


def zigzag(height: int, width: int, seed: int | None = None) -> Ordering:
    """Snake: left to right on even rows, right to left on odd rows."""
    rank = np.arange(height * width).reshape(height, width)
    rank[1::2] = rank[1::2, ::-1]
    return _from_rank(rank, "zigzag")


def _hilbert_d2xy(order_bits: int, d: int) -> tuple[int, int]:
    n = 1 << order_bits
    x = y = 0
    s, t = 1, d
    while s < n:
        rx = 1 & (t // 2)
        ry = 1 & (t ^ rx)
        if ry == 0:
            if rx == 1:
                x, y = s - 1 - x, s - 1 - y
            x, y = y, x
        x += s * rx
        y += s * ry
        t //= 4
        s *= 2
    return x, y


def hilbert(height: int, width: int, seed: int | None = None) -> Ordering:
    """A Hilbert curve over the smallest power-of-two square holding the grid, cropped to it."""
    bits = max(1, int(np.ceil(np.log2(max(height, width)))))
    rank = np.full((height, width), -1, dtype=np.int64)
    k = 0
    for d in range((1 << bits) ** 2):
        x, y = _hilbert_d2xy(bits, d)
        if y < height and x < width:
            rank[y, x] = k
            k += 1
    return _from_rank(rank, "hilbert")


def spiral(height: int, width: int, seed: int | None = None) -> Ordering:
    """From the centre outwards, ring by ring (by Chebyshev distance, then angle)."""
    rows, cols = np.mgrid[0:height, 0:width]
    cy, cx = (height - 1) / 2, (width - 1) / 2
    ring = np.maximum(np.abs(rows - cy), np.abs(cols - cx))
    angle = np.mod(np.arctan2(rows - cy, cols - cx), 2 * np.pi)
    key = np.lexsort((angle.ravel(), ring.ravel()))
    rank = np.empty(height * width, dtype=np.int64)
    rank[key] = np.arange(height * width)
    return _from_rank(rank.reshape(height, width), "spiral")


def centre_last(height: int, width: int, seed: int | None = None) -> Ordering:
    """The reverse of the spiral: the border first, the centre last."""
    return spiral(height, width).reversed().with_name("centre-last")


OrderingFactory = Callable[[int, int, "int | None"], Ordering]

#: The orderings of the lecture; the built-in orderings plugin registers these (and the editor's extras).
PRESETS: dict[str, OrderingFactory] = {
    "raster": raster,
    "columns": columns,
    "random": random,
    "even-then-odd": even_then_odd,
    "top-bottom-to-middle": top_bottom_to_middle,
    "zigzag": zigzag,
    "hilbert": hilbert,
    "spiral": spiral,
    "centre-last": centre_last,
}


def painted(height: int, width: int, strokes: Iterable[tuple[int, int]], fill: str = "raster") -> Ordering:
    """Positions in the order they were painted, followed by the unpainted ones in ``fill`` order."""
    seen: dict[int, None] = {}
    for r, c in strokes:
        if 0 <= r < height and 0 <= c < width:
            seen.setdefault(r * width + c, None)
    rest = [int(p) for p in PRESETS[fill](height, width, 0).flat if int(p) not in seen]
    flat = np.array(list(seen) + rest, dtype=np.int64)
    return Ordering(height, width, np.stack([flat // width, flat % width], axis=1), name="painted")


def known_first(ordering: Ordering, known: np.ndarray) -> Ordering:
    """The same ordering with every position of the boolean ``known`` mask moved to the front.

    Used for completion: an any-order model then conditions on everything that is known.
    """
    known = np.asarray(known, dtype=bool)
    if known.shape != (ordering.height, ordering.width):
        raise OrderingError(
            f"the known mask is {known.shape[0]}x{known.shape[1]}, the ordering {ordering.height}x{ordering.width}"
        )
    order = ordering.order
    is_known = known[order[:, 0], order[:, 1]]
    new = np.concatenate([order[is_known], order[~is_known]])
    return Ordering(ordering.height, ordering.width, new, name=f"{ordering.name} (known first)")
