"""Octant: regional labelling of fundus photographs, with model assistance and in-clinic training.

``python main.py`` opens the workstation; ``python main.py <command> --help`` lists each command's
options. Commands live beside the code they drive (``storage/commands.py``, ``annotate/services/commands.py``,
``models/commands/segmentation.py``, ``models/commands/training.py``, ``models/commands/report.py``, ``models/commands/screen.py``, ``ui/commands.py``); each module exposes ``register(subparsers)`` and sets
``func`` on its parser. Errors the user can act on are printed as one line with a non-zero exit.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import shlex
import sys

# Modules that add sub-commands; a module that is missing (e.g. a trimmed install) is skipped.
COMMAND_MODULES = (
    "storage.commands",
    "storage.audit_commands",
    "storage.backup_commands",
    "annotate.services.commands",
    "annotate.services.quality_commands",
    "models.commands.segmentation",
    "models.commands.training",
    "models.commands.report",
    "models.commands.screen",
    "ui.commands",
)


class OctantParser(argparse.ArgumentParser):
    """argparse with a bad option reported in one line (no usage dump); sub-commands inherit it."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message}; see `{self.prog} --help`.\n")

    def parse_args(self, args=None, namespace=None):
        """An unknown option is refused by the command given it, so the hint is that command's help
        (`octant status --help`); argparse's top level pointed at the list of commands."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            self.command_parser(sys.argv[1:] if args is None else args).error(
                f"unrecognized arguments: {' '.join(extras)}")
        return parsed

    def command_parser(self, words) -> argparse.ArgumentParser:
        """The innermost (sub-)command parser that ``words`` name (``readers add``: its own)."""
        parser: argparse.ArgumentParser = self
        for word in words:
            commands = next((action.choices for action in parser._actions
                             if isinstance(action, argparse._SubParsersAction)), None)
            if commands is not None and word in commands:
                parser = commands[word]
        return parser


def build_parser() -> argparse.ArgumentParser:
    parser = OctantParser(
        prog="octant",
        description="Octant: eight-region labelling of fundus photographs by three blind readers.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="<command>")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    from storage.errors import OctantError

    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["gui", *argv])
    args.command_line = "python main.py " + shlex.join(argv)   # for model cards: what made the weights
    try:
        if getattr(args, "thread_role", None):   # a command that runs networks: cores shared once, here
            from models.engine.device import configure_threads

            configure_threads()
        code = int(args.func(args) or 0)
        sys.stdout.flush()   # inside the try: a reader that went away (`status | head`) is caught here
        return code
    except BrokenPipeError:
        _discard_stdout()
        return 141   # as if killed by SIGPIPE, the shell's convention; the reader has what it wanted
    except OctantError as error:
        print(f"octant: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("octant: interrupted; everything saved so far is kept.", file=sys.stderr)
        return 130


@contextlib.contextmanager
def one_line_errors(prog: str):
    """What ``main`` does with an error the user can act on, for scripts of their own (the benches):
    an ``OctantError`` (no public data named, a bad option) is one line on stderr and exit status 1,
    not a traceback."""
    from storage.errors import OctantError

    try:
        yield
    except OctantError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        raise SystemExit(1) from None


def _discard_stdout() -> None:
    """Point stdout at the null device so the interpreter's final flush cannot fail again."""
    try:
        descriptor = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):   # replaced by a test or an embedding program
        return
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, descriptor)
    os.close(null)


def exit_without_collecting(code: int) -> None:
    """Exit with ``code`` once the command has returned (its work joined, its saves committed, the
    atexit handlers still to run). The interpreter's teardown would otherwise run full garbage
    collections over torch's, timm's and Qt's millions of objects: 2.5–3.5 s after the workstation's
    window had closed (docs/benchmarks.md, "Quitting"). Frozen, they are freed by reference
    counting only; the process ends right after."""
    import gc

    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    exit_without_collecting(main())
