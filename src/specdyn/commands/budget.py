"""`specdyn budget`: per-domain drafter and tree recommendations from runs' recorded acceptance and measured costs."""

from __future__ import annotations

import sys
from pathlib import Path

from specdyn.budget.acceptance import DEFAULT_MIN_OBSERVATIONS
from specdyn.budget.choice import DomainChoice, Option, Search, check_global, check_runs, choose, global_option
from specdyn.budget.choice_output import exported_trees, format_choice, format_global, write_choices
from specdyn.budget.costs import COSTS_FILE, CostModel
from specdyn.budget.export import Engine, export_trees, parse_engines
from specdyn.budget.output import BUDGET_DIR
from specdyn.commands.common import check_distinct, out_path, print_notes, sampling_flags
from specdyn.config import RunConfig
from specdyn.errors import SpecdynError
from specdyn.rundir.reader import RunData, load_run
from specdyn.specs import GLOBAL_FILE, MAX_TREE_NODES

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
        "budget", help="recommend a drafter and a draft tree per domain from runs' recorded acceptance and measured costs",
        description="Estimate per-domain acceptance by sibling rank from RUN_DIR's node records, find Sequoia's best "
        "tree for every node budget and depth, price each with the measured draft/target pass costs, and write the "
        "fastest predicted tree per domain as a paths: file for `specdyn run --tree paths:FILE`. Given several runs "
        "(of one target: e.g. the base draft, distilled drafts, prompt lookup), each run's drafter is priced on every "
        "domain it decoded, and the fastest predicted (drafter, tree) wins the domain; the cost model is the first "
        "run's. --global adds one tree for every domain (the first run's domains pooled, its drafter); --export "
        "writes the trees as vLLM / SGLang settings.",
    )
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                   help="run folders written by `specdyn run` (the first one's costs.json prices them all)")
    p.add_argument("--max-nodes", type=int, default=DEFAULT_MAX_NODES, metavar="N",
                   help=f"largest node budget searched (default {DEFAULT_MAX_NODES}, at most {MAX_TREE_NODES})")
    p.add_argument("--max-depth", type=int, default=DEFAULT_MAX_DEPTH, metavar="D",
                   help=f"largest tree depth searched (default {DEFAULT_MAX_DEPTH}, at most {MAX_DEPTH})")
    p.add_argument("--min-observations", type=int, default=DEFAULT_MIN_OBSERVATIONS, metavar="M",
                   help=f"parent-accepted nodes needed per sibling rank (default {DEFAULT_MIN_OBSERVATIONS})")
    p.add_argument("--out", metavar="DIR", help=f"output folder (default: the first RUN_DIR/{BUDGET_DIR})")
    p.add_argument("--measure", action="store_true",
                   help=f"time the first run's target and drafter on this machine, and cheaper drafters (int8, int8 with a "
                   f"32k-token head) to compare with, and (re)write the first RUN_DIR/{COSTS_FILE}")
    p.add_argument("--batch", type=int, metavar="B", help="batch size to price trees at (default: the first run's batch_size)")
    p.add_argument("--repeats", type=int, default=DEFAULT_REPEATS, metavar="R",
                   help=f"timed passes per size with --measure (default {DEFAULT_REPEATS})")
    p.add_argument("--global", dest="global_tree", action="store_true",
                   help=f"also pool every domain of the first run into one acceptance vector and write its best tree, "
                   f"for the first run's drafter, as DIR/{GLOBAL_FILE} (the single best tree when the domain is unknown)")
    p.add_argument("--export", metavar="ENGINE[,ENGINE]",
                   help="also write the picked trees (and the global one) as serving-engine settings: vllm "
                   "(DIR/vllm/*.json, speculative_config) and/or sglang (DIR/sglang/*.json, closest EAGLE settings, "
                   "labelled exact or approximate); picks without a draft model (prompt lookup) are not exported")
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
    if not config.sampling.greedy:
        print(f"specdyn: note: the run sampled ({config.sampling.label}, {config.children.text} children): its acceptance "
              f"vectors, and so the predictions and recommended trees, hold for that setting; run the trees with "
              f"the same flags", file=sys.stderr)
    poor = costs.poor_fits(batch)  # also fails if this batch was not measured
    if poor:
        print(f"specdyn: warning: noisy cost fit for {', '.join(poor)}; the machine was probably busy while timing. "
              f"Predictions are unreliable: re-measure on an idle machine (--measure --repeats 10).", file=sys.stderr)


def _header(dirs: list[str], config: RunConfig, costs: CostModel, batch: int, args) -> dict:
    return {"run": str(Path(dirs[0]).resolve()), "runs": [str(Path(d).resolve()) for d in dirs], "tree": config.tree.text,
            "sampling": config.sampling_json(), "formula": FORMULA, "costs": costs.to_json(),
            "settings": {"max_nodes": args.max_nodes, "max_depth": args.max_depth,
                         "min_observations": args.min_observations, "batch": batch}}


def _write(out: Path, choices: list[DomainChoice], single: Option | None, header: dict, flags: str) -> None:
    written = write_choices(out, choices, header, single)
    for choice in choices:
        print(format_choice(choice, out, flags))
    if single is not None:
        print(format_global(single, out, flags))
    if len({c.best.drafter for c in choices}) > 1:
        print("Note: the picks use different drafters. Decode each domain with its own command above, on a suite of "
              "that domain (`specdyn suite filter SUITE --domain D --out FILE`); `--domain-trees` applies the trees "
              "with one drafter for every domain.")
    print(f"wrote {written}", file=sys.stderr)


def _export(out: Path, choices: list[DomainChoice], single: Option | None, engines: list[Engine]) -> None:
    trees, notes = exported_trees(choices, single)
    for note in notes:
        print(f"specdyn: note: --export: {note}", file=sys.stderr)
    for path in export_trees(out, trees, engines):
        print(f"wrote {path}", file=sys.stderr)


def run(args) -> int:
    _check(args)
    engines = parse_engines(args.export) if args.export is not None else []
    check_distinct(args.run_dirs)
    out = out_path(args.out, Path(args.run_dirs[0]) / BUDGET_DIR)
    runs = [load_run(d) for d in args.run_dirs]
    for label, r in zip(args.run_dirs, runs):
        print_notes(label, r)
    config = runs[0].manifest.require_config(args.run_dirs[0])
    batch = args.batch or config.batch_size
    search = Search(args.max_nodes, args.max_depth, args.min_observations, batch)
    check_runs(runs, args.run_dirs)
    if args.global_tree:
        check_global(runs[0], args.run_dirs[0])
    costs = load_costs(runs[0], config, batch, args.measure, args.repeats)
    _warn(config, costs, batch)
    choices = choose(runs, args.run_dirs, costs, search)
    single = global_option(runs[0], args.run_dirs[0], costs, search) if args.global_tree else None
    _write(out, choices, single, _header(args.run_dirs, config, costs, batch, args), sampling_flags(config))
    if engines:
        _export(out, choices, single, engines)
    return 0

