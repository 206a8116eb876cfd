"""``ui/`` has no import circle: every module can be imported on its own, in any order, and the
screenshot tooling stays out of what the workstation ships (issue 18).

The graph is read from the source with ``ast`` (nothing is imported): an edge for every
``import ui.x`` / ``from ui.x import y`` anywhere in a module, inside functions too (a lazy
import is a circle waiting for someone to move it to the top), and to every package above the
imported module, since Python runs a package's ``__init__`` before its modules.
"""
from __future__ import annotations

import ast
from pathlib import Path

UI = Path(__file__).resolve().parents[2] / "ui"


def module_name(path: Path, root: Path = UI) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def with_packages(name: str, known: set[str]) -> set[str]:
    """``name`` if it is a ui module, and every ui package above it."""
    parts = name.split(".")
    return {".".join(parts[:n]) for n in range(1, len(parts) + 1)} & known


def import_graph(root: Path = UI) -> dict[str, set[str]]:
    files = {module_name(path, root): path for path in root.rglob("*.py")}
    known = set(files)
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        targets: set[str] = set()
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    targets |= with_packages(alias.name, known)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:   # relative: from the module's package upwards
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                targets |= with_packages(base, known)
                for alias in node.names:   # ``from ui.review import window`` imports a module
                    targets |= with_packages(f"{base}.{alias.name}", known)
        graph[name] = targets - {name} - set(with_packages(name, known))
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_checker_finds_a_circle_through_a_package_init(tmp_path):
    # ui/a imports ui.pkg.b, whose package __init__ imports ui.a back: the circle issue 18 found
    # (review/__init__ re-exporting screenshot code that imported the workstation).
    root = tmp_path / "ui"
    (root / "pkg").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "a.py").write_text("def f():\n    from ui.pkg.b import g\n")
    (root / "pkg" / "__init__.py").write_text("from ui.a import f\n")
    (root / "pkg" / "b.py").write_text("g = 1\n")
    graph = import_graph(root)
    assert {"ui.pkg", "ui.pkg.b"} <= graph["ui.a"]
    assert cycles(graph) == [["ui.a", "ui.pkg"]]
    (root / "pkg" / "__init__.py").write_text("")
    assert cycles(import_graph(root)) == []


def test_ui_has_no_import_circle():
    found = cycles(import_graph())
    assert not found, "import circles in ui/: " + "; ".join(" ↔ ".join(c) for c in found)


def test_screenshot_tooling_is_imported_only_by_the_screenshot_command():
    graph = import_graph()
    shipping = {name for name in graph if not name.startswith("ui.screenshots")}
    reaching = {name for name in shipping
                if any(target.startswith("ui.screenshots") for target in graph[name])}
    assert reaching == {"ui.commands"}, reaching
