"""Assertions shared by the robustness tests: what a refusal must look like, and what a folder must not hold."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.core.errors import ARExplorerError


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.startswith("error:")]


def run_cli(capsys: pytest.CaptureFixture, argv: Sequence[str]) -> CliResult:
    """Run ``ar-explorer ARGV`` in this process, as a user would from a shell."""
    from app.cli.main import main

    capsys.readouterr()
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return CliResult(code, captured.out, captured.err)


def assert_cli_refused(result: CliResult, reason: str = "") -> str:
    """Exit status != 0, exactly one ``error: ...`` line on stderr (the last one), no traceback.

    Returns the error line. ``reason``: a lower-case piece the line must contain.
    """
    assert result.code != 0, f"exit status 0; stderr: {result.err!r}"
    assert "Traceback" not in result.err + result.out
    lines = result.error_lines
    assert len(lines) == 1, f"expected one 'error:' line, got: {result.err!r}"
    assert result.err.rstrip().splitlines()[-1] == lines[0], f"the error is not the last line: {result.err!r}"
    assert not lines[0].startswith("error: unexpected "), f"an exception escaped as 'unexpected': {lines[0]}"
    assert reason.lower() in lines[0].lower(), f"{reason!r} not in {lines[0]!r}"
    return lines[0]


def assert_one_line(error: BaseException, kind: type[ARExplorerError] = ARExplorerError, reason: str = "") -> str:
    """The project's own error type, a non-empty single-line message containing ``reason``."""
    assert isinstance(error, kind), f"{type(error).__name__}: {error} is not a {kind.__name__}"
    message = str(error)
    assert message.strip(), "an empty message"
    assert "\n" not in message and "\r" not in message, f"a message over several lines: {message!r}"
    assert len(message) < 600, f"a message too long to read: {message[:200]}..."
    assert reason.lower() in message.lower(), f"{reason!r} not in {message!r}"
    return message


def leftovers(folder: Path) -> list[str]:
    """Temporary files that an interrupted write would leave behind (there must be none)."""
    patterns = ("*.tmp", "*.download", "*.partial", ".*.tmp")
    return sorted({str(p.relative_to(folder)) for pattern in patterns for p in folder.rglob(pattern)})


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` and its bytes, to check that a failed operation changed nothing."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
