"""The readers' progress as ``status`` prints it: one line per reader, reads done of those assigned
per split and in all, in columns as wide as their widest entry (names and counts of any length)."""
from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from storage.catalogue import SPLITS


class ReaderSplitProgress(NamedTuple):
    reader_id: int
    name: str
    role: str
    split: str
    assigned: int
    done: int


def progress_table(rows: Iterable[ReaderSplitProgress], indent: str = "  ") -> list[str]:
    """Lines of a table with a header: reader, role, then "done / assigned" for each split that has
    reads and for all of them ("-" where a reader has none in a split); readers in the rows' order."""
    readers: dict[int, tuple[str, str]] = {}
    counts: dict[tuple[int, str], tuple[int, int]] = {}
    for row in rows:
        readers.setdefault(row.reader_id, (row.name, row.role))
        counts[row.reader_id, row.split] = (row.done, row.assigned)
    if not readers:
        return []
    splits = ordered_splits({split for _, split in counts})
    table: list[list[tuple[int, int] | None]] = []
    for reader in readers:
        mine = [counts.get((reader, split)) for split in splits]
        present = [pair for pair in mine if pair is not None]
        table.append([*mine, (sum(done for done, _ in present), sum(assigned for _, assigned in present))])
    count_columns = [_fractions(column) for column in zip(*table, strict=True)]
    columns = [["Reader", *(name for name, _ in readers.values())], ["Role", *(role for _, role in readers.values())]]
    columns += [[title, *cells] for title, cells in zip([*splits, "all"], count_columns, strict=True)]
    widths = [max(len(cell) for cell in column) for column in columns]
    return [indent + "  ".join(cell.ljust(width) if index < 2 else cell.rjust(width)
                               for index, (cell, width) in enumerate(zip(line, widths, strict=True))).rstrip()
            for line in zip(*columns, strict=True)]


def ordered_splits(splits: Iterable[str]) -> list[str]:
    """Training before test (``SPLITS``' order), then any other in alphabetical order."""
    present = set(splits)
    return [split for split in SPLITS if split in present] + sorted(present - set(SPLITS))


def _fractions(column: Iterable[tuple[int, int] | None]) -> list[str]:
    """"done / assigned" with the slashes one above the other; "-" for none."""
    pairs = list(column)
    present = [pair for pair in pairs if pair is not None]
    done_width = max((len(str(done)) for done, _ in present), default=1)
    assigned_width = max((len(str(assigned)) for _, assigned in present), default=1)
    return ["-".rjust(done_width + 3 + assigned_width) if pair is None
            else f"{pair[0]:>{done_width}} / {pair[1]:>{assigned_width}}" for pair in pairs]
