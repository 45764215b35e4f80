"""Work around a reference-counting bug of some PySide6 builds on Python < 3.12.

PySide6 6.12 returns ``None`` from void C++ calls, and ``True``/``False`` into slots, without taking a
reference. From Python 3.12 on these singletons are immortal and the missing reference is harmless; on 3.11
every ``label.setText(...)`` lowers the reference count of ``None`` by one, and after a few minutes of live
drawing (thousands of calls a second) Python aborts with "Fatal Python error: none_dealloc". We detect the
leak once at import and, where it is present, give the three singletons a reference count no session can
exhaust — which is what Python 3.12 does for every interpreter.
"""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject

_BALLAST = 1 << 40  # 10^12 references: centuries at a million leaked references a second
_PROBES = 64


def leaks_singletons() -> bool:
    """True if a void PySide6 call takes a reference to ``None`` that it never gave."""
    probe = QObject()
    before = sys.getrefcount(None)
    for _ in range(_PROBES):
        probe.setObjectName("probe")
    return sys.getrefcount(None) < before - _PROBES // 2


def guard_singletons() -> bool:
    """Make ``None``, ``True`` and ``False`` unexhaustible where this Python and PySide6 need it.

    Returns True when the guard was applied (Python < 3.12 with a leaking PySide6), False otherwise.
    """
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython" or not leaks_singletons():
        return False
    for singleton in (None, True, False):
        refcount = ctypes.c_ssize_t.from_address(id(singleton))  # ob_refcnt is the first field of PyObject
        if refcount.value < _BALLAST:
            refcount.value += _BALLAST
    return True


GUARDED = guard_singletons()

__all__ = ["guard_singletons", "leaks_singletons", "GUARDED"]
