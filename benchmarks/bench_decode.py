"""Tokens/s of target-only greedy, Hugging Face assisted generation and specdyn's tree decoding.

All three run in one process on the same prompts, so the ratios are meaningful on a noisy machine.

    python benchmarks/bench_decode.py [--draft NAME] [--target NAME] [--tree SPEC] [--dtype D] [--max-new-tokens N]
"""

from __future__ import annotations

import argparse
import time

import torch

from specdyn.config import DecodeConfig
from specdyn.engine import target_greedy
from specdyn.pipeline import build_decoder, encode_messages, load_models

PROMPTS = [
    "Write a Python function that returns the n-th Fibonacci number.",
    "Explain in two sentences why the sky is blue.",
    "A train travels 120 km in 1.5 hours. What is its average speed? Answer step by step.",
]


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


@torch.inference_mode()
def hf_generate(model, ids, max_new, eos, assistant=None):
    inp = torch.tensor([ids])
    out = model.generate(inp, attention_mask=torch.ones_like(inp), max_new_tokens=max_new, do_sample=False,
                         eos_token_id=sorted(eos), pad_token_id=sorted(eos)[0], assistant_model=assistant)
    return out[0, len(ids):].tolist()


def main() -> None:
    d = DecodeConfig()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--draft", default=d.draft)
    ap.add_argument("--target", default=d.target)
    ap.add_argument("--tree", default=d.tree)
    ap.add_argument("--dtype", default=d.dtype)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    args = ap.parse_args()
    config = DecodeConfig(draft=args.draft, target=args.target, tree=args.tree, dtype=args.dtype,
                          max_new_tokens=args.max_new_tokens)
    draft, target = load_models(config)
    eos, n = target.eos_token_ids, args.max_new_tokens
    decoder = build_decoder(config, draft, target)
    methods = {
        "target-only greedy": lambda ids: target_greedy(target.model, ids, n, eos),
        "HF assisted generation": lambda ids: hf_generate(target.model, ids, n, eos, assistant=draft.model),
        f"specdyn tree ({config.tree})": lambda ids: decoder.generate(ids).output_ids,
    }
    totals = {name: [0, 0.0] for name in methods}
    for text in PROMPTS:
        ids = encode_messages(target.tokenizer, [{"role": "user", "content": text}])
        outputs = {}
        for name, fn in methods.items():
            out, secs = timed(lambda: fn(ids))
            outputs[name] = out
            totals[name][0] += len(out)
            totals[name][1] += secs
            print(f"{name:36s} {len(out):4d} tokens {secs:7.2f} s {len(out) / secs:6.2f} tok/s", flush=True)
        same = len({tuple(o) for o in outputs.values()}) == 1
        print(f"  outputs identical across methods: {same}\n", flush=True)
    base = totals["target-only greedy"][0] / totals["target-only greedy"][1]
    print(f"dtype {config.dtype}, {torch.get_num_threads()} threads, {len(PROMPTS)} prompts, max {n} new tokens")
    for name, (toks, secs) in totals.items():
        print(f"{name:36s} {toks / secs:6.2f} tok/s  ratio vs target-only {toks / secs / base:5.2f}x")


if __name__ == "__main__":
    main()
