"""Speculative nodes/s and tokens/s of specdyn's engine, unbatched vs batched, in one process.

Decodes the same prompts (drawn from the default suite, all four domains) once per batch size and
checks that every batch size produced the same tokens.

    python benchmarks/bench_batch.py [--prompts N] [--batch-sizes 1,2,4,8] [--max-new-tokens N] [--dtype D]
"""

from __future__ import annotations

import argparse
import time

import torch

from specdyn.config import RunConfig
from specdyn.engine import PromptInput
from specdyn.pipeline import build_decoder, encode_messages, load_models
from specdyn.study import interleave, load_prompts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--batch-sizes", default="1,2,4,8")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--tree", default=RunConfig().tree)
    args = ap.parse_args()
    config = RunConfig(max_new_tokens=args.max_new_tokens, dtype=args.dtype, tree=args.tree)
    draft, target = load_models(config)
    suite = interleave(load_prompts(config))[: args.prompts]
    inputs = [PromptInput(p.id, encode_messages(target.tokenizer, p.messages)) for p in suite]
    rows, outputs = [], {}
    for b in [int(x) for x in args.batch_sizes.split(",")]:
        decoder = build_decoder(config, draft, target)
        t0 = time.perf_counter()
        results = list(decoder.generate_many(inputs, batch_size=b))
        secs = time.perf_counter() - t0
        outputs[b] = {r.prompt_id: r.output_ids for r in results}
        nodes, toks = sum(len(r.nodes) for r in results), sum(len(r.output_ids) for r in results)
        rows.append((b, nodes, toks, secs))
        print(f"batch {b}: {nodes} nodes, {toks} tokens, {secs:.1f} s, {nodes / secs:.1f} nodes/s, {toks / secs:.2f} tok/s", flush=True)
    base = rows[0]
    print(f"\ndtype {config.dtype}, {torch.get_num_threads()} threads, {len(inputs)} prompts, tree {config.tree}")
    for b, nodes, toks, secs in rows:
        same = sum(outputs[b][k] == outputs[base[0]][k] for k in outputs[b])
        print(f"batch {b}: nodes/s x{nodes / secs / (base[1] / base[3]):.2f}, tokens/s x{toks / secs / (base[2] / base[3]):.2f} "
              f"vs batch {base[0]}; identical outputs {same}/{len(inputs)}")


if __name__ == "__main__":
    main()
