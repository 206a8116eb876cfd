"""The role table of docs/roles.md, as the tests read it: {row id: {role column: value}}."""
from __future__ import annotations

from pathlib import Path

ROLES_DOC = Path(__file__).resolve().parents[1] / "docs" / "roles.md"
COLUMNS = ("Reader", "Reviewer", "Admin")


def role_table() -> dict[str, dict[str, str]]:
    lines = [line for line in ROLES_DOC.read_text(encoding="utf-8").splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert header == ["Id", "What", *COLUMNS], header
    table = {}
    for line in lines[1:]:
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        row_id, values = cells[0], cells[-3:]
        assert row_id not in table, f"row {row_id} twice in docs/roles.md"
        table[row_id] = dict(zip(COLUMNS, values))
    return table


def cells(prefix_filter) -> list[tuple[str, str, str]]:
    """(row id, role column, documented value) of every cell whose row id passes the filter."""
    return [(row, role, value) for row, values in role_table().items() if prefix_filter(row)
            for role, value in values.items()]
