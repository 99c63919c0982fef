"""`specdyn run`: the study — a suite through the engine, every node streamed to Parquet, then the report."""

from __future__ import annotations

import sys

from pathlib import Path

from specdyn.commands.common import add_decode_args, add_execution_args, config_from_args, execution_from_args, out_path
from specdyn.config import RunConfig

DEFAULT_OUT = "runs/default"


def add_parser(sub) -> None:
    d = RunConfig()
    p = sub.add_parser(
        "run", help="run the study: decode a prompt suite, record every speculative node, write the report",
        description="Decode a prompt suite with tree speculative decoding, stream every node/step/prompt record "
        "to Parquet in --out, then write the report. Re-running the same command resumes an interrupted run.",
    )
    p.add_argument("--suite", help=f"'default' (the built-in 4-domain benchmark suite) or a suite JSONL file (default {d.suite})")
    p.add_argument("--out", metavar="DIR", help=f"run folder (default {DEFAULT_OUT})")
    p.add_argument("--per-domain", type=int, metavar="N", help=f"prompts per domain for the default suite (default {d.per_domain})")
    p.add_argument("--batch-size", type=int, metavar="N", help=f"prompts decoded together in one batch (default {d.batch_size})")
    p.add_argument("--domain-trees", metavar="DIR",
                   help="per-domain trees: DIR/<domain>.json paths files (as written by `specdyn budget`; every "
                   "*.json in DIR but budget.json and global.json must be one); domains without a file use --tree")
    add_decode_args(p, RunConfig)
    add_execution_args(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    p.set_defaults(func=run)


def run(args) -> int:
    from specdyn.study import run_study

    out = out_path(args.out, Path(DEFAULT_OUT))
    execution = execution_from_args(args)
    config = config_from_args(args, RunConfig)
    root = run_study(config, out, quiet=args.quiet, execution=execution)
    print(f"run complete: {root}", file=sys.stderr)
    if not args.no_report:
        from specdyn.report import build_report

        result = build_report(root)
        print(f"report: {result.html}", file=sys.stderr)
    return 0
