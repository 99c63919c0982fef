"""`specdyn sweep`: a grid over run settings, one run folder per cell, resumable, with a side-by-side report."""

from __future__ import annotations

import sys
from pathlib import Path

from specdyn.commands.common import add_execution_args, execution_from_args, out_path
from specdyn.errors import SpecdynError
from specdyn.safetext import one_line, visible


def add_parser(sub) -> None:
    p = sub.add_parser(
        "sweep", help="run a grid of configurations (trees, drafters, pairs, ...): one run folder per cell, report",
        description="Run every cell of a sweep file's grid ([base] settings plus one [grid] dimension per swept "
        "key; see docs/sweep.md) into DIR/cells/, keep DIR/index.json current, then write DIR/report.html and "
        "DIR/report.json with the cells side by side per domain. With --ray, cells run in parallel on Ray "
        "workers; without it, one after another in this process. Re-running the same command skips finished "
        "cells and resumes interrupted ones.",
    )
    p.add_argument("sweep_file", metavar="SWEEP.toml", help="the sweep file")
    p.add_argument("--out", metavar="DIR", help="sweep folder (default sweeps/<sweep file name>)")
    add_execution_args(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args) -> int:
    from specdyn.sweep.report import write_report
    from specdyn.sweep.runner import CellStatus, run_sweep
    from specdyn.sweep.spec import load_sweep

    execution = execution_from_args(args)
    out = out_path(args.out, Path("sweeps") / Path(args.sweep_file).stem)
    sweep = load_sweep(args.sweep_file)
    states = run_sweep(sweep, out, execution, quiet=args.quiet)
    report = write_report(out, [d.name for d in sweep.dimensions], states)
    print(f"sweep index: {visible(out / 'index.json')}\nreport: {visible(report.html)}", file=sys.stderr)
    failed = [s for s in states if s.status is CellStatus.FAILED]
    if failed:
        raise SpecdynError(f"{len(failed)} of {len(states)} cells failed (first: {one_line(failed[0].cell.title)}: "
                           f"{failed[0].error}); fix the cause and run the same command again")
    return 0
