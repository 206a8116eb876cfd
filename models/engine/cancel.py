"""Seeing a cancel within a second anywhere in long inference work.

A cancel is a ``threading.Event`` set by whoever wants the work to stop (the workstation's quit,
a Cancel button). Work checks it at every step it controls: between model loads, between photos,
between pipeline stages. A single network call cannot be interrupted from outside, and one call
on a large photo can take seconds on a CPU, so the networks also check it before each of their
layers (a forward pre-hook): no single layer runs long.
"""
from __future__ import annotations

import threading

from torch import nn

from storage.errors import CancelledError

STOPPED = "Stopped because it was cancelled; what was finished is kept."


def check_cancelled(cancel: threading.Event | None, message: str = STOPPED) -> None:
    """Raise ``CancelledError`` when ``cancel`` is set (``None``: work that cannot be cancelled)."""
    if cancel is not None and cancel.is_set():
        raise CancelledError(message)


def stop_layers_when(cancel: threading.Event | None, model: nn.Module) -> None:
    """Make every layer of ``model`` raise ``CancelledError`` before it runs once ``cancel`` is set."""
    if cancel is None:
        return

    def before_layer(_module, _inputs) -> None:
        check_cancelled(cancel)

    for module in model.modules():
        module.register_forward_pre_hook(before_layer)
