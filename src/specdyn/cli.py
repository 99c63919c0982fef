"""The `specdyn` command line: one sub-command per module in `specdyn.commands`."""

from __future__ import annotations

import argparse
import importlib
import sys

from specdyn import __version__
from specdyn.errors import SpecdynError

# Each module defines `add_parser(subparsers)` (registering its sub-command with `func=run`).
COMMAND_MODULES = ["decode", "suite", "run", "report", "budget", "compare", "distill"]


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
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SpecdynError as exc:
        print(f"specdyn: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("specdyn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
