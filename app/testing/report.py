"""What the conformance kit reports: one result per check, and the report of a model."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass
class CheckResult:
    """The outcome of one check.

    Parameters
    ----------
    name
        The check (``"autoregressive"``, ``"sampler"``, ...).
    passed
        Whether the model kept this part of the contract.
    message
        One line: what was checked, or what was wrong and where.
    details
        Machine-readable facts behind the message (the dimension at fault, the measured deviation).
    """

    name: str
    passed: bool
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"[{'PASS' if self.passed else 'FAIL'}] {self.name}: {self.message}"

    def non_finite_measure(self) -> str | None:
        """The name of a measured number in ``details`` that is NaN or infinite, if any."""
        for key, value in self.details.items():
            if isinstance(value, float) and not math.isfinite(value):
                return key
        return None


@dataclass
class ConformanceReport:
    """Every check's result for one model, in the order they ran."""

    model: str
    results: list[CheckResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed]

    def result(self, name: str) -> CheckResult:
        """The result of the check called ``name`` (``KeyError`` if it did not run)."""
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(name)

    def __str__(self) -> str:
        verdict = "all checks passed" if self.passed else f"{len(self.failures)} check(s) failed"
        return "\n".join([f"conformance of {self.model}: {verdict}", *(f"  {r}" for r in self.results)])
