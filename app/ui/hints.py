"""Every command line the app shows, built in one place so that each runs exactly as shown.

A hint the user copies into a terminal must work there: the right subcommand, every required option, paths
quoted for the shell. ``tests/ui/test_hints.py`` parses each one with the CLI's own parser, runs those that
need no download, and checks that no view writes a command of its own.
"""

from __future__ import annotations

import shlex
from pathlib import Path

PROGRAM = "ar-explorer"


def _command(*words: str | Path) -> str:
    return " ".join([PROGRAM, *(shlex.quote(str(word)) for word in words)])


def download_command(dataset: str) -> str:
    """Fetch a dataset into the data folder (with its checksums)."""
    return _command("data", "download", dataset)


def eval_command(checkpoint: str) -> str:
    """Measure a checkpoint's test NLL and record it beside the checkpoint."""
    return _command("eval", "--checkpoint", checkpoint)


def sample_with_ordering_command(checkpoint: str, ordering: str | Path, out: str = "samples.png") -> str:
    """Sample a grid of images under a saved ordering (a preset's name or an ordering JSON file)."""
    return _command("sample", "--checkpoint", checkpoint, "--ordering", ordering, "--out", out)


def open_session_command(path: str | Path) -> str:
    """Open the app on a saved session file."""
    return " ".join([PROGRAM, "--session", shlex.quote(str(path))])


def train_command(model: str, dataset: str, ordering: str | Path | None = None) -> str:
    """Train a model on a dataset from the command line (with an ordering, for a model built for one)."""
    extra = ("--ordering", ordering) if ordering is not None else ()
    return _command("train", "--model", model, "--dataset", dataset, *extra)


__all__ = ["PROGRAM", "download_command", "eval_command", "open_session_command", "sample_with_ordering_command", "train_command"]
