"""Training cost of `specdyn distill` on the real default draft: seconds per step and peak memory, and the
time one domain of the default suite would take at the given settings.

The sequences are the default suite's real prompts (one domain, chat template applied) followed by
``--output-tokens`` tokens of another prompt's text standing in for the target's output (only lengths
matter for cost). Steps run through specdyn's own trainer; the first step (warm-up) is timed apart.
Run each setting in a fresh process: the peak memory is the process's ``ru_maxrss``. On a shared machine
the wall time is inflated by other work; the process CPU time divided by the thread count estimates the
wall time of an idle machine.

    python benchmarks/bench_distill.py [--domain logic] [--steps 5] [--batch-size 4] [--micro-batch 1] [--rank 8]
                                       [--max-length 640] [--dtype float32] [--output-tokens 160] [--token-level kl]
"""

from __future__ import annotations

import argparse
import time

import torch

from specdyn.defaults import DEFAULT_DRAFT, DEFAULT_TARGET
from specdyn.distill.data import Example, split
from specdyn.distill.settings import DistillConfig, TokenLevel
from specdyn.distill.train import build_trainer, peak_memory_mb, train_step
from specdyn.models import load_model
from specdyn.pipeline import encode_messages
from specdyn.suites.default import default_suite


def examples(tokenizer, domain: str, output_tokens: int) -> list[Example]:
    prompts = [p for p in default_suite() if p.domain == domain]
    ids = [encode_messages(tokenizer, p.messages) for p in prompts]
    filler = [t for other in reversed(ids) for t in other]
    return [Example(p.id, tuple(x), tuple(filler[i * 7 : i * 7 + output_tokens])) for i, (p, x) in enumerate(zip(prompts, ids))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--domain", default="logic")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--micro-batch", type=int, default=1)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=640)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--output-tokens", type=int, default=160)
    ap.add_argument("--token-level", choices=["none", "kl", "tvd"], default="none", help="kl/tvd load the default target too")
    ap.add_argument("--planned-steps", type=int, default=0, help="extrapolate the time of this many steps (default: 3 epochs)")
    args = ap.parse_args()
    config = DistillConfig(args.domain, DEFAULT_DRAFT, "", steps=args.steps, rank=args.rank, batch_size=args.batch_size,
                           micro_batch=args.micro_batch, max_length=args.max_length, dtype=args.dtype,
                           token_level=TokenLevel(args.token_level))
    t0 = time.perf_counter()
    draft = load_model(DEFAULT_DRAFT, args.dtype, "cpu")
    data = split(examples(draft.tokenizer, args.domain, args.output_tokens), 0, args.max_length)
    target = None if config.token_level is TokenLevel.NONE else load_model(DEFAULT_TARGET, args.dtype, "cpu").model
    trainer = build_trainer(config, data, draft.model, target)
    print(f"loaded in {time.perf_counter() - t0:.1f} s; {len(data.train)} train prompts, "
          f"mean length {sum(len(e.tokens) for e in data.train) / len(data.train):.0f} tokens", flush=True)
    times, cpu = [], []
    for _ in range(args.steps):
        start, start_cpu = time.perf_counter(), time.process_time()
        point = train_step(trainer)
        trainer.progress.step += 1
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        print(f"step {point.step}: {times[-1]:.1f} s wall, {cpu[-1]:.1f} s CPU, loss {point.loss:.3f}", flush=True)
    per_step = sum(times[1:]) / max(1, len(times) - 1)
    idle = sum(cpu[1:]) / max(1, len(cpu) - 1) / torch.get_num_threads()
    epoch_steps = len(data.train) / args.batch_size
    planned = args.planned_steps or round(3 * epoch_steps)
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    print(f"\n{args.dtype}, token level {args.token_level}, batch {args.batch_size} (micro {args.micro_batch}), rank {args.rank} ({trainable / 1e6:.1f}M trainable), max length "
          f"{args.max_length}, {torch.get_num_threads()} threads: {per_step:.1f} s/step after warm-up (first {times[0]:.1f} s), "
          f"peak RSS {peak_memory_mb(torch.device('cpu')):.0f} MB")
    print(f"CPU time / threads = {idle:.1f} s/step: the wall time of an otherwise idle machine, if the threads scale")
    print(f"one epoch = {epoch_steps:.1f} steps; {planned} steps = {planned * per_step / 60:.1f} min as measured, "
          f"{planned * idle / 60:.1f} min idle")


if __name__ == "__main__":
    main()
