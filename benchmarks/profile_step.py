"""Where one batched step of `specdyn run` spends its time: draft passes, drafting bookkeeping, the target
pass, acceptance, cache commits, record statistics, the rest of the Python step, and writing records.

Builds the decoder exactly as `specdyn run` does (RunConfig defaults unless overridden, full records),
starts ``--batch-size`` default-suite prompts (one per domain in turn), runs ``--warmup`` steps, then times
``--steps`` steps phase by phase, and times writing one prompt's records through the run-folder writer (I/O,
spread over ``--steps-per-prompt`` steps, as a run writes a shard per finished prompt). Prints milliseconds
per step and shares. ``--torch-profile`` adds torch.profiler's operator table for one step.

    python benchmarks/profile_step.py [--steps 5] [--batch-size 4] [--dtype auto] [--drafter SPEC] [--tree SPEC]
        [--records full|steps|none] [--max-new-tokens N] [--torch-profile] [--tiny]

Shares are meaningful on a busy machine (every phase is slowed alike); absolute times are not.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

from specdyn.config import RunConfig
from specdyn.engine import PromptInput
from specdyn.pipeline import build_decoder, encode_messages, load_models, resolve_models
from specdyn.records import RecordLevel
from specdyn.rundir.writer import FinishedPrompt, RunWriter
from specdyn.study import interleave, load_prompts

PHASES = ("draft passes", "drafting (python)", "target pass", "acceptance", "cache commits", "record statistics",
          "rest of the step", "writing records")


class PhaseTimer:
    """Accumulates wall seconds of wrapped methods by phase name."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)

    def wrap(self, obj, method: str, phase: str) -> None:
        inner = getattr(obj, method)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.seconds[phase] += time.perf_counter() - start

        setattr(obj, method, timed)


def instrument(decoder) -> PhaseTimer:
    """Wrap the decoder's parts; "drafting (python)" is filled in by :func:`breakdown`."""
    timer = PhaseTimer()
    timer.wrap(decoder.proposer, "propose", "proposing")
    draft_lm = getattr(decoder.proposer, "lm", None) or getattr(getattr(decoder.proposer, "model", None), "lm", None)
    if draft_lm is not None:
        timer.wrap(draft_lm, "forward", "draft passes")
    timer.wrap(decoder.target.lm, "forward", "target pass")
    timer.wrap(decoder.target, "commit", "cache commits")
    timer.wrap(decoder.proposer, "commit", "cache commits")
    timer.wrap(decoder.recorder, "record", "record statistics")
    timer.wrap(decoder, "step", "step")
    decoder.verifier = _Timed(decoder.verifier, timer)
    return timer


class _Timed:
    """A verifier whose calls are timed as "acceptance"."""

    def __init__(self, verifier, timer: PhaseTimer):
        self.inner, self.timer = verifier, timer

    def verify(self, *args):
        start = time.perf_counter()
        out = self.inner.verify(*args)
        self.timer.seconds["acceptance"] += time.perf_counter() - start
        return out


def breakdown(seconds: dict[str, float]) -> dict[str, float]:
    """Exclusive seconds per phase of :data:`PHASES`."""
    out = {p: seconds.get(p, 0.0) for p in PHASES}
    out["drafting (python)"] = seconds["proposing"] - out["draft passes"]
    inner = sum(out[p] for p in PHASES if p not in ("rest of the step", "writing records"))
    out["rest of the step"] = seconds["step"] - inner
    return out


def load(args):
    """(config, draft, target) for a real or tiny pair."""
    if args.tiny:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from tiny import save_tiny_pair

        pair = save_tiny_pair(tempfile.mkdtemp())
        args.draft, args.target = pair["draft"], pair["target"]
    keys = ("draft", "target", "drafter", "tree", "dtype", "batch_size", "max_new_tokens")
    config = resolve_models(RunConfig(**{k: getattr(args, k) for k in keys if getattr(args, k) is not None}))
    return config, *load_models(config)


def prompts(config: RunConfig, target, n: int) -> list[PromptInput]:
    suite = interleave(load_prompts(RunConfig(per_domain=max(1, n))))[:n]
    return [PromptInput(p.id, encode_messages(target.tokenizer, p.messages)) for p in suite]


def write_seconds(row) -> float:
    """Seconds to write one prompt's records as a shard through the run-folder writer (a run writes one
    shard per finished prompt)."""
    with tempfile.TemporaryDirectory() as tmp:
        writer = RunWriter(Path(tmp) / "run")
        writer.open()
        start = time.perf_counter()
        writer.append([FinishedPrompt(row.result, "profile", "profile")])
        return time.perf_counter() - start


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for flag in ("--draft", "--target", "--drafter", "--tree", "--dtype"):
        ap.add_argument(flag)
    ap.add_argument("--batch-size", type=int)
    ap.add_argument("--max-new-tokens", type=int)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--steps-per-prompt", type=float, default=36.0,
                    help="steps a prompt takes, to spread its shard write over (the default study: 7,261 / 200)")
    ap.add_argument("--records", choices=[r.value for r in RecordLevel], default="full")
    ap.add_argument("--torch-profile", action="store_true")
    ap.add_argument("--tiny", action="store_true", help="tiny random models (tests/tiny.py) instead of the real pair")
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    config, draft, target = load(args)
    decoder = build_decoder(config, draft, target, records=RecordLevel(args.records))
    rows = decoder._start(prompts(config, target, config.batch_size))
    for _ in range(args.warmup):
        decoder.step(rows)
    timer = instrument(decoder)
    for _ in range(args.steps):
        decoder.step(rows)
    phases = breakdown(timer.seconds)
    # a batched step advances `batch` prompts by one step each; a prompt is written once, after ~steps_per_prompt steps
    phases["writing records"] = write_seconds(rows[0]) * len(rows) / args.steps_per_prompt * args.steps
    report(config, args, phases)
    if args.torch_profile:
        torch_table(decoder, rows)


def report(config, args, phases: dict[str, float]) -> None:
    total = sum(phases.values())
    print(f"{config.target} <- {config.draft if config.drafter.uses_draft_model else '(no draft model)'}; drafter "
          f"{config.drafter.text}, tree {config.tree.text}, {config.dtype}, batch {config.batch_size}, records "
          f"{args.records}, {torch.get_num_threads()} threads; {args.steps} steps")
    for name in PHASES:
        print(f"{name:20s} {phases[name] / args.steps * 1e3:9.1f} ms/step  {phases[name] / total:6.1%}")
    print(f"{'total':20s} {total / args.steps * 1e3:9.1f} ms/step")


def torch_table(decoder, rows) -> None:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        decoder.step(rows)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


if __name__ == "__main__":
    main()
