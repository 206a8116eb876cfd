"""Letting the offscreen windows catch up: the screenshots wait for work done on workers."""
from __future__ import annotations

import time

from PySide6.QtWidgets import QApplication


def wait_until(condition, timeout_s: float = 10.0) -> bool:
    """Run the event loop until ``condition()`` holds or ``timeout_s`` passes; then a few more
    rounds so what it triggered is painted. Returns the condition's last value."""
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        QApplication.processEvents()
        time.sleep(0.005)
    for _ in range(5):
        QApplication.processEvents()
    return condition()
