"""Arguments shared by the decoding sub-commands, and their mapping onto the config dataclasses."""

from __future__ import annotations

import argparse

from specdyn.config import DecodeConfig, load_toml, merge, validate
from specdyn.pipeline import DRAFTER_HELP, parse_drafter
from specdyn.engine.tree import parse_tree_spec


def add_decode_args(p: argparse.ArgumentParser, cls=DecodeConfig) -> None:
    """Model, tree and limit options. Defaults come from the config dataclass ``cls`` (shown in --help)."""
    d = cls()
    p.add_argument("--config", metavar="FILE.toml", help="read settings from a TOML file (flags override it)")
    p.add_argument("--draft", help=f"draft model: registry name, HF hub id or local folder (default {d.draft})")
    p.add_argument("--target", help=f"target model: registry name, HF hub id or local folder (default {d.target})")
    p.add_argument("--drafter", help=f"how trees are drafted: {DRAFTER_HELP}")
    p.add_argument("--tree", metavar="SPEC",
                   help=f"tree: static:depth=D,branch=B | paths:FILE | dynamic:nodes=N,depth=D,topk=K (default {d.tree})")
    p.add_argument("--max-new-tokens", type=int, metavar="N", help=f"generated tokens per prompt at most (default {d.max_new_tokens})")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], help=f"model dtype (default {d.dtype}; losslessness is exact in float32)")
    p.add_argument("--device", help="cpu, cuda, cuda:N or auto (default auto: CUDA when present)")


def config_from_args(args: argparse.Namespace, cls=DecodeConfig):
    """Defaults, then the TOML file, then the flags; validated, tree spec included."""
    config = load_toml(args.config, cls) if args.config else cls()
    names = {f for f in vars(config)}
    config = merge(config, {k: v for k, v in vars(args).items() if k in names})
    validate(config)
    parse_tree_spec(config.tree)
    parse_drafter(config.drafter)
    return config
