"""The one validation layer of the command line's numeric options.

Every numeric option of every command is declared with one of the types below, so that the same value gets the
same answer everywhere: NaN, infinities, negatives, zero where it means nothing, and numbers past what any run
can use are refused by argparse with exit status 2 and one line naming the option (``error: argument --n: ...``).
Bounds that depend on several options at once (the size of a PNG canvas, the memory of a batch) are checked by
:func:`check_canvas` and :func:`check_batch` once the options are known.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from app.core.errors import ARExplorerError

#: Seeds go to torch and numpy generators: whole numbers a 32-bit generator takes as they are.
MAX_SEED = 2**32 - 1
#: The largest PNG the commands draw: 64 megapixels (192 MB of RGB), e.g. 4096 28x28 images at scale 4.
MAX_CANVAS_PIXELS = 64_000_000
#: The most values one sampling batch may hold: 4096 images of 28x28 (1024 of 56x56, 1365 of 3x28x28).
MAX_BATCH_VALUES = 4096 * 28 * 28


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the project's refusal: exactly one ``error: ...`` line, exit status 2, no usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {' '.join(message.split())} (see {self.prog} --help)\n")


def _text(value: str) -> str:
    shown = value if len(value) <= 40 else value[:37] + "..."
    return repr(shown)


def whole(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high``."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = None
        if number is None or not low <= number <= high:
            raise argparse.ArgumentTypeError(f"must be a whole number from {low} to {high}, not {_text(value)}")
        return number

    parse.__name__ = "whole number"
    return parse


def real(low: float, high: float, above_low: bool = False, unit: str = "") -> Callable[[str], float]:
    """An argparse type: a finite number from ``low`` (or above it, with ``above_low``) to ``high``."""
    unit_text = f" {unit}" if unit else ""
    span = f"above {low:g}{unit_text} and at most {high:g}" if above_low else f"from {low:g} to {high:g}{unit_text}"

    def parse(value: str) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        ok = math.isfinite(number) and (number > low if above_low else number >= low) and number <= high
        if not ok:
            raise argparse.ArgumentTypeError(f"must be a number {span}, not {_text(value)}")
        return number

    parse.__name__ = "number"
    return parse


def whole_list(low: int, high: int) -> Callable[[str], list[int]]:
    """An argparse type: comma-separated whole numbers, each from ``low`` to ``high`` (at least one)."""
    one = whole(low, high)

    def parse(value: str) -> list[int]:
        items = [item.strip() for item in value.split(",") if item.strip()]
        if not items:
            raise argparse.ArgumentTypeError(f"must list whole numbers from {low} to {high}, not {_text(value)}")
        try:
            return [one(item) for item in items]
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(
                f"must list whole numbers from {low} to {high}, comma-separated, not {_text(value)}"
            ) from None

    parse.__name__ = "list of whole numbers"
    return parse


seed = whole(0, MAX_SEED)
seed.__doc__ = "An argparse type: a seed, a whole number from 0 to 2**32 - 1."
#: Counts where 0 means "all" (``--limit``, ``--subset``, ``--images``, ...).
count_or_all = whole(0, 10**9)
#: Pixel sizes of a PNG.
png_scale = whole(1, 64)
#: Sampling temperature: 0 is the most likely value at each step; 100 is already uniform noise.
temperature = real(0.0, 100.0)
#: Class labels (the model says how many it takes).
label = whole(0, 10**6)


def add_seed(parser: argparse.ArgumentParser, help_text: str = "random seed") -> None:
    parser.add_argument("--seed", type=seed, default=0, help=f"{help_text} (0 to {MAX_SEED})")


def canvas_pixels(tiles: int, shape: tuple[int, ...], scale: int) -> int:
    """The pixels that ``tiles`` images of ``shape`` ``(C, H, W)`` take at ``scale`` (padding left out)."""
    return tiles * shape[-2] * shape[-1] * scale * scale


def check_canvas(tiles: int, shape: tuple[int, ...], scale: int, options: str) -> None:
    """Refuse a PNG that would be too large to draw: ``options`` names what to lower (``"--n or --scale"``)."""
    pixels = canvas_pixels(tiles, shape, scale)
    if pixels > MAX_CANVAS_PIXELS:
        raise ARExplorerError(
            f"{tiles} images of {shape[-2]}x{shape[-1]} at scale {scale} make a PNG of "
            f"{pixels / 1e6:.0f} megapixels; the limit is {MAX_CANVAS_PIXELS / 1e6:.0f}: lower {options}"
        )


def check_batch(n: int, shape: tuple[int, ...], option: str = "--n") -> None:
    """Refuse a batch whose images hold more values than :data:`MAX_BATCH_VALUES` (its activations would
    take many gigabytes)."""
    values = n * math.prod(shape)
    if values > MAX_BATCH_VALUES:
        most = max(1, MAX_BATCH_VALUES // math.prod(shape))
        raise ARExplorerError(
            f"{option} {n}: a batch of {n} images of {'x'.join(map(str, shape))} is too large; at most {most} "
            "of them at once"
        )


__all__ = [
    "ArgumentParser", "whole", "real", "whole_list", "seed", "count_or_all", "png_scale", "temperature", "label",
    "add_seed", "canvas_pixels", "check_canvas", "check_batch", "MAX_SEED", "MAX_CANVAS_PIXELS", "MAX_BATCH_VALUES",
]
