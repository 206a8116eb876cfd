"""status's progress table: every reader and count in aligned columns, whatever their lengths."""
from __future__ import annotations

import re

from storage.progress_table import ReaderSplitProgress, ordered_splits, progress_table

ROWS = [
    ReaderSplitProgress(2, "Dr Ng", "ophthalmologist", "test", 3, 0),
    ReaderSplitProgress(2, "Dr Ng", "ophthalmologist", "train", 140, 12),
    ReaderSplitProgress(5, "Dr Maria Fernández-López", "retina_specialist", "train", 7, 7),
    ReaderSplitProgress(9, "Al", "admin", "test", 25, 4),
]


def test_each_reader_has_one_line_with_done_of_assigned_per_split_and_in_all():
    header, *lines = progress_table(ROWS)
    assert header.split() == ["Reader", "Role", "train", "test", "all"]
    ng, maria, al = (re.sub(r"\s+", " ", line).strip() for line in lines)
    assert ng == "Dr Ng ophthalmologist 12 / 140 0 / 3 12 / 143"
    assert maria == "Dr Maria Fernández-López retina_specialist 7 / 7 - 7 / 7"
    assert al == "Al admin - 4 / 25 4 / 25"   # no training reads


def test_columns_are_aligned_and_lines_end_without_spaces():
    lines = progress_table(ROWS)
    header, body = lines[0], lines[1:]
    assert all(line == line.rstrip() and line.startswith("  ") for line in lines)
    role = header.index("Role")   # text columns start together
    assert all(line[role - 1] == " " and line[role] != " " for line in body)
    for title in ("train", "test", "all"):   # counts end together
        end = header.index(title) + len(title)
        assert all(line[end:end + 1] in ("", " ") and line[end - 1] != " " for line in body), title
    slashes = {index for line in body for index, char in enumerate(line) if char == "/"}
    assert len(slashes) == 3   # done / assigned: the slashes one above the other in each column

def test_no_rows_no_table_and_splits_in_their_order():
    assert progress_table([]) == []
    assert ordered_splits(["test", "train", "extra"]) == ["train", "test", "extra"]
