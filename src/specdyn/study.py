"""`specdyn run`: decode a suite, stream every record to a run folder, resume after interruption."""

from __future__ import annotations

import hashlib
import os
import platform
import sys
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch
from tqdm import tqdm

from specdyn.config import RunConfig
from specdyn.engine import PromptInput
from specdyn.errors import SpecdynError
from specdyn.pipeline import build_decoder, check_fits, context_limit, encode_messages, load_models, tree_depth
from specdyn.rundir.writer import RunStore, write_atomic
from specdyn.safetext import visible
from specdyn.suites import Prompt, default_suite, dumps_suite, load_suite
from specdyn.engine.tree import parse_tree_spec


def load_prompts(config: RunConfig) -> list[Prompt]:
    """The configured suite: the default benchmark suite or a suite file (validated)."""
    if config.suite == "default":
        return default_suite(per_domain=config.per_domain, seed=config.seed)
    return load_suite(config.suite)


def interleave(prompts: list[Prompt]) -> list[Prompt]:
    """Round-robin over domains (in first-seen order), so every domain progresses from the start."""
    by_domain: dict[str, list[Prompt]] = defaultdict(list)
    for p in prompts:
        by_domain[p.domain].append(p)
    queues = list(by_domain.values())
    return [q[i] for i in range(max(map(len, queues))) for q in queues if i < len(q)]


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("specdyn", "torch", "transformers", "pyarrow", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _machine() -> dict:
    return {"platform": platform.platform(), "python": sys.version.split()[0], "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "cuda": torch.cuda.is_available()}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run_identity(config: RunConfig, prompts: list[Prompt]) -> dict:
    """What makes two runs the same run: the config, the suite's content, and the content of every tree
    file the config points to (so an edited paths file is not mixed into an old run)."""
    files = [spec.partition(":")[2] for spec, _ in tree_groups(config, prompts) if spec.startswith("paths:")]
    return {
        "config": asdict(config),
        "suite_sha256": hashlib.sha256(dumps_suite(prompts).encode()).hexdigest(),
        "tree_files": {f: hashlib.sha256(Path(f).read_bytes()).hexdigest() for f in sorted(set(files))},
    }


def check_resumable(store: RunStore, identity: dict) -> dict | None:
    """The existing manifest if the folder holds this very run; refuse a folder of another run."""
    old = store.read_manifest()
    if old is None:
        if store.root.exists() and any(not p.name.startswith(".") for p in store.root.iterdir()):
            raise SpecdynError(f"{store.root} is not empty and is not a specdyn run folder; choose another --out")
        return None
    changed = [k for k in identity if old.get(k) != identity[k]]
    if changed:
        keys = sorted(k for k, v in identity["config"].items() if old.get("config", {}).get(k) != v)
        what = ", ".join(keys) if keys else {"suite_sha256": "the suite's prompts"}.get(changed[0], "the tree files")
        raise SpecdynError(f"{store.root} holds a run with a different config ({what} differ); use another --out")
    return old


@dataclass
class LiveStats:
    """Per-domain running totals for the progress bar (node-local acceptance, accepted per step)."""

    nodes: defaultdict
    local: defaultdict
    steps: defaultdict
    accepted: defaultdict

    @classmethod
    def empty(cls) -> "LiveStats":
        return cls(*(defaultdict(int) for _ in range(4)))

    def add(self, domain: str, result) -> None:
        self.nodes[domain] += len(result.nodes)
        self.local[domain] += sum(n.accepted_local for n in result.nodes)
        self.steps[domain] += len(result.steps)
        self.accepted[domain] += sum(result.accepted)

    def line(self) -> str:
        return " ".join(
            f"{visible(d)}: local {self.local[d] / max(1, self.nodes[d]):.2f} acc/step {self.accepted[d] / max(1, self.steps[d]):.2f}"
            for d in sorted(self.nodes)
        )


def run_study(config: RunConfig, out: str | Path, quiet: bool = False) -> Path:
    """Decode every unfinished prompt of the suite into the run folder ``out``; return its path.

    Nothing is written until the suite, the folder, the models and every prompt have been checked."""
    prompts = load_prompts(config)
    identity = run_identity(config, prompts)
    store = RunStore(Path(out))
    store.check_writable()
    old = check_resumable(store, identity)
    draft, target = load_models(config)
    models = {role: {"name": m.name, "weights_id": m.weights_id}
              for role, m in (("draft", draft), ("target", target)) if m is not None}
    if old and old.get("models") != models:
        raise SpecdynError(f"{store.root} was made with other model weights; use another --out")
    inputs = encode_suite(config, prompts, draft, target)
    with store.lock():
        manifest = old or {**identity, "models": models, "started": _now(), "machine": _machine(), "versions": _versions()}
        store.write_manifest({**manifest, "status": "running", "finished": None})
        finished = store.open()
        write_atomic(store.root / "suite.jsonl", lambda p: p.write_text(dumps_suite(prompts)))
        _decode_all(config, store, _todo(config, prompts, inputs, finished), _meta(prompts), draft, target,
                    (len(finished), len(prompts)), quiet)
        counts = {t: store.read(t).num_rows for t in ("prompts", "steps", "nodes")}
        store.write_manifest({**manifest, "status": "complete", "finished": _now(), "counts": counts})
    return store.root


def _todo(config, prompts, inputs, finished) -> list[tuple[str, list[PromptInput]]]:
    """(tree spec, unfinished prompt inputs) groups, in decoding order."""
    return [(tree, [inputs[p.id] for p in group if p.id not in finished]) for tree, group in tree_groups(config, prompts)]


def _meta(prompts: list[Prompt]) -> dict[str, dict]:
    return {p.id: {"domain": p.domain, "source": p.source} for p in prompts}


def encode_suite(config: RunConfig, prompts: list[Prompt], draft, target) -> dict[str, PromptInput]:
    """Token ids of every prompt (target chat template), each checked against the context length."""
    context = context_limit(draft, target)
    depth = max(tree_depth(spec) for spec, _ in tree_groups(config, prompts))
    inputs = {}
    for p in prompts:
        ids = encode_messages(target.tokenizer, p.messages)
        check_fits(ids, config.max_new_tokens, context, p.id, tree_depth=depth)
        inputs[p.id] = PromptInput(p.id, ids)
    return inputs


def tree_groups(config: RunConfig, prompts: list[Prompt]) -> list[tuple[str, list[Prompt]]]:
    """(tree spec, prompts) groups: one group with ``config.tree`` unless per-domain trees are configured,
    then one group per domain, each with its own paths file when the folder has one."""
    if not config.domain_trees:
        return [(config.tree, interleave(prompts))]
    from specdyn.budget.output import domain_filename

    folder = Path(config.domain_trees)
    if not folder.is_dir():
        raise SpecdynError(f"--domain-trees {folder}: no such folder")
    groups: dict[str, list[Prompt]] = defaultdict(list)
    for p in prompts:
        groups[p.domain].append(p)
    out = []
    for domain, group in groups.items():
        path = folder / domain_filename(domain)
        spec = f"paths:{path}" if path.is_file() else config.tree
        parse_tree_spec(spec)
        out.append((spec, group))
    return out


def _decode_all(config, store, groups, meta, draft, target, progress, quiet) -> None:
    tok = target.tokenizer
    live = LiveStats.empty()
    done, total = progress
    bar = tqdm(total=total, initial=done, unit="prompt", disable=quiet, dynamic_ncols=True, file=sys.stderr)
    for tree, todo in groups:
        decoder = build_decoder(replace(config, tree=tree), draft, target)
        for result in decoder.generate_many(todo, batch_size=config.batch_size):
            result.text = tok.decode(result.output_ids, skip_special_tokens=True)
            store.append([(result, meta[result.prompt_id])])
            live.add(meta[result.prompt_id]["domain"], result)
            bar.set_postfix_str(live.line(), refresh=False)
            bar.update(1)
    bar.close()
