"""The one progress reporter of the command line (import, presegment, train, train-seg), built
on tqdm and writing to stderr, so stdout keeps only the command's results.

On a terminal it is tqdm's self-rewriting bar (rate and time left by tqdm); lines that must stay
(an epoch's metrics, a skipped file) are printed above it. In a log or a pipe a rewritten line
would pile up as one endless line, so there it prints whole lines instead, formatted by tqdm
(``tqdm.format_meter``), every ``line_every`` of the work and at the end. ``quiet`` shows nothing.
Long jobs stay cancellable: the reporter only receives their progress callbacks.
"""
from __future__ import annotations

import sys
import time
from typing import IO, Any

from tqdm import tqdm


class CommandProgress:
    """Progress of one job, counted in ``unit``s; ``update`` takes the count done so far."""

    def __init__(self, total: int = 0, *, description: str = "", unit: str = "it", stream: IO[str] | None = None,
                 quiet: bool = False, line_every: float = 0.1) -> None:
        self.stream = stream or sys.stderr   # looked up now, not at import (tests and callers replace it)
        self.quiet, self.unit, self.line_every = quiet, unit, line_every
        self.interactive = not quiet and _is_terminal(self.stream)
        self.description, self.total = description, total
        self._started, self._last_line_at = time.monotonic(), -1
        self._bar: tqdm | None = None
        if self.interactive:
            self._bar = tqdm(total=total or None, desc=description or None, unit=unit, file=self.stream,
                             dynamic_ncols=True, mininterval=0.1, leave=True)

    def __enter__(self) -> CommandProgress:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    def restart(self, total: int, description: str = "") -> None:
        """Count a new stretch of work from zero (the next epoch)."""
        self.total, self.description = total, description or self.description
        self._started, self._last_line_at = time.monotonic(), -1
        if self._bar is not None:
            self._bar.reset(total=total or None)
            self._bar.set_description_str(self.description or None, refresh=False)

    def update(self, done: int, note: str = "", total: int | None = None) -> None:
        """``done`` units of ``total`` finished; ``note`` (the file at hand, the loss) is shown beside."""
        if total is not None and total != self.total:
            self.total = total
            if self._bar is not None:
                self._bar.total = total
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.set_postfix_str(note, refresh=False)
            self._bar.update(done - self._bar.n)
            return
        share = done / self.total if self.total else 1.0
        step = int(share / self.line_every) if self.line_every > 0 else done   # which tenth (with 0.1) it is in
        if done >= self.total or step != self._last_line_at:
            self._last_line_at = step
            line = tqdm.format_meter(done, self.total or None, time.monotonic() - self._started, ncols=100,
                                     prefix=self.description, unit=self.unit, postfix=note or None, ascii=True)
            print(line, file=self.stream, flush=True)

    def message(self, line: str) -> None:
        """A line that stays, printed above the bar (or between the log lines)."""
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):   # a closed or unusual stream: a log
        return False
