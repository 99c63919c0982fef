"""`specdyn compare`: runs side by side per domain, ranked by measured tokens/s."""

from __future__ import annotations

import json
import sys

from specdyn.files import write_text_atomic
from specdyn.budget import matrix
from specdyn.budget.compare import compare_runs, json_doc, to_markdown
from specdyn.commands.common import check_distinct, out_path, print_notes
from specdyn.rundir.reader import load_run


def add_parser(sub) -> None:
    p = sub.add_parser(
        "compare", help="compare run folders per domain: acceptance, measured tokens/s, predictions",
        description="Compare run folders side by side per domain: tree and drafter, nodes and steps, accepted tokens "
        "per step (with and without the bonus token), node-local acceptance, measured tokens/s, and the predicted "
        "accepted length where a budget.json covers the run's tree. Runs are ranked per domain by measured tokens/s. "
        "A run decoded with a `specdyn distill` adapter shows it in the drafter column (model+distilled:D@ID).",
    )
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folders written by `specdyn run`")
    p.add_argument("--out", metavar="FILE", help="also write the comparison to FILE (.json for JSON, else markdown)")
    p.add_argument("--matrix", action="store_true",
                   help="also lay the runs out as a draft x domain matrix: one row per run, labelled by its draft (base, "
                   "or distilled:D@ID for a `specdyn distill` adapter trained on domain D), one column per domain; per-level "
                   "acceptance alpha, accepted tokens per step and tokens/s with prompt-bootstrap intervals, and each "
                   "row's paired change from the base-draft run")
    p.set_defaults(func=run)


def run(args) -> int:
    check_distinct(args.run_dirs)
    out = out_path(args.out, None)
    runs = [load_run(d) for d in args.run_dirs]
    for label, r in zip(args.run_dirs, runs):
        print_notes(label, r)
    comparisons = compare_runs(runs, list(args.run_dirs))
    doc, markdown = json_doc(comparisons), to_markdown(comparisons)
    if args.matrix:
        table = matrix.build_matrix(runs, list(args.run_dirs))
        doc, markdown = doc | {"matrix": matrix.to_json(table)}, markdown + "\n" + matrix.to_markdown(table)
    print(markdown)
    if out is not None:
        write_text_atomic(out, (json.dumps(doc, indent=2) if out.suffix.lower() == ".json" else markdown) + "\n")
        print(f"wrote {out}", file=sys.stderr)
    return 0
