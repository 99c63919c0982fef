"""How close adaptive trees get to the best tree for a known acceptance, on simulated requests (no model):
the share of the optimum's predicted tokens/s, averaged over a request's steps, for the posterior-mean
choice specdyn uses and for Thompson sampling (a draw from each cell's posterior), from the weak prior and
from a mixed-domain profile prior. Synthetic costs (tests/test_budget.synthetic_costs); 10 requests each.

    python benchmarks/adaptive_policy_sim.py [--steps 40,400] [--requests 10]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_adaptive import POOLED, simulate_step  # noqa: E402
from test_budget import synthetic_costs  # noqa: E402

from specdyn.prior import resolve_prior  # noqa: E402
from specdyn.treeopt.online import Beliefs, Planner  # noqa: E402

TRUTHS = {"code-like": [[0.9, 0.05, 0.0]] * 4, "chat-like": [[0.35, 0.25, 0.15]] * 4, "mid": [[0.7, 0.15, 0.05]] * 4,
          "better-deep": [[0.5, 0.3, 0.1]] + [[0.85, 0.05, 0.0]] * 3}


def share_of_best(truth: np.ndarray, prior, steps: int, seed: int, thompson: bool, every: int = 8) -> float:
    """Mean over steps of (predicted tokens/s of the tree used) / (that of the best tree under the truth)."""
    planner, beliefs, rng = Planner(synthetic_costs(), 10, 4), Beliefs.from_prior(prior), np.random.default_rng(seed)
    def belief() -> np.ndarray:
        return rng.beta(beliefs.alpha, beliefs.beta) if thompson else beliefs.mean

    shape, best, shares = planner.choose(belief(), 1).shape, planner.choose(truth, 1).tokens_per_second, []
    for step in range(1, steps + 1):
        shares.append(planner.price(shape, truth, 1).tokens_per_second / best)
        beliefs.observe(*simulate_step(shape, truth, rng))
        if step % every == 0:
            shape = planner.choose(belief(), 1).shape
    return float(np.mean(shares))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", default="40,400", help="request lengths in steps, comma-separated")
    p.add_argument("--requests", type=int, default=10)
    args = p.parse_args()
    priors = {"weak": resolve_prior(None, 4, 3, 8), "profile": resolve_prior(POOLED, 4, 3, 8)}
    print("prior    steps  policy     " + " ".join(f"{k:>12}" for k in TRUTHS))
    for (name, prior), steps in ((pr, int(s)) for pr in priors.items() for s in args.steps.split(",")):
        for thompson in (False, True):
            cells = [np.mean([share_of_best(np.array(t), prior, steps, s, thompson) for s in range(args.requests)])
                     for t in TRUTHS.values()]
            print(f"{name:<8} {steps:>5}  {'thompson' if thompson else 'mean':<9} " + " ".join(f"{c:>12.3f}" for c in cells))


if __name__ == "__main__":
    main()
