"""The built-in ordering presets: raster, columns, random, even-then-odd, top-bottom-to-middle, zigzag, Hilbert,
spiral and centre-last."""

from __future__ import annotations

from app.core import hookimpl
from app.core.registry import builtin_ordering_specs


@hookimpl
def ar_explorer_orderings():
    return builtin_ordering_specs()
