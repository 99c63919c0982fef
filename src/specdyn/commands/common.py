"""The command-line boundary shared by the sub-commands: decoding options mapped onto the config
dataclasses (parsed and checked here, once), and output paths."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from dataclasses import fields, replace
from pathlib import Path

from specdyn.budget.profile import load_profile
from specdyn.config import RUN_ONLY_KEYS, DecodeConfig, merge, read_toml
from specdyn.errors import SpecdynError
from specdyn.execution import IN_PROCESS, RAY_EXTRA, Backend, Execution, parse_gpus
from specdyn.pipeline import resolve_models
from specdyn.prior import Profile
from specdyn.sampling_spec import setting_label
from specdyn.specs import DRAFTER_HELP, MAX_TREE_NODES, TREE_HELP, AdaptiveTree, Children


def add_decode_args(p: argparse.ArgumentParser, cls=DecodeConfig) -> None:
    """Model, tree and limit options. Defaults come from the config dataclass ``cls`` (shown in --help)."""
    d = cls()
    ignored = "; settings only `run` uses are ignored with a note" if cls is DecodeConfig else ""
    p.add_argument("--config", metavar="FILE.toml", help=f"read settings from a TOML file (flags override it{ignored})")
    p.add_argument("--draft", help=f"draft model: registry name, HF hub id or local folder (a name starting with "
                   f"., / or ~, or existing on disk, is a folder) (default {d.draft})")
    p.add_argument("--target", help=f"target model: registry name, HF hub id or local folder (default {d.target})")
    p.add_argument("--drafter", help=f"how trees are drafted: {DRAFTER_HELP}")
    p.add_argument("--draft-adapter", metavar="DIR", help="merge the LoRA adapter that `specdyn distill` wrote to DIR into the "
                   "draft (trained on the same draft weights; the model drafter only); runs record its id")
    p.add_argument("--tree", metavar="SPEC", help=f"tree: {TREE_HELP} (default {d.tree.text}; at most {MAX_TREE_NODES} nodes)")
    p.add_argument("--max-new-tokens", type=int, metavar="N", help=f"generated tokens per prompt at most (default {d.max_new_tokens})")
    p.add_argument("--dtype", choices=["auto", "float32", "bfloat16", "float16"],
                   help=f"model dtype (default {d.dtype}: bfloat16 on hardware that runs it natively, i.e. CUDA with "
                   "bf16 or a CPU with AVX512-BF16/AMX, else float32; losslessness is exact in float32)")
    p.add_argument("--device", help="cpu, cuda, cuda:N or auto (default auto: CUDA when present)")
    p.add_argument("--profile", metavar="RUN_DIR", help="with --tree adaptive: start every request from this run's "
                   "acceptance by depth and rank (all domains pooled) and price trees with its costs.json")
    _add_sampling_args(p, d, DECODE_SEED_HELP if cls is DecodeConfig else RUN_SEED_HELP)


DECODE_SEED_HELP = "sampling seed: with each sample's id it seeds that sample's random draws"
RUN_SEED_HELP = ("the run's seed, one for both: it draws the default suite and, with each prompt's id, seeds that "
                 "prompt's random draws")


def _add_sampling_args(p: argparse.ArgumentParser, d: DecodeConfig, seed_help: str) -> None:
    """--temperature, --top-p, --children and --seed (the :class:`~specdyn.specs.Sampling` family)."""
    p.add_argument("--temperature", type=float, metavar="T", help=f"sampling temperature (default {d.temperature:g}: "
                   "greedy, lossless); above 0 the output is an exact sample of the target's distribution")
    p.add_argument("--top-p", type=float, metavar="P", help=f"keep the most likely tokens holding P of the probability "
                   f"mass, after the temperature (transformers' top-p rule; 0 < P <= 1, default {d.top_p:g} = off)")
    p.add_argument("--children", metavar="HOW", help=f"children of static and paths trees at temperature > 0: "
                   f"{Children.TOPK.text} (the draft's most likely tokens, default) or {Children.SAMPLED.text} (drawn "
                   "from the draft without replacement, Sequoia style; needs a drafter with a distribution)")
    p.add_argument("--seed", type=int, metavar="S", help=f"{seed_help} (default {d.seed})")


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
    return with_profile(resolve_models(config), getattr(args, "profile", None))


def with_profile(config, folder: str | None):
    """``config`` whose adaptive tree starts from the run in ``folder`` (read now, through the run-folder
    reader); an error when ``folder`` is no run or the tree is not adaptive."""
    if folder is None:
        return config
    if not isinstance(config.tree, AdaptiveTree):
        raise SpecdynError(f"--profile informs adaptive trees only (--tree {AdaptiveTree.HELP}); the tree is {config.tree.text}")
    profile = load_profile(folder)
    for note in _profile_notes(profile, config):
        print(f"specdyn: note: --profile {folder} {note}; its acceptance is only a starting point", file=sys.stderr)
    return replace(config, tree=replace(config.tree, profile=profile))


def _profile_notes(profile: Profile, config: DecodeConfig) -> list[str]:
    """How the profile run differs from ``config`` in what acceptance depends on: the models, the sampling setting."""
    notes = []
    if (profile.draft, profile.target) != (config.draft, config.target):
        notes.append(f"was made with other models ({profile.draft} -> {profile.target})")
    setting = setting_label(config.sampling, config.children)
    if profile.sampling != setting:
        notes.append(f"was recorded with another sampling setting ({profile.sampling}; this run: {setting})")
    return notes


def sampling_flags(config: DecodeConfig) -> str:
    """The flags that repeat ``config``'s sampling setting on another command ("" when greedy)."""
    if config.sampling.greedy:
        return ""
    return f" --temperature {config.temperature!r} --top-p {config.top_p!r} --children {config.children.text}"


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


def check_distinct(run_dirs: list[str]) -> None:
    """The same run folder given twice (``A`` and ``./A``) is an error."""
    seen: dict[Path, str] = {}
    for d in run_dirs:
        key = Path(d).resolve()
        if key in seen:
            raise SpecdynError(f"the same run folder is given twice ({seen[key]} and {d})")
        seen[key] = d


def add_execution_args(p: argparse.ArgumentParser) -> None:
    """Where prompts are decoded: in this process, or on Ray workers (docs/ray.md)."""
    p.add_argument("--ray", nargs="?", const="auto", metavar="auto|local|ADDRESS",
                   help="decode on Ray workers: auto (the running cluster: RAY_ADDRESS or `ray start` on this "
                   "machine; the default when no value is given), local (a new Ray instance on this machine) or a "
                   "cluster address HOST:PORT / ray://HOST:PORT (needs specdyn[ray])")
    p.add_argument("--workers", metavar="N", help="Ray workers (actors), each loading the model pair once (default 1)")
    p.add_argument("--threads-per-worker", metavar="T",
                   help="torch threads per worker, and CPUs Ray reserves for it (default 1 on Ray; torch's default "
                   "in this process)")
    p.add_argument("--gpus-per-worker", metavar="G", help="GPUs Ray reserves per worker; fractions share a GPU (default 0)")


def _int_flag(text: str | None, flag: str) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise SpecdynError(f"{flag} must be an integer (got {text!r})") from None


def execution_from_args(args: argparse.Namespace) -> Execution:
    """The executor settings of ``--ray`` and friends, checked (Ray installed, sane numbers) before
    anything else happens."""
    threads = _int_flag(args.threads_per_worker, "--threads-per-worker")
    if args.ray is None:
        for flag, value in (("--workers", args.workers), ("--gpus-per-worker", args.gpus_per_worker)):
            if value is not None:
                raise SpecdynError(f"{flag} needs --ray (without it prompts are decoded in this process)")
        return IN_PROCESS if threads is None else Execution(threads_per_worker=threads)
    if importlib.util.find_spec("ray") is None:
        raise SpecdynError(f"--ray needs Ray, which is not installed: {RAY_EXTRA}")
    workers = _int_flag(args.workers, "--workers")
    gpus = parse_gpus(args.gpus_per_worker) if args.gpus_per_worker is not None else 0.0
    return Execution(Backend.RAY, args.ray, 1 if workers is None else workers, threads, gpus)
