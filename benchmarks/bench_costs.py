"""Print the measured forward-pass costs (specdyn.engine.timing, fitted by specdyn.budget.costs) of a draft/target pair.

    python benchmarks/bench_costs.py                 # the default pair (registry models), bfloat16
    python benchmarks/bench_costs.py --tiny          # tiny random models from tests/tiny.py (seconds)
    python benchmarks/bench_costs.py --out costs.json   # also save the cost model (usable as RUN_DIR/costs.json)

Run it on an otherwise idle machine: other processes on the same cores inflate and scatter the timings.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from specdyn.budget.costs import CostModel
from specdyn.defaults import DEFAULT_DRAFT, DEFAULT_TARGET, TIMING_CONTEXT
from specdyn.engine.timing import DEFAULT_BATCHES, DEFAULT_SIZES, measure_timings


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(","))


def load_models(args) -> tuple[object, object, dict]:
    """(draft, target, info) for the requested pair."""
    if args.tiny:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from tiny import perturbed, tiny_model

        target = tiny_model(seed=0)
        return perturbed(target, 0.3), target, {"draft": "tiny", "target": "tiny", "dtype": "float32"}
    from specdyn.models import load_pair

    draft, target = load_pair(args.draft, args.target, args.dtype, "cpu")
    return draft.model, target.model, {"draft": args.draft, "target": args.target, "dtype": args.dtype}


def table(costs: CostModel) -> str:
    """Median milliseconds per (role, batch, tokens) and the fitted line of each (role, batch)."""
    lines = [f"context {costs.context_tokens} tokens; {costs.info}", "role    batch  tokens   median ms   fit ms"]
    for t in costs.timings:
        fit = getattr(costs, t.role)[t.batch]
        lines.append(f"{t.role:<7} {t.batch:>5} {t.tokens:>7} {t.seconds * 1e3:>11.2f} {fit(t.tokens) * 1e3:>8.2f}")
    for role in ("draft", "target"):
        for b, f in sorted(getattr(costs, role).items()):
            lines.append(f"fit {role} batch {b}: {f.intercept * 1e3:.2f} ms + {f.slope * 1e3:.3f} ms/token")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiny", action="store_true", help="tiny random models instead of the default pair")
    p.add_argument("--draft", default=DEFAULT_DRAFT)
    p.add_argument("--target", default=DEFAULT_TARGET)
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--sizes", type=_ints, default=DEFAULT_SIZES, help="comma-separated query tokens per row")
    p.add_argument("--batches", type=_ints, default=DEFAULT_BATCHES, help="comma-separated batch sizes")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--context", type=int, default=TIMING_CONTEXT)
    p.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    p.add_argument("--out", help="save the cost model JSON here")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    draft, target, info = load_models(args)
    measured = measure_timings(draft, target, args.sizes, args.batches, args.repeats, args.context, info)
    costs = CostModel.from_timings(measured.timings, measured.context_tokens, measured.info)
    print(table(costs))
    if args.out:
        costs.save(args.out)


if __name__ == "__main__":
    main()
