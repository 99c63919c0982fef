"""`specdyn decode`: speculative decoding of one prompt, once or ``--samples K`` times."""

from __future__ import annotations

import json
import sys

from specdyn.commands.common import add_decode_args, config_from_args
from specdyn.engine import GenerationResult
from specdyn.errors import SpecdynError
from specdyn.pipeline import SAMPLE_BATCH, TextDecoder
from specdyn.records import RecordLevel


def add_parser(sub) -> None:
    p = sub.add_parser("decode", help="decode one prompt with tree speculative decoding",
                       description="Decode one prompt with tree speculative decoding and report acceptance. "
                       "At --temperature 0 (the default) the output is the target's greedy decoding; above 0 it is "
                       "an exact sample of the target's temperature/top-p distribution.")
    p.add_argument("prompt", help="the prompt text (a user turn in the target's chat template unless --raw)")
    add_decode_args(p)
    p.add_argument("--samples", type=int, default=1, metavar="K",
                   help=f"decode K independent samples of the prompt with one model load (sample i draws from a stream "
                   f"seeded by --seed and its id sample-i; up to {SAMPLE_BATCH} decoded together; default 1). At "
                   "temperature 0 they are identical (a note says so)")
    p.add_argument("--raw", action="store_true", help="feed the prompt as plain text, without the chat template")
    p.add_argument("--json", action="store_true",
                   help="print JSON Lines: one object per sample (sample, text, prompt_tokens, tokens, steps, accepted, "
                   "mean_accepted_per_step, tokens_per_second, seconds, dtype, drafter, tree, draft_adapter: the "
                   "adapter id or null)")
    p.set_defaults(func=run)


def summary(result: GenerationResult) -> dict:
    """The numbers printed for one sample: steps, mean accepted per step (bonus not counted), speed."""
    steps = len(result.steps)
    return {"steps": steps, "mean_accepted_per_step": sum(result.accepted) / max(1, steps),
            "tokens_per_second": len(result.output_ids) / result.seconds if result.seconds else 0.0,
            "seconds": result.seconds}


def _print_json(index: int, result: GenerationResult, setup: dict) -> None:
    """One JSON line: the sample's text, tokens and numbers, and the decoding ``setup`` (dtype as resolved,
    drafter, tree, draft adapter id)."""
    print(json.dumps({"sample": index, "text": result.text, "prompt_tokens": result.prompt_ids,
                      "tokens": result.output_ids, "accepted": result.accepted, **summary(result), **setup}), flush=True)


def _print_text(index: int, result: GenerationResult, samples: int) -> None:
    label = f"sample {index}: " if samples > 1 else ""
    if samples > 1:
        print(f"--- sample {index} ---")
    print(result.text, flush=True)
    s = summary(result)
    print(f"[{label}{len(result.output_ids)} tokens in {s['steps']} steps; accepted per step (bonus not counted) "
          f"{s['mean_accepted_per_step']:.2f}; {s['tokens_per_second']:.2f} tokens/s]", file=sys.stderr)


def run(args) -> int:
    if not args.prompt.strip():
        raise SpecdynError("empty prompt")
    if args.samples < 1:
        raise SpecdynError(f"--samples must be >= 1 (got {args.samples})")
    config = config_from_args(args)
    if args.samples > 1 and config.sampling.greedy:
        print(f"specdyn: note: temperature 0 is greedy decoding: the {args.samples} samples will be identical "
              "(set --temperature above 0 for independent samples)", file=sys.stderr)
    decoder = TextDecoder(config, records=RecordLevel.STEPS)  # nothing printed needs node statistics
    resolved = decoder.config
    setup = {"dtype": resolved.dtype, "drafter": resolved.drafter.text, "tree": resolved.tree.text,
             "draft_adapter": resolved.draft_adapter.adapter_id if resolved.draft_adapter else None}
    for index, result in enumerate(decoder.generate_samples(args.prompt, args.samples, raw=args.raw)):
        if args.json:
            _print_json(index, result, setup)
        else:
            _print_text(index, result, args.samples)
    return 0
