"""The command-line boundary shared by the sub-commands: decoding options mapped onto the config
dataclasses (parsed and checked here, once), and output paths."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

from specdyn.config import RUN_ONLY_KEYS, DecodeConfig, merge, read_toml
from specdyn.errors import SpecdynError
from specdyn.pipeline import resolve_models
from specdyn.specs import DRAFTER_HELP, MAX_TREE_NODES, TREE_HELP


def add_decode_args(p: argparse.ArgumentParser, cls=DecodeConfig) -> None:
    """Model, tree and limit options. Defaults come from the config dataclass ``cls`` (shown in --help)."""
    d = cls()
    ignored = "; settings only `run` uses are ignored with a note" if cls is DecodeConfig else ""
    p.add_argument("--config", metavar="FILE.toml", help=f"read settings from a TOML file (flags override it{ignored})")
    p.add_argument("--draft", help=f"draft model: registry name, HF hub id or local folder (a name starting with "
                   f"., / or ~, or existing on disk, is a folder) (default {d.draft})")
    p.add_argument("--target", help=f"target model: registry name, HF hub id or local folder (default {d.target})")
    p.add_argument("--drafter", help=f"how trees are drafted: {DRAFTER_HELP}")
    p.add_argument("--tree", metavar="SPEC", help=f"tree: {TREE_HELP} (default {d.tree.text}; at most {MAX_TREE_NODES} nodes)")
    p.add_argument("--max-new-tokens", type=int, metavar="N", help=f"generated tokens per prompt at most (default {d.max_new_tokens})")
    p.add_argument("--dtype", choices=["auto", "float32", "bfloat16", "float16"],
                   help=f"model dtype (default {d.dtype}: bfloat16 on hardware that runs it natively, i.e. CUDA with "
                   "bf16 or a CPU with AVX512-BF16/AMX, else float32; losslessness is exact in float32)")
    p.add_argument("--device", help="cpu, cuda, cuda:N or auto (default auto: CUDA when present)")


def config_file_values(path: str, cls) -> dict:
    """The TOML file's settings; for `decode`, settings only `run` has are dropped with a note."""
    values = read_toml(path)
    ignored = sorted(k for k in values if k in RUN_ONLY_KEYS) if cls is DecodeConfig else []
    if ignored:
        print(f"specdyn: note: {path}: ignoring run-only setting(s) {', '.join(ignored)}", file=sys.stderr)
    return {k: v for k, v in values.items() if k not in ignored}


def config_from_args(args: argparse.Namespace, cls=DecodeConfig):
    """Defaults, then the TOML file, then the flags: parsed into spec objects and checked, model names
    resolved (local folders as absolute paths). Nothing is loaded."""
    config = merge(cls(), config_file_values(args.config, cls), origin=args.config) if args.config else cls()
    names = {f.name for f in fields(config)}
    config = merge(config, {k: v for k, v in vars(args).items() if k in names})
    return resolve_models(config)


def out_path(value: str | None, default: Path | None) -> Path | None:
    """An ``--out`` value: ``default`` when left out; an empty string is an error for every command."""
    if value is None:
        return default
    if not value.strip():
        raise SpecdynError("--out must not be empty (leave it out for the default)")
    return Path(value)


def print_notes(label: str, run) -> None:
    """What the run-folder reader noticed but accepted (a run still in progress, leftover shards)."""
    for note in run.notes:
        print(f"specdyn: note: {label}: {note}", file=sys.stderr)
