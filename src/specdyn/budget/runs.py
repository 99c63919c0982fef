"""A run folder's records restricted to finished prompts, and the per-domain measurements budget and
compare report (all pure functions of the records)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from specdyn.errors import SpecdynError
from specdyn.rundir.writer import RunStore
from specdyn.engine.tree import TreeShape, parse_tree_spec


@dataclass
class RunTables:
    """One run: its manifest and its node, step and prompt tables (finished prompts only)."""

    root: Path
    manifest: dict
    nodes: pa.Table
    steps: pa.Table
    prompts: pa.Table

    @property
    def config(self) -> dict:
        return self.manifest.get("config", {})


def load_run(root: str | Path) -> RunTables:
    """Read a run folder; rows of prompts without a ``prompts/`` row (an interrupted flush) are dropped."""
    store = RunStore(Path(root))
    if not store.root.is_dir():
        raise SpecdynError(f"{root} is not a folder")
    manifest = store.read_manifest()
    if not isinstance(manifest, dict):
        raise SpecdynError(f"{root} is not a specdyn run folder (no usable manifest.json)")
    try:
        return _tables(store, manifest)
    except (OSError, pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as exc:
        raise SpecdynError(f"{root}: unreadable records ({str(exc).splitlines()[0]}); `specdyn report` names the bad shard") from None


def _tables(store: RunStore, manifest: dict) -> RunTables:
    root = store.root
    prompts = store.read("prompts")
    if prompts.num_rows == 0:
        raise SpecdynError(f"{root} holds no finished prompts yet")
    done = prompts["prompt_id"]
    nodes, steps = (store.read(t) for t in ("nodes", "steps"))
    nodes = nodes.filter(pc.is_in(nodes["prompt_id"], value_set=done))
    steps = steps.filter(pc.is_in(steps["prompt_id"], value_set=done))
    return RunTables(Path(root), manifest, nodes, steps, prompts)


@dataclass
class DomainStats:
    """What a run measured on one domain.

    ``accepted_per_step``: mean drafted tokens accepted per step, bonus NOT counted (add 1 for the
    bonus-inclusive "tau"). ``local_acceptance``: share of nodes whose token equals the target's argmax
    at the parent position (node-local). ``tokens_per_second``: sum of generated tokens over the sum of
    the prompts' wall seconds (per-prompt throughput; with batching, prompts' times overlap).
    ``seconds_per_step``: sum of the prompts' wall seconds over their steps (one step of a row, engine
    overhead and the prompt's own prefill included).
    """

    prompts: int
    steps: int
    nodes: int
    nodes_per_step: float
    accepted_per_step: float
    local_acceptance: float
    output_tokens: int
    seconds: float
    tokens_per_second: float
    seconds_per_step: float


def _by_domain(table: pa.Table, domain: str) -> pa.Table:
    return table.filter(pc.equal(table["domain"], domain))


def domain_stats(run: RunTables, domain: str) -> DomainStats:
    """Measurements of ``run`` on ``domain`` (see :class:`DomainStats`)."""
    nodes, steps, prompts = (_by_domain(t, domain) for t in (run.nodes, run.steps, run.prompts))
    n_steps = max(steps.num_rows, 1)
    out_tokens = int(sum(len(o) for o in prompts["output_ids"].to_pylist()))
    seconds = float(pc.sum(prompts["seconds"]).as_py() or 0.0)
    local = float(np.mean(nodes["accepted_local"].to_numpy(zero_copy_only=False))) if nodes.num_rows else 0.0
    return DomainStats(
        prompts.num_rows, steps.num_rows, nodes.num_rows, nodes.num_rows / n_steps,
        float(pc.sum(steps["accepted"]).as_py() or 0) / n_steps, local, out_tokens, seconds,
        out_tokens / seconds if seconds > 0 else 0.0, seconds / max(int(pc.sum(prompts["steps"]).as_py() or 0), 1),
    )


def run_domains(run: RunTables) -> list[str]:
    return sorted(set(run.prompts["domain"].to_pylist()))


def per_prompt_throughput(run: RunTables, domain: str) -> dict[str, tuple[int, float]]:
    """prompt_id -> (generated tokens, wall seconds) for the finished prompts of ``domain``."""
    prompts = _by_domain(run.prompts, domain)
    ids, outs, secs = (prompts[c].to_pylist() for c in ("prompt_id", "output_ids", "seconds"))
    return {i: (len(o), float(s)) for i, o, s in zip(ids, outs, secs)}


def run_shape(config: dict) -> TreeShape | None:
    """The static tree shape the run used, or None (dynamic tree, or a paths file that is gone)."""
    try:
        spec = parse_tree_spec(config.get("tree", ""))
    except SpecdynError:
        return None
    return spec if isinstance(spec, TreeShape) else None


def domain_config(config: dict, domain: str) -> dict:
    """The run config as it applied to ``domain``: with ``domain_trees`` set (``specdyn run --domain-trees``),
    ``tree`` is that domain's paths file when the folder has one."""
    from specdyn.budget.output import domain_filename

    folder = config.get("domain_trees") or ""
    file = Path(folder) / domain_filename(domain) if folder else None
    return {**config, "tree": f"paths:{file}"} if file is not None and file.is_file() else dict(config)


def paths_file(config: dict) -> Path | None:
    """The file of a ``paths:FILE`` tree spec, else None."""
    kind, _, rest = str(config.get("tree", "")).partition(":")
    return Path(rest) if kind == "paths" and rest else None
