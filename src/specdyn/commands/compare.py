"""`specdyn compare`: runs side by side per domain, ranked by measured tokens/s."""

from __future__ import annotations

import sys
from pathlib import Path

from specdyn.budget.compare import compare_runs, to_json, to_markdown
from specdyn.budget.runs import load_run
from specdyn.errors import SpecdynError
from specdyn.rundir.writer import write_atomic


def add_parser(sub) -> None:
    p = sub.add_parser(
        "compare", help="compare run folders per domain: acceptance, measured tokens/s, predictions",
        description="Compare run folders side by side per domain: tree and drafter, nodes and steps, accepted tokens "
        "per step (with and without the bonus token), node-local acceptance, measured tokens/s, and the predicted "
        "accepted length where a budget.json covers the run's tree. Runs are ranked per domain by measured tokens/s.",
    )
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folders written by `specdyn run`")
    p.add_argument("--out", metavar="FILE", help="also write the comparison to FILE (.json for JSON, else markdown)")
    p.set_defaults(func=run)


def run(args) -> int:
    labels = [str(d) for d in args.run_dirs]
    if len(set(labels)) < len(labels):
        raise SpecdynError("the same run folder is given twice")
    comparisons = compare_runs([load_run(d) for d in args.run_dirs], labels)
    markdown = to_markdown(comparisons)
    print(markdown)
    if args.out:
        out = Path(args.out)
        text = to_json(comparisons) if out.suffix.lower() == ".json" else markdown
        try:
            write_atomic(out, lambda p: p.write_text(text + "\n"))
        except OSError as exc:
            raise SpecdynError(f"cannot write {out}: {exc.strerror}") from None
        print(f"wrote {out}", file=sys.stderr)
    return 0
