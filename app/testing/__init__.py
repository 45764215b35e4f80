"""Public tools for plugin authors: the conformance kit."""

from app.testing.conformance import (
    ALL_CHECKS,
    CheckResult,
    ConformanceReport,
    assert_conforms,
    check_model,
)

__all__ = ["ALL_CHECKS", "CheckResult", "ConformanceReport", "assert_conforms", "check_model"]
