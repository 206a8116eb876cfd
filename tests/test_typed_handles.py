"""The handles (a project, its database, a session, a connection) are typed in every function of
storage/, annotate/, models/, ui/, main.py and the benches, so the type checker follows them
everywhere (issue 18 point 4)."""
import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HANDLES = {"project", "db", "database", "session", "connection"}


def untyped_handles(source: str) -> list[tuple[int, str, str]]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            arguments = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
            found += [(node.lineno, node.name, a.arg) for a in arguments if a.arg in HANDLES and a.annotation is None]
    return found


def test_the_check_sees_an_untyped_handle():
    assert untyped_handles("def f(project, db: Database, *, session=None): pass") == [(1, "f", "project"),
                                                                                     (1, "f", "session")]


def test_every_handle_is_typed():
    sources = [path for package in ("storage", "annotate", "models", "ui", "bench")
               for path in sorted((REPO / package).rglob("*.py")) if "migrations" not in path.parts]
    missing = [f"{path.relative_to(REPO)}:{line} {function}({name})"
               for path in sources + [REPO / "main.py"]
               for line, function, name in untyped_handles(path.read_text())]
    assert missing == []
