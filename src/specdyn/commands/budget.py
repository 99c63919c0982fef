"""`specdyn budget`: per-domain tree recommendations from a run's recorded acceptance and measured costs."""

from __future__ import annotations

import sys
from pathlib import Path

from specdyn.budget.acceptance import DEFAULT_MIN_OBSERVATIONS, acceptance_vectors
from specdyn.budget.costs import COSTS_FILE, DEFAULT_BATCHES, CostModel, measure_costs
from specdyn.budget.output import BUDGET_DIR, domain_filename, format_plan, write_plans
from specdyn.budget.plan import plan_domain
from specdyn.budget.runs import RunTables, domain_config, domain_stats, load_run, run_shape
from specdyn.errors import SpecdynError

DEFAULT_MAX_NODES = 32  # largest node budget searched
DEFAULT_MAX_DEPTH = 6  # largest tree depth searched
DEFAULT_REPEATS = 5  # timed passes per size with --measure

FORMULA = ("tokens_per_second = (1 + expected_accepted) / (t_draft(1) + sum_l t_draft(frontier_l) + t_target(nodes + 1)); "
           "expected_accepted = sum over nodes of prod p[rank] on the root path (bonus not counted)")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "budget", help="recommend a draft tree per domain from a run's recorded acceptance and measured costs",
        description="Estimate per-domain acceptance by sibling rank from RUN_DIR's node records, find Sequoia's best "
        "tree for every node budget and depth, price each with the measured draft/target pass costs, and write the "
        "fastest predicted tree per domain as a paths: file for `specdyn run --tree paths:FILE`.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by `specdyn run`")
    p.add_argument("--max-nodes", type=int, default=DEFAULT_MAX_NODES, metavar="N",
                   help=f"largest node budget searched (default {DEFAULT_MAX_NODES})")
    p.add_argument("--max-depth", type=int, default=DEFAULT_MAX_DEPTH, metavar="D",
                   help=f"largest tree depth searched (default {DEFAULT_MAX_DEPTH})")
    p.add_argument("--min-observations", type=int, default=DEFAULT_MIN_OBSERVATIONS, metavar="M",
                   help=f"parent-accepted nodes needed per sibling rank (default {DEFAULT_MIN_OBSERVATIONS})")
    p.add_argument("--out", metavar="DIR", help=f"output folder (default RUN_DIR/{BUDGET_DIR})")
    p.add_argument("--measure", action="store_true",
                   help=f"time the run's models on this machine and (re)write RUN_DIR/{COSTS_FILE}")
    p.add_argument("--batch", type=int, metavar="B", help="batch size to price trees at (default: the run's batch_size)")
    p.add_argument("--repeats", type=int, default=DEFAULT_REPEATS, metavar="R",
                   help=f"timed passes per size with --measure (default {DEFAULT_REPEATS})")
    p.set_defaults(func=run)


def _check(args) -> None:
    for flag, value in (("--max-nodes", args.max_nodes), ("--max-depth", args.max_depth),
                        ("--min-observations", args.min_observations), ("--repeats", args.repeats),
                        ("--batch", 1 if args.batch is None else args.batch)):
        if value < 1:
            raise SpecdynError(f"{flag} must be >= 1 (got {value})")


def _measure(run: RunTables, batch: int, repeats: int) -> CostModel:
    from specdyn.models import load_pair

    cfg = run.config
    if not cfg.get("draft") or not cfg.get("target"):
        raise SpecdynError(f"{run.root}/manifest.json does not name the draft and target models")
    draft, target = load_pair(cfg["draft"], cfg["target"], cfg.get("dtype", "bfloat16"), cfg.get("device"))
    print(f"specdyn: timing {cfg['draft']} and {cfg['target']} ({cfg.get('dtype', 'bfloat16')})...", file=sys.stderr)
    info = {"draft": cfg["draft"], "target": cfg["target"], "dtype": cfg.get("dtype", "bfloat16")}
    costs = measure_costs(draft.model, target.model, batches=sorted({*DEFAULT_BATCHES, batch}), repeats=repeats, info=info)
    costs.save(run.root / COSTS_FILE)
    return costs


def load_costs(run: RunTables, batch: int, measure: bool, repeats: int) -> CostModel:
    """RUN_DIR/costs.json, or a fresh measurement with --measure; an error without either."""
    path = run.root / COSTS_FILE
    if measure:
        return _measure(run, batch, repeats)
    if not path.is_file():
        raise SpecdynError(f"no cost model at {path}: pass --measure to time the run's models on this machine")
    return CostModel.load(path)


def _warn(run_tables: RunTables, costs: CostModel, batch: int) -> None:
    drafter = run_tables.config.get("drafter", "model")
    if drafter != "model":
        print(f"specdyn: warning: the run used drafter {drafter!r}, but the cost model prices draft-model passes; "
              f"predicted speeds do not apply to that drafter", file=sys.stderr)
    poor = costs.poor_fits(batch)  # also fails if this batch was not measured
    if poor:
        print(f"specdyn: warning: noisy cost fit for {', '.join(poor)}; the machine was probably busy while timing. "
              f"Predictions are unreliable: re-measure on an idle machine (--measure --repeats 10).", file=sys.stderr)


def _write(args, run_tables: RunTables, plans, costs: CostModel, batch: int, specs: dict[str, str]) -> None:
    out = Path(args.out) if args.out else run_tables.root / BUDGET_DIR
    header = {"run": str(run_tables.root.resolve()), "tree": str(run_tables.config.get("tree", "?")), "formula": FORMULA, "costs": costs.to_json(),
              "settings": {"max_nodes": args.max_nodes, "max_depth": args.max_depth,
                           "min_observations": args.min_observations, "batch": batch}}
    written = write_plans(out, plans, header, specs)
    for plan in plans:
        print(format_plan(plan, specs[plan.domain]))
        print(f"  tree file: specdyn run --tree paths:{out / domain_filename(plan.domain)}\n")
    print(f"wrote {written}", file=sys.stderr)


def run(args) -> int:
    _check(args)
    run_tables = load_run(args.run_dir)
    vectors = acceptance_vectors(run_tables.nodes, args.min_observations)
    batch = args.batch or int(run_tables.config.get("batch_size") or 1)
    costs = load_costs(run_tables, batch, args.measure, args.repeats)
    _warn(run_tables, costs, batch)
    configs = {d: domain_config(run_tables.config, d) for d in vectors}  # each domain's own tree
    specs = {d: str(c.get("tree", "?")) for d, c in configs.items()}
    plans = [plan_domain(v, costs, args.max_nodes, args.max_depth, batch, run_shape(configs[d]), domain_stats(run_tables, d))
             for d, v in vectors.items()]
    _write(args, run_tables, plans, costs, batch, specs)
    return 0
