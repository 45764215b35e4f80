"""A dependency-free progress bar for the terminal (one line redrawn in place; plain lines when not a tty)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    def __init__(self, total: int, label: str = "", stream: TextIO | None = None, width: int = 30) -> None:
        self.total = max(int(total), 0)
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.perf_counter()
        self._last_plain = -1.0

    def update(self, done: int, suffix: str = "") -> None:
        fraction = min(1.0, done / self.total) if self.total else 0.0
        elapsed = time.perf_counter() - self.start
        eta = elapsed / fraction - elapsed if fraction > 0 else 0.0
        filled = int(round(self.width * fraction))
        bar = "#" * filled + "-" * (self.width - filled)
        line = f"{self.label} [{bar}] {100 * fraction:5.1f}% {elapsed:6.1f}s eta {eta:6.1f}s {suffix}"
        if self.tty:
            self.stream.write("\r" + line[:200].ljust(120))
            self.stream.flush()
        elif fraction - self._last_plain >= 0.1 or fraction >= 1.0 and self._last_plain < 1.0:
            self._last_plain = fraction
            self.stream.write(line + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
