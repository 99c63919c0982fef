"""`specdyn report RUN_DIR [--out DIR]`: per-domain acceptance report of one run."""

from __future__ import annotations

import argparse
from pathlib import Path

from specdyn.commands.common import out_path
from specdyn.stats import DEFAULT_RESAMPLES

from specdyn.safetext import visible  # notes and paths may hold domain names and user paths


def add_parser(subparsers) -> None:
    """Register the `report` sub-command."""
    parser = subparsers.add_parser(
        "report",
        help="write report.html, report.md and metrics.json for a run folder",
        description="Per-domain acceptance statistics (headline: per-level acceptance α) with "
                    "prompt-level bootstrap CIs, ceilings, reviewer analyses, and the reference study's "
                    "claims checked on the run (one primary result per claim). Works on runs still in "
                    "progress (reports the finished prompts).",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run folder written by `specdyn run`")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="output folder (default: RUN_DIR)")
    parser.add_argument("--bootstrap", metavar="N", type=int, default=DEFAULT_RESAMPLES,
                        help=f"prompt-level bootstrap resamples (default {DEFAULT_RESAMPLES})")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from specdyn.report import build_report
    from specdyn.report.verdicts import fmt

    out = out_path(args.out, Path(args.run_dir))
    result = build_report(args.run_dir, out, n_boot=args.bootstrap, seed=args.seed)
    for note in result.metrics.notes:
        print(f"note: {visible(note)}")
    for name, group in result.metrics.groups().items():
        print(f"{visible(name)}: per-level acceptance α {fmt(group.acceptance.acceptance_level)}")
    for claim in result.claims:
        if claim.primary:
            print(f"claim ({claim.claim}) [primary: {visible(claim.measure)}]: {claim.verdict.value}")
    for path in (result.html, result.markdown, result.metrics_json):
        print(f"wrote {visible(path)}")
    return 0
