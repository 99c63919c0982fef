"""`specdyn decode`: speculative decoding of one prompt."""

from __future__ import annotations

import json
import sys

from specdyn.commands.common import add_decode_args, config_from_args
from specdyn.errors import SpecdynError
from specdyn.pipeline import TextDecoder
from specdyn.records import RecordLevel


def add_parser(sub) -> None:
    p = sub.add_parser("decode", help="decode one prompt with tree speculative decoding",
                       description="Decode one prompt with tree speculative decoding and report acceptance.")
    p.add_argument("prompt", help="the prompt text (a user turn in the target's chat template unless --raw)")
    add_decode_args(p)
    p.add_argument("--raw", action="store_true", help="feed the prompt as plain text, without the chat template")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object (text, prompt_tokens, tokens, steps, accepted, dtype, drafter, ...)")
    p.set_defaults(func=run)


def run(args) -> int:
    if not args.prompt.strip():
        raise SpecdynError("empty prompt")
    config = config_from_args(args)
    decoder = TextDecoder(config, records=RecordLevel.STEPS)  # nothing printed needs node statistics
    result = decoder.generate(args.prompt, raw=args.raw)
    text, ids = result.text, result.prompt_ids
    emitted = len(result.output_ids)
    summary = {
        "steps": len(result.steps),
        "mean_accepted_per_step": sum(result.accepted) / max(1, len(result.steps)),
        "tokens_per_second": emitted / result.seconds if result.seconds else 0.0,
        "seconds": result.seconds,
        "dtype": decoder.config.dtype,
        "drafter": decoder.config.drafter.text,
        "tree": decoder.config.tree.text,
    }
    if args.json:
        print(json.dumps({"text": text, "prompt_tokens": ids, "tokens": result.output_ids,
                          "accepted": result.accepted, **summary}))
    else:
        print(text)
        print(f"[{emitted} tokens in {summary['steps']} steps; accepted per step (bonus not counted) "
              f"{summary['mean_accepted_per_step']:.2f}; {summary['tokens_per_second']:.2f} tokens/s]", file=sys.stderr)
    return 0
