"""Octant's Qt layer (PySide6, qtawesome): the reading workstation and its commands.

PySide6 6.12.0 under CPython 3.11 returns ``None`` from every void Qt method without taking a
reference to it: each call such as ``item.setPos(...)`` lowers None's reference count by one.
None starts with a few thousand references, so after a few thousand calls (one landmark drag)
the interpreter aborts with "Fatal Python error: none_dealloc". CPython 3.12 made None immortal
(PEP 683); on older interpreters we give None so many references that the leak can never reach
zero. Done on import, before any Qt call, so every part of ``ui`` is covered.
"""
from __future__ import annotations

import ctypes
import sys

# 2**48 calls: a million Qt calls a second would need nine years to use them up.
_NONE_EXTRA_REFERENCES = 1 << 48


def _make_none_effectively_immortal() -> None:
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return
    if hasattr(sys, "gettotalrefcount"):  # a debug build: PyObject has other fields first
        return
    before = sys.getrefcount(None)
    if before > _NONE_EXTRA_REFERENCES:  # already done (module reloaded)
        return
    # ob_refcnt is the first field of a release build's PyObject (Include/object.h).
    count = ctypes.c_ssize_t.from_address(id(None))
    if abs(count.value - before) > 64:  # not a reference count there: layout not as expected
        return
    count.value += _NONE_EXTRA_REFERENCES


_make_none_effectively_immortal()
