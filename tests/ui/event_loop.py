"""Waiting in GUI tests without starving worker threads."""

from __future__ import annotations

import time


def pump(ms: int) -> None:
    """Process Qt events for ``ms`` milliseconds, sleeping in Python between rounds.

    Not ``QTest.qWait``: it holds the GIL while it waits, so a worker thread barely runs meanwhile.
    """
    from PySide6.QtWidgets import QApplication

    deadline = time.perf_counter() + ms / 1000
    while True:
        QApplication.processEvents()
        if time.perf_counter() >= deadline:
            return
        time.sleep(0.003)
