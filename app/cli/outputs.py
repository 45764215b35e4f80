"""What a command may write: never over one of its inputs, never over an existing file unless asked (``--force``),
never over something that is not a plain file (``/dev/null``, a FIFO, a folder), and a failure to write is one
line with its real reason."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from app.core.errors import ARExplorerError
from app.core.files import describe_os_error, file_kind


class OutputError(ARExplorerError):
    """An output path that would destroy something, or that cannot be written."""


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def _kind(path: Path) -> str:
    """What ``path`` is in words when it is not a regular file; empty for a regular file or none at all."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return ""
    return "" if stat.S_ISREG(mode) else file_kind(mode)


def check_outputs(outputs: dict[str, str | Path | None], inputs: Iterable[str | Path | None] = (),
                  force: bool = False) -> None:
    """Refuse outputs (option -> path; None for an option not given) that would destroy something.

    Refused, with or without ``force``: an output that is one of ``inputs`` (the checkpoint being read, its JSON,
    an image, an ordering file...), two options naming the same file, and a path that exists but is not a plain
    file. Refused without ``force``: a file that exists.
    """
    given = {option: Path(path) for option, path in outputs.items() if path is not None}
    sources = [Path(p) for p in inputs if p is not None and Path(p).exists()]
    seen: list[tuple[str, Path]] = []
    for option, path in given.items():
        for source in sources:
            if path.exists() and _same(path, source):
                raise OutputError(f"{option} {path} is one of this command's inputs; choose another name")
        for other_option, other in seen:
            if path.resolve() == other.resolve():
                raise OutputError(f"{option} and {other_option} name the same file ({path})")
        seen.append((option, path))
        kind = _kind(path)
        if kind:
            raise OutputError(f"{option} {path} is {kind}, not a file; name a new file")
        if path.exists() and not force:
            raise OutputError(f"{option} {path} exists; add --force to replace it, or choose another name")


def checkpoint_files(info) -> list[Path]:
    """The files of a checkpoint a command reads: its weights, its JSON and its optimizer state."""
    weights = Path(info.weights)
    return [weights, weights.with_suffix(".json"), weights.with_name(weights.stem + ".optim.safetensors")]


def file_argument(value: str | None) -> Path | None:
    """An option that takes a preset name or a file: the file, where it names one."""
    if not value:
        return None
    path = Path(value)
    return path if path.exists() else None


@contextlib.contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """Turn a failure to write ``path`` (no such folder, no permission, a read-only or full disk) into one line
    with its real reason."""
    try:
        yield
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {describe_os_error(exc)}") from None


__all__ = ["OutputError", "check_outputs", "checkpoint_files", "file_argument", "writing"]
