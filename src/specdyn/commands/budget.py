"""`specdyn budget`: per-domain tree recommendations from a run's recorded acceptance and measured costs."""

from __future__ import annotations

import sys
from pathlib import Path

from specdyn.budget.acceptance import DEFAULT_MIN_OBSERVATIONS, acceptance_vectors
from specdyn.budget.costs import COSTS_FILE, CostModel
from specdyn.budget.measured import domain_stats
from specdyn.budget.output import BUDGET_DIR, format_plan, write_plans
from specdyn.budget.plan import drafter_choice, plan_domain
from specdyn.budget.replay import replay
from specdyn.commands.common import out_path, print_notes
from specdyn.config import RunConfig
from specdyn.errors import SpecdynError
from specdyn.rundir.reader import RunData, load_run
from specdyn.specs import MAX_TREE_NODES, domain_filename

DEFAULT_MAX_NODES = 32  # largest node budget searched
DEFAULT_MAX_DEPTH = 6  # largest tree depth searched
MAX_DEPTH = 16  # every level costs a draft pass, and the search prices max_nodes x max_depth trees
DEFAULT_REPEATS = 5  # timed passes per size with --measure

FORMULA = ("tokens_per_second = (1 + expected_accepted) / (t_draft(1) + sum_l t_draft(frontier_l) + t_target(nodes + 1)); "
           "expected_accepted = sum over nodes of prod p[rank] on the root path (bonus not counted); replayed: the same "
           "per recorded step, with its draft passes and internal nodes; cheaper drafters: their own t_draft, the "
           "run's p assumed")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "budget", help="recommend a draft tree per domain from a run's recorded acceptance and measured costs",
        description="Estimate per-domain acceptance by sibling rank from RUN_DIR's node records, find Sequoia's best "
        "tree for every node budget and depth, price each with the measured draft/target pass costs, and write the "
        "fastest predicted tree per domain as a paths: file for `specdyn run --tree paths:FILE`.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by `specdyn run`")
    p.add_argument("--max-nodes", type=int, default=DEFAULT_MAX_NODES, metavar="N",
                   help=f"largest node budget searched (default {DEFAULT_MAX_NODES}, at most {MAX_TREE_NODES})")
    p.add_argument("--max-depth", type=int, default=DEFAULT_MAX_DEPTH, metavar="D",
                   help=f"largest tree depth searched (default {DEFAULT_MAX_DEPTH}, at most {MAX_DEPTH})")
    p.add_argument("--min-observations", type=int, default=DEFAULT_MIN_OBSERVATIONS, metavar="M",
                   help=f"parent-accepted nodes needed per sibling rank (default {DEFAULT_MIN_OBSERVATIONS})")
    p.add_argument("--out", metavar="DIR", help=f"output folder (default RUN_DIR/{BUDGET_DIR})")
    p.add_argument("--measure", action="store_true",
                   help=f"time the run's target and drafter on this machine, and cheaper drafters (int8, int8 with a "
                   f"32k-token head) to compare with, and (re)write RUN_DIR/{COSTS_FILE}")
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
    for flag, value, high in (("--max-nodes", args.max_nodes, MAX_TREE_NODES), ("--max-depth", args.max_depth, MAX_DEPTH)):
        if value > high:
            raise SpecdynError(f"{flag} must be at most {high} (got {value})")


def _measure(run: RunData, config: RunConfig, batch: int, repeats: int) -> CostModel:
    from specdyn.engine.timing import DEFAULT_BATCHES, measure_timings
    from specdyn.pipeline import timed_models

    models = timed_models(config)
    drafters = ", ".join([config.drafter.text, *models.alternatives])
    print(f"specdyn: timing {config.target} and the drafters {drafters} ({config.dtype})...", file=sys.stderr)
    info = {"draft": config.draft, "target": config.target, "dtype": config.dtype, "drafter": config.drafter.text}
    measured = measure_timings(models.draft, models.target, batches=sorted({*DEFAULT_BATCHES, batch}), repeats=repeats,
                               info=info, drafter=config.drafter.text, alternatives=models.alternatives)
    costs = CostModel.from_timings(measured.timings, measured.context_tokens, measured.info)
    costs.save(run.run_dir / COSTS_FILE)
    return costs


def load_costs(run: RunData, config: RunConfig, batch: int, measure: bool, repeats: int) -> CostModel:
    """RUN_DIR/costs.json, or a fresh measurement with --measure; an error without either."""
    path = run.run_dir / COSTS_FILE
    if measure:
        return _measure(run, config, batch, repeats)
    if not path.is_file():
        raise SpecdynError(f"no cost model at {path}: pass --measure to time the run's models on this machine")
    return CostModel.load(path)


def _warn(config: RunConfig, costs: CostModel, batch: int) -> None:
    timed = costs.info.get("drafter", config.drafter.text)
    if timed != config.drafter.text:
        print(f"specdyn: warning: the cost model timed drafter {timed!r}, the run used {config.drafter.text!r}; "
              "re-measure with --measure", file=sys.stderr)
    if not config.drafter.uses_draft_model:
        print(f"specdyn: note: the run used drafter {config.drafter.text!r}: its own steps are priced as recorded; the "
              "Sequoia trees are priced as if a draft model with these costs drafted them", file=sys.stderr)
    poor = costs.poor_fits(batch)  # also fails if this batch was not measured
    if poor:
        print(f"specdyn: warning: noisy cost fit for {', '.join(poor)}; the machine was probably busy while timing. "
              f"Predictions are unreliable: re-measure on an idle machine (--measure --repeats 10).", file=sys.stderr)


def _write(out: Path, run: RunData, config: RunConfig, plans, costs: CostModel, batch: int, args) -> None:
    specs = {p.domain: config.tree_for(p.domain).text for p in plans}
    header = {"run": str(run.run_dir.resolve()), "tree": config.tree.text, "formula": FORMULA, "costs": costs.to_json(),
              "settings": {"max_nodes": args.max_nodes, "max_depth": args.max_depth,
                           "min_observations": args.min_observations, "batch": batch}}
    written = write_plans(out, plans, header, specs)
    for plan in plans:
        print(format_plan(plan, specs[plan.domain]))
        print(f"  tree file: specdyn run --tree paths:{out / domain_filename(plan.domain)}\n")
    print(f"wrote {written}", file=sys.stderr)


def run(args) -> int:
    _check(args)
    out = out_path(args.out, Path(args.run_dir) / BUDGET_DIR)
    run = load_run(args.run_dir)
    print_notes(args.run_dir, run)
    config = run.manifest.require_config(args.run_dir)
    vectors = acceptance_vectors(run, args.min_observations)
    batch = args.batch or config.batch_size
    costs = load_costs(run, config, batch, args.measure, args.repeats)
    _warn(config, costs, batch)
    plans = [_plan(run, config, d, v, costs, batch, args) for d, v in vectors.items()]
    _write(out, run, config, plans, costs, batch, args)
    return 0


def _plan(run: RunData, config: RunConfig, domain: str, vector, costs: CostModel, batch: int, args):
    """The domain's plan, the run's own steps priced as recorded, and each cheaper drafter timed."""
    plan = plan_domain(vector, costs, args.max_nodes, args.max_depth, batch, config.tree_for(domain).shape,
                       domain_stats(run, domain))
    index = run.domains.index(domain)
    plan.replayed = replay(run, index, costs, batch)
    plan.drafters = [drafter_choice(d, vector, costs.for_drafter(d), args.max_nodes, args.max_depth, batch,
                                    replay(run, index, costs.for_drafter(d), batch)) for d in costs.alternatives]
    return plan
