"""PySide6 6.12 on CPython 3.11 drops a reference to None on every void Qt call; ui/ guards it."""
from __future__ import annotations

import sys

from PySide6.QtCore import QPointF
from PySide6.QtWidgets import QGraphicsSimpleTextItem

import ui  # noqa: F401  (the guard runs on import)


def test_many_void_qt_calls_do_not_exhaust_none(qapp):
    item = QGraphicsSimpleTextItem("5")
    before = sys.getrefcount(None)
    for i in range(20_000):  # several times None's natural reference count
        item.setPos(QPointF(i, i))
    assert sys.getrefcount(None) > 1_000_000
    assert before - sys.getrefcount(None) < 1 << 40
