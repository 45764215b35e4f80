"""Progress of long Fisher work (embedding, statistics, decoder training) as plain data, one event a step."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass
class EmbedProgress:
    """Progress of a long computation: ``stage``, ``done`` of ``total``, a message; ``result`` on the last event."""

    stage: str
    done: int
    total: int
    message: str = ""
    elapsed_s: float = 0.0
    result: Any = None


def final_event(events: Iterator[Any]) -> Any:
    """Run a generator of progress events to its end; its last event (``None`` if it yielded none)."""
    tail = deque(events, maxlen=1)
    return tail[0] if tail else None


__all__ = ["EmbedProgress", "final_event"]
