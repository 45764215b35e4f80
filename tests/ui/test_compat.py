"""The reference-count guard: a long session of PySide6 calls must never exhaust ``None``."""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("PySide6")


def test_void_calls_cannot_exhaust_none():
    from PySide6.QtCore import QObject

    import app.ui  # noqa: F401  (applies the guard where it is needed)
    from app.ui import compat

    probe = QObject()
    for _ in range(5000):
        probe.setObjectName("x")
    if compat.GUARDED:
        assert sys.getrefcount(None) > 1 << 39
        assert sys.getrefcount(True) > 1 << 39 and sys.getrefcount(False) > 1 << 39
    else:
        assert not compat.leaks_singletons()
