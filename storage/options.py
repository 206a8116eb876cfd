"""Argument types for the command line, shared by every layer's commands.

Each refuses a bad value with one sentence that argparse prints as ``argument --x: <sentence>``,
before any project, data or network is opened.
"""
from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

NETWORK_STRIDE = 32      # the encoders halve the picture five times: inputs are multiples of 32
MIN_INPUT_SIZE = 32
Number = TypeVar("Number", int, float)


def command_description(docstring: str | None) -> str:
    """A command module's first docstring paragraph as ``--help`` shows it: the reST ``literal``
    marks written for the source reader become the plain `backticks` the other commands use."""
    first = (docstring or "").split("\n\n")[0]
    return " ".join(first.replace("``", "`").split())


def _parsed(text: str, kind: Callable[[str], Number], invalid: Number) -> Number:
    """``kind(text)``, or ``invalid`` (which every check refuses) when the text is no number."""
    try:
        return kind(text)
    except ValueError:
        return invalid


def positive_int(text: str) -> int:
    """A whole number of at least 1 (batch sizes, epochs)."""
    value = _parsed(text, int, 0)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return value


def head_hash(text: str) -> str:
    """The audit trail's head as ``audit verify`` prints it: 64 hexadecimal digits (SHA-256). A
    mistyped or cut one was compared as it was and reported the trail "tampered with"."""
    value = text.strip().lower()
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise argparse.ArgumentTypeError(f"must be the 64-character head hash that `audit verify` printed, "
                                         f"not {text!r}")
    return value


def whole_number(text: str) -> int:
    """A whole number of 0 or more (data loader processes)."""
    value = _parsed(text, int, -1)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number of 0 or more, not {text!r}")
    return value


def validation_fold(text: str) -> tuple[int, int]:
    """``I/K``: the I-th of K validation folds, 1 ≤ I ≤ K."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fold; write I/K, e.g. 2/5") from None
    if not 1 <= index <= count:
        raise argparse.ArgumentTypeError(f"fold {text} does not exist; I must be between 1 and K, e.g. 2/5")
    return index, count


def positive_float(text: str) -> float:
    """A finite number above 0 (learning rates)."""
    value = _parsed(text, float, float("nan"))
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number above 0 (e.g. 0.001), not {text!r}")
    return value


def network_input_size(text: str) -> int:
    """A network's input side: a multiple of 32 pixels (32 itself for tiny test runs)."""
    value = _parsed(text, int, 0)
    if value < MIN_INPUT_SIZE or value % NETWORK_STRIDE:
        raise argparse.ArgumentTypeError(
            f"must be a positive multiple of {NETWORK_STRIDE} pixels (e.g. 512), not {text!r}")
    return value


def window_size(text: str) -> tuple[int, int]:
    """WIDTHxHEIGHT in pixels, each between 320 and 8192."""
    width, _, height = text.lower().partition("x")
    try:
        size = (int(width), int(height))
    except ValueError:
        size = (0, 0)
    if not all(320 <= side <= 8192 for side in size):
        raise argparse.ArgumentTypeError(
            f"must be WIDTHxHEIGHT in pixels, each 320 to 8192 (e.g. 1600x1000), not {text!r}")
    return size
