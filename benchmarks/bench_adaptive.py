"""What an adaptive tree costs on top of drafting and verifying: its bookkeeping per step (the draft's top
`branch` tokens at each expanded position, the belief update) and one re-solve (Sequoia's DP by depth and
the pricing of every budget and depth limit).

The bookkeeping is the ratio of seconds per step of an adaptive proposer that never re-solves (so its trees
stay its first tree) over a static proposer drafting that same tree, on the same prompts in one process.

    python benchmarks/bench_adaptive.py --tiny          # tiny random models (seconds)
    python benchmarks/bench_adaptive.py                 # the default pair, bfloat16 (minutes; an idle machine)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from specdyn.defaults import DEFAULT_DRAFT, DEFAULT_TARGET
from specdyn.engine import PromptInput, SpeculativeDecoder
from specdyn.engine.adaptive import AdaptiveProposer
from specdyn.engine.proposers import DraftModelProposer
from specdyn.specs import parse_tree
from specdyn.treeopt.costs import CostModel
from specdyn.treeopt.online import Beliefs

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def pair(args):
    """(draft model, target model, eos ids, prompts as token lists)."""
    if args.tiny:
        from tiny import perturbed, tiny_model

        torch.set_num_threads(1)  # tiny models gain nothing from more threads on a shared CPU

        target = tiny_model(seed=0)
        return perturbed(target, 0.3), target, [3], [[(7 * i + j) % 90 + 4 for j in range(12)] for i in range(args.prompts)]
    from specdyn.models import load_pair
    from specdyn.pipeline import encode_messages

    draft, target = load_pair(DEFAULT_DRAFT, DEFAULT_TARGET, "bfloat16", "cpu")
    texts = ["Write a Python function that merges two sorted lists.", "Why is the sky blue?", "What is 17 * 23?"]
    ids = [encode_messages(target.tokenizer, [{"role": "user", "content": t}]) for t in texts[: args.prompts]]
    return draft.model, target.model, target.eos_token_ids, ids


def seconds_per_step(proposer, target, eos, prompts, max_new: int) -> float:
    decoder = SpeculativeDecoder(proposer, target, eos, max_new_tokens=max_new)
    start = time.perf_counter()
    steps = sum(len(r.steps) for r in decoder.generate_many([PromptInput(f"p{i}", p) for i, p in enumerate(prompts)]))
    return (time.perf_counter() - start) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--tree", default="adaptive", help="the adaptive spec (default: adaptive, the defaults)")
    ap.add_argument("--costs", help="a costs.json to price trees with (default: the tiny fits of tests/test_budget)")
    ap.add_argument("--prompts", type=int, default=3)
    ap.add_argument("--max-new-tokens", type=int, default=48)
    args = ap.parse_args()
    from test_budget import synthetic_costs

    costs = CostModel.load(args.costs) if args.costs else synthetic_costs(target=(0.04, 0.0005))
    spec = parse_tree(args.tree)
    frozen = parse_tree(spec.text.replace(f"every={spec.every}", "every=1024"))
    draft, target, eos, prompts = pair(args)
    adaptive = AdaptiveProposer(draft, frozen, costs)
    static = DraftModelProposer(draft, adaptive.start_shape(1))
    with torch.inference_mode():
        runs = {name: seconds_per_step(p, target, eos, prompts, args.max_new_tokens) for name, p in
                (("static", static), ("adaptive", adaptive), ("static again", static))}
    base = (runs["static"] + runs["static again"]) / 2
    planner, beliefs = adaptive.planner, Beliefs.from_prior(spec.prior)
    start = time.perf_counter()
    for _ in range(5):
        planner.choose(beliefs.mean, 1)
    solve = (time.perf_counter() - start) / 5
    print(f"tree {adaptive.start_shape(1).size} nodes; {torch.get_num_threads()} threads")
    for name, s in runs.items():
        print(f"{name:<13} {s * 1e3:8.2f} ms/step  ratio vs static {s / base:5.3f}")
    print(f"one re-solve ({spec.text}): {solve * 1e3:.1f} ms = {solve / base:.2f} static steps; "
          f"every {spec.every} steps: {solve / (spec.every * base):.1%} of decoding time")


if __name__ == "__main__":
    main()
