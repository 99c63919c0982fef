"""`specdyn suite`: export the default prompt suite, summarise any suite file, or write a subset of one."""

from __future__ import annotations

import argparse
import sys

from specdyn.adapter_spec import training_prompt_ids
from specdyn.safetext import visible
from specdyn.suites import default_suite, dumps_suite, load_suite, summarize, write_suite
from specdyn.suites.filter import filter_suite
from specdyn.suites.prompts import check_suite_path
from specdyn.suites.summary import chat_token_counter, format_table


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("suite", help="export, inspect or filter prompt suites (JSONL)")
    sub = parser.add_subparsers(dest="suite_command", required=True, metavar="ACTION")
    export = sub.add_parser("export", help="write the default suite (code, math, logic, chat)")
    export.add_argument("--out", metavar="FILE", help="output JSONL file (default: standard output)")
    export.add_argument("--per-domain", type=int, default=50, metavar="N", help="prompts per domain (default 50)")
    export.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the draw (default 0)")
    export.add_argument("--exclude", metavar="FILE", help="draw only among prompts whose id is not in this suite file "
                        "(draws of different seeds overlap otherwise: this makes a held-out suite)")
    show = sub.add_parser("show", help="validate a suite file and summarise it per domain")
    show.add_argument("file", metavar="FILE", help="suite JSONL file")
    show.add_argument(
        "--tokenizer", metavar="NAME_OR_PATH",
        help="count chat-templated tokens with this Hugging Face tokenizer (local folder or hub id)",
    )  # fmt: skip
    filt = sub.add_parser(
        "filter", help="write a subset of a suite: some domains, or the prompts distilled drafts were not trained on",
        description="Write the prompts of FILE that pass every filter to --out, in suite order, and print per-domain "
        "counts. --exclude-trained drops every prompt that shares its source item with a training prompt of the "
        "adapter (the same id; for default-suite math, the same GSM-Symbolic generator drawn with another seed).")
    filt.add_argument("file", metavar="FILE", help="suite JSONL file")
    filt.add_argument("--out", required=True, metavar="FILE", help="output JSONL file")
    filt.add_argument("--domain", action="append", metavar="D", help="keep only domain D (repeat for several)")
    filt.add_argument("--exclude-trained", action="append", default=[], metavar="ADAPTER_DIR",
                      help="drop the prompts a `specdyn distill` adapter was trained on (repeat for several adapters)")
    parser.set_defaults(func=run)


def _export(args: argparse.Namespace) -> int:
    to_stdout = args.out is None or args.out == "-"
    if not to_stdout:
        check_suite_path(args.out)  # before the (possibly downloading) suite is built
    excluded = frozenset(p.id for p in load_suite(args.exclude)) if args.exclude else frozenset()
    prompts = default_suite(per_domain=args.per_domain, seed=args.seed, exclude=excluded)
    if to_stdout:
        sys.stdout.write(dumps_suite(prompts))
        return 0
    write_suite(prompts, args.out)
    domains = len({p.domain for p in prompts})
    print(f"wrote {len(prompts)} prompts ({domains} domains, seed {args.seed}) to {args.out}", file=sys.stderr)
    return 0


def _show(args: argparse.Namespace) -> int:
    prompts = load_suite(args.file)
    counter = chat_token_counter(args.tokenizer) if args.tokenizer else None
    print(f"{visible(args.file)}: {len(prompts)} prompts")
    print(format_table(summarize(prompts, counter)))
    return 0


def _filter(args: argparse.Namespace) -> int:
    check_suite_path(args.out)
    trained = {i for folder in args.exclude_trained for i in training_prompt_ids(folder)}
    result = filter_suite(load_suite(args.file), args.domain, trained)
    write_suite(result.prompts, args.out)
    for c in result.counts:
        print(f"{visible(c.domain)}: {c.kept} of {c.total} kept ({c.trained} trained on)", file=sys.stderr)
    print(f"wrote {len(result.prompts)} prompts to {args.out}", file=sys.stderr)
    return 0


def run(args: argparse.Namespace) -> int:
    return {"export": _export, "show": _show, "filter": _filter}[args.suite_command](args)
