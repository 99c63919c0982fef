"""`specdyn run`: decode a suite, stream every record to a run folder, resume after interruption."""

from __future__ import annotations

import hashlib
import os
import platform
import sys
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch
from tqdm import tqdm

from specdyn.config import RunConfig
from specdyn.engine import PromptInput
from specdyn.errors import SpecdynError
from specdyn.execution import IN_PROCESS, Execution, Session
from specdyn.executors import open_executor
from specdyn.executors.worker import Executor, Work
from specdyn.pipeline import resolve_models
from specdyn.rundir.manifest import ModelRecord, RunManifest, RunStatus
from specdyn.rundir.writer import FinishedPrompt, RunWriter
from specdyn.safetext import visible
from specdyn.specs import TreeSpec
from specdyn.suites import Prompt, default_suite, dumps_suite, load_suite


def load_prompts(config: RunConfig) -> list[Prompt]:
    """The configured suite: the default benchmark suite or a suite file (validated)."""
    if config.suite == "default":
        return default_suite(per_domain=config.per_domain, seed=config.seed)
    return load_suite(config.suite)


def by_domain(prompts: list[Prompt]) -> dict[str, list[Prompt]]:
    """The prompts of each domain, domains in first-seen order."""
    groups: dict[str, list[Prompt]] = defaultdict(list)
    for p in prompts:
        groups[p.domain].append(p)
    return groups


def interleave(prompts: list[Prompt]) -> list[Prompt]:
    """Round-robin over domains (in first-seen order), so every domain progresses from the start."""
    queues = list(by_domain(prompts).values())
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


def new_manifest(config: RunConfig, prompts: list[Prompt]) -> RunManifest:
    """A manifest for this run before anything is decoded. Its :meth:`~RunManifest.identity` (settings,
    resolved trees, the suite's content) is what makes two runs the same run."""
    return RunManifest(RunStatus.RUNNING, config, hashlib.sha256(dumps_suite(prompts).encode()).hexdigest(),
                       started=_now(), machine=_machine(), versions=_versions())


def check_resumable(writer: RunWriter, manifest: RunManifest) -> RunManifest | None:
    """The existing manifest if the folder holds this very run, else None for a new folder. A folder with
    finished prompts of another run is refused; one whose manifest is of another config (or unreadable) but
    that has no finished prompt is a failed start and is replaced, so it never blocks the corrected
    command; a non-empty folder that is no run folder is refused."""
    if writer.has_finished_prompts():
        return _same_run(writer, manifest)
    try:
        old = writer.read_manifest()
    except SpecdynError as exc:
        old = exc
    if isinstance(old, RunManifest) and old.identity() == manifest.identity():
        return old
    if old is not None:
        print(f"specdyn: note: {writer.root} holds an unfinished run of another config (or an unreadable "
              "manifest) with no finished prompt; starting over", file=sys.stderr)
    elif writer.root.exists() and any(not p.name.startswith(".") for p in writer.root.iterdir()):
        raise SpecdynError(f"{writer.root} is not empty and is not a specdyn run folder; choose another --out")
    return None


def _same_run(writer: RunWriter, manifest: RunManifest) -> RunManifest:
    old = writer.read_manifest()
    if old is None:
        raise SpecdynError(f"{writer.root} holds records but no manifest.json: not a specdyn run folder; "
                           "choose another --out")
    if old.identity() != manifest.identity():
        raise SpecdynError(f"{writer.root} holds a run with a different config ({_difference(old, manifest)} "
                           "differ); use another --out")
    return old


def _difference(old: RunManifest, new: RunManifest) -> str:
    a, b = old.identity(), new.identity()
    keys = sorted(k for k, v in (b["config"] or {}).items() if (a["config"] or {}).get(k) != v)
    if keys:
        return ", ".join(keys)
    if a["draft_adapter"] != b["draft_adapter"]:
        return "the draft adapter's contents (adapter id)"
    if a["trees"] == b["trees"]:
        return "the suite's prompts"
    profiles = [(t or {}).get("tree", {}).get("profile") for t in (a["trees"], b["trees"])]
    return "the adaptive trees' profiles" if profiles[0] != profiles[1] else "the tree files' contents"


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


@dataclass
class TreeGroup:
    """Prompts decoded with one tree (one group per domain with ``--domain-trees``), in decoding order."""

    tree: TreeSpec
    prompts: list[Prompt]


def tree_groups(config: RunConfig, prompts: list[Prompt]) -> list[TreeGroup]:
    """One group with ``config.tree`` unless per-domain trees are configured, then one group per domain
    (in first-seen order), each with the tree :meth:`RunConfig.tree_for` gives it."""
    if config.domain_trees is None:
        return [TreeGroup(config.tree, interleave(prompts))]
    return [TreeGroup(config.tree_for(d), group) for d, group in by_domain(prompts).items()]


@dataclass
class Plan:
    """What a run decodes: the suite in file order, its tree groups, every prompt's token ids."""

    prompts: list[Prompt]
    groups: list[TreeGroup]
    inputs: dict[str, PromptInput]

    def work(self, finished: set[str]) -> list[Work]:
        """The unfinished prompts of each group, in decoding order (group i decodes with tree i)."""
        return [Work(i, [self.inputs[p.id] for p in g.prompts if p.id not in finished])
                for i, g in enumerate(self.groups)]


def run_study(config: RunConfig, out: str | Path, quiet: bool = False, execution: Execution = IN_PROCESS) -> Path:
    """Decode every unfinished prompt of the suite into the run folder ``out``; return its path.
    ``execution``: in this process (default) or on Ray workers; this process is the folder's only writer.

    Nothing is written until the suite, the folder, the models' limits, the models and every prompt have
    been checked and the decoders built."""
    config = resolve_models(config)
    prompts = load_prompts(config)
    groups = tree_groups(config, prompts)
    writer = RunWriter(Path(out))
    writer.check_writable()
    fresh = new_manifest(config, prompts)
    manifest = check_resumable(writer, fresh) or fresh
    with open_executor(execution, config, [g.tree for g in groups]) as executor:
        manifest = _with_models(writer, manifest, executor.info.models)
        plan = Plan(prompts, groups, executor.encode(prompts))
        with writer.lock():
            session = Session.of(execution, executor.info.threads, _now())
            manifest = replace(manifest, sessions=[*manifest.sessions, session])
            _record(writer, manifest, executor, plan, quiet)
            writer.write_manifest(replace(manifest, status=RunStatus.COMPLETE, finished=_now(), counts=writer.counts()))
    return writer.root


def _record(writer: RunWriter, manifest: RunManifest, executor: Executor, plan: Plan, quiet: bool) -> None:
    """In the locked folder: mark the run running, drop unfinished shards, then write every unfinished
    prompt's records as the executor yields them; the session (the manifest's last) counts them."""
    writer.write_manifest(replace(manifest, status=RunStatus.RUNNING, finished=None))
    finished = writer.open()
    writer.write_suite(dumps_suite(plan.prompts))
    results = executor.decode(plan.work(finished))
    written = _decode_all(writer, results, _meta(plan.prompts), (len(finished), len(plan.prompts)), quiet)
    manifest.sessions[-1].record(written, executor.stats)


def _with_models(writer: RunWriter, manifest: RunManifest, models: dict[str, ModelRecord]) -> RunManifest:
    """``manifest`` naming the loaded weights; a resumed run must have been made with the same ones."""
    if manifest.models and manifest.models != models:
        raise SpecdynError(f"{writer.root} was made with other model weights; use another --out")
    return replace(manifest, models=models)


def _meta(prompts: list[Prompt]) -> dict[str, Prompt]:
    return {p.id: p for p in prompts}


def _decode_all(writer: RunWriter, results, meta: dict[str, Prompt], progress, quiet) -> int:
    """Write every result as it comes (one shard per prompt) under one progress bar; return the count."""
    live = LiveStats.empty()
    done, total = progress
    bar = tqdm(total=total, initial=done, unit="prompt", disable=quiet, dynamic_ncols=True, file=sys.stderr)
    written = 0
    for result in results:
        prompt = meta[result.prompt_id]
        writer.append([FinishedPrompt(result, prompt.domain, prompt.source)])
        live.add(prompt.domain, result)
        bar.set_postfix_str(live.line(), refresh=False)
        bar.update(1)
        written += 1
    bar.close()
    return written
