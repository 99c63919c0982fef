"""The proof matrix of domain-distilled drafts (issue 14, docs/distill.md "The proof matrix"): from a study
run (the training data), train one adapter per domain, decode prompts none of them was trained on with the
base draft and with each distilled draft, and lay the runs out as a draft x domain matrix.

Every step is a `specdyn` command, printed before it runs (so the exact commands are on record) and run
in this process; each one resumes or skips finished work when the script is run again. By default:

    specdyn distill TRAIN_RUN --domain D --out OUT/adapters/D                       (each domain D)
    specdyn suite export --per-domain 50 --seed 1 --out OUT/eval-drawn.jsonl        (another draw)
    specdyn suite filter OUT/eval-drawn.jsonl --out OUT/eval.jsonl --domain D ... --exclude-trained OUT/adapters/D ...
    specdyn run --suite OUT/eval.jsonl --out OUT/runs/base  <the training run's models, dtype, tree, limits>
    specdyn run --suite OUT/eval.jsonl --out OUT/runs/D --draft-adapter OUT/adapters/D ...   (each D)
    specdyn run --suite OUT/eval.jsonl --out OUT/runs/lookup --drafter lookup ...   (with --lookup)
    specdyn compare OUT/runs/base OUT/runs/D ... --matrix --out OUT/matrix.md   (and OUT/matrix.json)
    specdyn budget OUT/runs/base OUT/runs/D ... --out OUT/budget ...            (with --budget)

    python benchmarks/distill_matrix.py TRAIN_RUN --out OUT [--domains code,math] [--eval-suite FILE]
        [--eval-seed 1] [--per-domain 50] [--distill-args="--steps 30"] [--run-args="--quiet"]
        [--lookup] [--budget] [--budget-args="--measure"] [--dry-run]

Give the pass-through options with ``=`` (``--run-args=--quiet``): a value that starts with ``-`` would
otherwise be read as an option of this script.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from specdyn.cli import main as specdyn
from specdyn.config import RunConfig
from specdyn.errors import SpecdynError
from specdyn.rundir.reader import load_run
from specdyn.specs import domain_filename


@dataclass
class Step:
    """One `specdyn` command of the pipeline."""

    argv: list[str]

    def __str__(self) -> str:
        return "specdyn " + shlex.join(self.argv)


@dataclass
class Layout:
    """Where the pipeline writes, under ``--out``."""

    out: Path
    domains: list[str]
    lookup: bool = False  # also a prompt-lookup run (no draft model): another drafter for the budget

    def adapter(self, domain: str) -> Path:
        return self.out / "adapters" / Path(domain_filename(domain)).stem

    def run(self, domain: str | None) -> Path:
        return self.out / "runs" / ("base" if domain is None else Path(domain_filename(domain)).stem)

    @property
    def runs(self) -> list[str]:
        lookup = [str(self.out / "runs" / "lookup")] if self.lookup else []
        return [str(self.run(d)) for d in (None, *self.domains)] + lookup


def distill_steps(train: str, lay: Layout, extra: list[str]) -> list[Step]:
    return [Step(["distill", train, "--domain", d, "--out", str(lay.adapter(d)), *extra]) for d in lay.domains]


def suite_steps(args, lay: Layout) -> list[Step]:
    """Draw the evaluation prompts (unless ``--eval-suite`` gives them), then drop every trained-on one."""
    drawn = args.eval_suite or str(lay.out / "eval-drawn.jsonl")
    export = [] if args.eval_suite else [Step(["suite", "export", "--per-domain", str(args.per_domain),
                                              "--seed", str(args.eval_seed), "--out", drawn])]
    keep = [a for d in lay.domains for a in ("--domain", d)]
    trained = [a for d in lay.domains for a in ("--exclude-trained", str(lay.adapter(d)))]
    return export + [Step(["suite", "filter", drawn, "--out", str(lay.out / "eval.jsonl"), *keep, *trained])]


def model_args(config: RunConfig) -> list[str]:
    """Decode like the training run: its models, dtype, device, tree, token limit and batch size."""
    return ["--draft", config.draft, "--target", config.target, "--dtype", config.dtype, "--device", config.device,
            "--tree", config.tree.text, "--max-new-tokens", str(config.max_new_tokens), "--batch-size", str(config.batch_size)]


def run_steps(config: RunConfig, lay: Layout, extra: list[str]) -> list[Step]:
    common = ["run", "--suite", str(lay.out / "eval.jsonl"), *model_args(config), "--no-report", *extra]
    steps = [Step(common + ["--out", str(lay.run(None))])]
    steps += [Step(common + ["--out", str(lay.run(d)), "--draft-adapter", str(lay.adapter(d))]) for d in lay.domains]
    return steps + ([Step(common + ["--out", lay.runs[-1], "--drafter", "lookup"])] if lay.lookup else [])


def analysis_steps(args, lay: Layout) -> list[Step]:
    steps = [Step(["compare", *lay.runs, "--matrix", "--out", str(lay.out / f"matrix.{ext}")]) for ext in ("md", "json")]
    budget = [Step(["budget", *lay.runs, "--out", str(lay.out / "budget"), *shlex.split(args.budget_args)])]
    return steps + (budget if args.budget else [])


def plan(args) -> list[Step]:
    run = load_run(args.train_run)
    config = run.manifest.require_config(args.train_run)
    lay = Layout(Path(args.out), args.domains.split(",") if args.domains else run.domains, args.lookup)
    return (distill_steps(args.train_run, lay, shlex.split(args.distill_args)) + suite_steps(args, lay)
            + run_steps(config, lay, shlex.split(args.run_args)) + analysis_steps(args, lay))


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("train_run", metavar="TRAIN_RUN", help="the study run whose recorded outputs the adapters train on")
    ap.add_argument("--out", required=True, help="folder for adapters, the evaluation suite, runs and the matrix")
    ap.add_argument("--domains", help="comma-separated domains to distill and evaluate (default: the run's)")
    ap.add_argument("--eval-suite", metavar="FILE", help="evaluation prompts (default: the default suite drawn with --eval-seed)")
    ap.add_argument("--eval-seed", type=int, default=1, help="seed of the default-suite draw to evaluate on (default 1)")
    ap.add_argument("--per-domain", type=int, default=50, help="prompts per domain of that draw (default 50)")
    ap.add_argument("--distill-args", default="", help="extra `specdyn distill` options, e.g. --distill-args=\"--steps 30\"")
    ap.add_argument("--run-args", default="", help="extra `specdyn run` options (they override the training run's), e.g. --run-args=--quiet")
    ap.add_argument("--lookup", action="store_true", help="also decode the evaluation suite with prompt lookup (--drafter lookup)")
    ap.add_argument("--budget", action="store_true", help="end with `specdyn budget` over the runs")
    ap.add_argument("--budget-args", default="", help="extra `specdyn budget` options, e.g. --budget-args=--measure")
    ap.add_argument("--dry-run", action="store_true", help="print the commands without running them")
    return ap.parse_args(argv)


def run_all(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        steps = plan(args)
    except SpecdynError as exc:
        print(f"specdyn: error: {exc}", file=sys.stderr)
        return 2
    for step in steps:
        print(f"$ {step}", flush=True)
        code = 0 if args.dry_run else specdyn(step.argv)
        if code != 0:
            print(f"distill_matrix: stopped: `{step}` exited with {code}", file=sys.stderr)
            return code
    return 0


if __name__ == "__main__":
    sys.exit(run_all())
