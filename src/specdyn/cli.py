"""The `specdyn` command line: one sub-command per module in `specdyn.commands`."""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys

from specdyn import __version__
from specdyn.errors import SpecdynError
from specdyn.safetext import visible

# Each module defines `add_parser(subparsers)` (registering its sub-command with `func=run`).
COMMAND_MODULES = ["decode", "suite", "run", "sweep", "report", "budget", "compare", "distill"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="specdyn",
        description="Measure acceptance dynamics of tree-based speculative decoding.",
    )
    parser.add_argument("--version", action="version", version=f"specdyn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"specdyn.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"specdyn.commands.{name}":
                continue  # sub-command not built yet
            raise
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a reader that went away shows up here, not in Python's exit-time flush
        return code
    except SpecdynError as exc:
        print(f"specdyn: error: {visible(exc)}", file=sys.stderr)  # one line, control characters inert
        return 2
    except KeyboardInterrupt:
        print("specdyn: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return _stdout_closed()


def _stdout_closed() -> int:
    """Standard output was closed by its reader (`specdyn ... | head`): stop quietly, like Unix tools.

    Later writes, including Python's flush at exit, go to /dev/null (as Python's signal docs advise);
    the exit status is the shell's for a process ended by SIGPIPE (128 + 13)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 128 + signal.SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
