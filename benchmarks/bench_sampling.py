"""Tokens/s when sampling (default T = 0.7): target-only sampling, Hugging Face assisted generation with
``do_sample=True``, and specdyn's tree speculative sampling (deterministic and sampled children).

All run in one process on the same prompts, so the ratios are meaningful on a noisy machine. Sampled
outputs differ between methods (each has its own random stream); all follow the same distribution.
Hugging Face's top-k (50 by default) and repetition penalty are switched off so that every method samples
the same warped target: temperature, then top-p.

    python benchmarks/bench_sampling.py [--draft NAME] [--target NAME] [--tree SPEC] [--temperature T]
        [--top-p P] [--dtype D] [--max-new-tokens N] [--prompts K] [--seed S]
"""

from __future__ import annotations

import argparse
import time

import torch

from specdyn.config import DecodeConfig
from specdyn.engine import Children, Sampling, SpeculativeDecoder, target_sample
from specdyn.engine.proposers import DraftModelProposer
from specdyn.engine.sampling import row_generator
from specdyn.pipeline import encode_messages, load_models
from specdyn.specs import parse_tree

PROMPTS = [
    "Write a Python function that returns the n-th Fibonacci number.",
    "Explain in two sentences why the sky is blue.",
    "A train travels 120 km in 1.5 hours. What is its average speed? Answer step by step.",
]


@torch.inference_mode()
def hf_sample(model, ids, max_new, eos, sampling: Sampling, assistant=None):
    inp = torch.tensor([ids])
    out = model.generate(inp, attention_mask=torch.ones_like(inp), max_new_tokens=max_new, do_sample=True,
                         temperature=sampling.temperature, top_p=sampling.top_p, top_k=0, repetition_penalty=1.0,
                         eos_token_id=sorted(eos), pad_token_id=sorted(eos)[0], assistant_model=assistant)
    return out[0, len(ids):].tolist()


def parse_args():
    d = DecodeConfig()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--draft", default=d.draft)
    ap.add_argument("--target", default=d.target)
    ap.add_argument("--tree", default=d.tree.text, help="a static or paths tree spec")
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--top-p", type=float, default=1.0)
    ap.add_argument("--dtype", default=d.dtype)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--prompts", type=int, default=len(PROMPTS), help=f"how many of the {len(PROMPTS)} prompts")
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args()


def methods(args, draft, target, sampling: Sampling) -> dict:
    """Name -> function(prompt_ids, prompt_id) -> generated ids."""
    eos, n, shape = target.eos_token_ids, args.max_new_tokens, parse_tree(args.tree).shape
    out = {
        "target-only sampling": lambda ids, pid: target_sample(target.model, ids, n, eos, sampling,
                                                               row_generator(args.seed, pid)),
        "HF assisted generation, do_sample": lambda ids, pid: hf_sample(target.model, ids, n, eos, sampling,
                                                                        assistant=draft.model),
    }
    for children in Children:
        proposer = DraftModelProposer(draft.model, shape, children, sampling)
        decoder = SpeculativeDecoder(proposer, target.model, eos, n, sampling=sampling, seed=args.seed)
        out[f"specdyn tree, {children.value} children"] = lambda ids, pid, dec=decoder: dec.generate(ids, pid).output_ids
    return out


def main() -> None:
    args = parse_args()
    sampling = Sampling(args.temperature, args.top_p)
    config = DecodeConfig(draft=args.draft, target=args.target, tree=parse_tree(args.tree), dtype=args.dtype)
    draft, target = load_models(config)
    torch.manual_seed(args.seed)  # Hugging Face samples from the global generator
    runs = methods(args, draft, target, sampling)
    totals = {name: [0, 0.0] for name in runs}
    for i, text in enumerate(PROMPTS[: args.prompts]):
        ids = encode_messages(target.tokenizer, [{"role": "user", "content": text}])
        for name, fn in runs.items():
            t0 = time.perf_counter()
            out = fn(ids, f"p{i}")
            secs = time.perf_counter() - t0
            totals[name][0] += len(out)
            totals[name][1] += secs
            print(f"{name:40s} {len(out):4d} tokens {secs:7.2f} s {len(out) / secs:6.2f} tok/s", flush=True)
        print()
    base = totals["target-only sampling"][0] / totals["target-only sampling"][1]
    print(f"T {sampling.temperature}, top-p {sampling.top_p}, tree {args.tree}, dtype {args.dtype}, "
          f"{torch.get_num_threads()} threads, {args.prompts} prompts, max {args.max_new_tokens} new tokens")
    for name, (toks, secs) in totals.items():
        print(f"{name:40s} {toks / secs:6.2f} tok/s  ratio vs target-only {toks / secs / base:5.2f}x")


if __name__ == "__main__":
    main()
