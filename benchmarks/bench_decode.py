"""Single-stream speed: target-only greedy, Hugging Face assisted generation and specdyn, in one process.

Decodes the first ``--per-domain`` prompts of each domain of the default suite (chat template, batch 1,
``--max-new-tokens`` each) with every method, prompt by prompt (all methods on a prompt before the next,
so a burst of load hits them alike), after one untimed warm-up decode per method:

1. target-only greedy decoding (the reference every other output is compared with);
2. HF assisted generation: transformers' ``generate(assistant_model=draft)``, its defaults, the default draft;
3. HF assisted generation with specdyn's cheaper draft (``--cheap-drafter``'s int8 / truncated-head model);
4. specdyn with the default configuration (``DecodeConfig()``: the default tree and drafter);
5. specdyn fastest: the configuration in ``--fastest`` (``benchmarks/fastest.toml``, DecodeConfig keys).

Every method uses the same target in the same dtype (``--dtype``, default auto). specdyn records nothing
(``RecordLevel.NONE``) here. Prints tokens/s per method, ratios against target-only and against HF
assisted generation, and per prompt whether each output equals target-only's: in float32 they must (the
engine is lossless; the first differing position is shown otherwise); in bfloat16 a batched tree pass
may round a near-tie differently from a one-token pass, so a few may differ there.

    python benchmarks/bench_decode.py [--per-domain 3] [--max-new-tokens 128] [--dtype auto]
        [--fastest benchmarks/fastest.toml] [--cheap-drafter model:quant=int8,vocab=32768] [--only NAME,...]
"""

from __future__ import annotations

import argparse
import platform
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from specdyn.commands.common import config_file_values
from specdyn.config import DecodeConfig, RunConfig, merge
from specdyn.engine import target_greedy
from specdyn.models import cpu_flags
from specdyn.pipeline import build_decoder, encode_messages, load_models, prepare_draft, resolve_models
from specdyn.records import RecordLevel
from specdyn.specs import parse_drafter
from specdyn.study import interleave, load_prompts

FASTEST = Path(__file__).with_name("fastest.toml")
TARGET_ONLY, HF = "target-only greedy", "HF assisted (default draft)"
WIDTH = 96  # method name column


@dataclass
class Tally:
    """One method's totals and per-prompt agreement with target-only."""

    tokens: int = 0
    seconds: float = 0.0
    same: list[bool] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


@torch.inference_mode()
def hf_assisted(model, ids: list[int], max_new: int, eos, assistant) -> list[int]:
    """transformers' assisted generation with its defaults (greedy), stopping at any of ``eos``."""
    inp = torch.tensor([ids], device=model.device)
    out = model.generate(inp, attention_mask=torch.ones_like(inp), max_new_tokens=max_new, do_sample=False,
                         eos_token_id=sorted(eos), pad_token_id=sorted(eos)[0], assistant_model=assistant)
    return out[0, len(ids):].tolist()


def specdyn_method(config: DecodeConfig, draft, target):
    decoder = build_decoder(config, prepare_draft(config.drafter, draft), target, records=RecordLevel.NONE)
    return lambda ids: decoder.generate(ids).output_ids


def methods(base: DecodeConfig, fastest: DecodeConfig, cheap: str, plain, target) -> dict:
    """Method name -> function(prompt ids) -> generated ids."""
    n, eos = base.max_new_tokens, target.eos_token_ids
    cheap_draft = prepare_draft(parse_drafter(cheap), plain)
    return {
        TARGET_ONLY: lambda ids: target_greedy(target.model, ids, n, eos),
        HF: lambda ids: hf_assisted(target.model, ids, n, eos, plain.model),
        f"HF assisted ({cheap})": lambda ids: hf_assisted(target.model, ids, n, eos, cheap_draft.model),
        f"specdyn default ({base.drafter.text}, {base.tree.text})": specdyn_method(base, plain, target),
        f"specdyn fastest ({fastest.drafter.text}, {fastest.tree.text})": specdyn_method(fastest, plain, target),
    }


def first_difference(a: list[int], b: list[int]) -> int | None:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None if len(a) == len(b) else min(len(a), len(b)))


def run_prompt(ids: list[int], runs: dict, tallies: dict[str, Tally]) -> None:
    """Every method on one prompt; prints a line per method."""
    reference = None
    for method, fn in runs.items():
        start = time.perf_counter()
        out = fn(ids)
        seconds = time.perf_counter() - start
        reference = out if reference is None else reference
        diff = first_difference(out, reference)
        tally = tallies[method]
        tally.tokens, tally.seconds = tally.tokens + len(out), tally.seconds + seconds
        tally.same.append(diff is None)
        mark = "same" if diff is None else f"DIFFERS at token {diff}"
        print(f"  {method:{WIDTH}s} {len(out):4d} tok {seconds:7.2f} s {len(out) / seconds:6.2f} tok/s  {mark}", flush=True)


def summary(tallies: dict[str, Tally], config: DecodeConfig, prompts: int) -> None:
    base, hf = tallies[TARGET_ONLY].rate, tallies[HF].rate
    flags = sorted(cpu_flags() & {"avx512_bf16", "amx_bf16", "avx512_vnni", "avx_vnni", "amx_int8"})
    print(f"\n{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, CPU flags {flags}; "
          f"target {config.target} ({config.dtype}); {prompts} prompts x max {config.max_new_tokens} new tokens")
    print(f"{'method':{WIDTH}s} {'tok/s':>7s} {'vs target-only':>15s} {'vs HF assisted':>15s} {'= target-only':>14s}")
    for method, t in tallies.items():
        print(f"{method:{WIDTH}s} {t.rate:7.2f} {t.rate / base:14.2f}x {t.rate / hf:14.2f}x {sum(t.same):>7d}/{len(t.same)}")


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-domain", type=int, default=3, help="default-suite prompts per domain (default 3)")
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--draft", default=DecodeConfig().draft)
    ap.add_argument("--target", default=DecodeConfig().target)
    ap.add_argument("--fastest", default=str(FASTEST), help="TOML of DecodeConfig keys (default benchmarks/fastest.toml)")
    ap.add_argument("--cheap-drafter", default="model:quant=int8,vocab=32768",
                    help="the drafter whose model HF assisted generation also runs with")
    ap.add_argument("--only", help="comma-separated prefixes of method names to keep (target-only and HF assisted always run)")
    return ap.parse_args()


def configs(args) -> tuple[DecodeConfig, DecodeConfig]:
    """The default configuration and the fastest one (its file's keys over the defaults), same pair and dtype."""
    common = {"draft": args.draft, "target": args.target, "dtype": args.dtype, "max_new_tokens": args.max_new_tokens}
    base = resolve_models(DecodeConfig(**common))
    fastest = merge(DecodeConfig(), config_file_values(args.fastest, DecodeConfig), origin=args.fastest)
    return base, resolve_models(replace(fastest, **common))


def main() -> None:
    args = parse_args()
    base, fastest = configs(args)
    plain, target = load_models(base)  # the default drafter: the plain draft model
    runs = methods(base, fastest, args.cheap_drafter, plain, target)
    if args.only:
        keep = tuple(x.strip() for x in args.only.split(","))
        runs = {k: f for k, f in runs.items() if k in (TARGET_ONLY, HF) or k.startswith(keep)}
    suite = interleave(load_prompts(RunConfig(per_domain=args.per_domain)))
    warm = encode_messages(target.tokenizer, [{"role": "user", "content": "Say hello."}])
    for fn in runs.values():  # one-time costs (kernels, caches) out of the timings
        fn(warm[:])
    tallies = {m: Tally() for m in runs}
    for p in suite:
        print(f"{p.id} ({p.domain})", flush=True)
        run_prompt(encode_messages(target.tokenizer, p.messages, p.id), runs, tallies)
    summary(tallies, base, len(suite))


if __name__ == "__main__":
    main()
