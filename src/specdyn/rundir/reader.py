"""Read a run folder into aligned numpy arrays, keeping only finished prompts, with clear errors.

A run folder holds ``manifest.json`` and ``nodes/``, ``steps/``, ``prompts/`` shards named
``shard-NNNNNN.parquet``. A prompt is finished iff it has a row in ``prompts/``; only shard numbers
present in ``prompts/`` are read (a nodes/steps shard without one is left over from an interrupted flush),
and node/step rows are kept only for finished prompts.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from specdyn.errors import SpecdynError

SHARD_NAME = re.compile(r"^shard-(\d+)\.parquet$")
NODE_COLUMNS = ("prompt_id", "step", "node", "parent", "depth", "rank", "draft_entropy",
                "target_entropy", "accept_prob", "accepted_local", "accepted_path")
STEP_COLUMNS = ("prompt_id", "step", "tree_size", "accepted")
PROMPT_COLUMNS = ("prompt_id", "domain")
PROMPT_OPTIONAL = ("text", "source")


class RunStatus(Enum):
    """The run's ``manifest.json`` status."""

    COMPLETE = "complete"
    RUNNING = "running"
    UNKNOWN = "unknown"


@dataclass
class Prompts:
    """Finished prompts, one entry per prompt; ``domain`` holds indices into ``RunData.domains``."""

    ids: list[str]
    domain: np.ndarray
    text: list[str]
    source: list[str]


@dataclass
class Nodes:
    """Node records as columns; ``prompt`` indexes ``RunData.prompts``."""

    prompt: np.ndarray
    step: np.ndarray
    node: np.ndarray
    parent: np.ndarray
    depth: np.ndarray
    rank: np.ndarray
    draft_entropy: np.ndarray
    target_entropy: np.ndarray
    accept_prob: np.ndarray
    accepted_local: np.ndarray
    accepted_path: np.ndarray


@dataclass
class Steps:
    """Step records as columns; ``prompt`` indexes ``RunData.prompts``."""

    prompt: np.ndarray
    step: np.ndarray
    tree_size: np.ndarray
    accepted: np.ndarray


@dataclass
class RunData:
    """Everything the report reads from one run, restricted to finished prompts."""

    run_dir: Path | None
    manifest: dict
    status: RunStatus
    domains: list[str]
    prompts: Prompts
    nodes: Nodes
    steps: Steps
    notes: list[str] = field(default_factory=list)


def load_run(run_dir: str | Path) -> RunData:
    """Read ``run_dir`` (written by ``specdyn run``); raise SpecdynError when it cannot be reported."""
    root = Path(run_dir)
    if not root.exists():
        raise SpecdynError(f"{root}: no such directory")
    if not root.is_dir():
        raise SpecdynError(f"{root} is not a directory (expected a run folder written by `specdyn run`)")
    manifest = _read_manifest(root)
    status = _status(manifest)
    numbers = sorted(_shards(root / "prompts"))
    if not numbers:
        state = "the run is still in progress" if status is RunStatus.RUNNING else "the run is empty"
        raise SpecdynError(f"{root}: no finished prompts to report ({state}: prompts/ has no shards)")
    notes = []
    for sub in ("nodes", "steps"):
        extra = sorted(_shards(root / sub).keys() - set(numbers))
        if extra:
            notes.append(f"Ignored {sub}/ shard(s) {', '.join(map(str, extra))}: no matching prompts/ shard "
                         "(left by an interrupted or ongoing flush).")
    tables = {
        "prompts": [_read_shard(root, "prompts", n, PROMPT_COLUMNS, PROMPT_OPTIONAL) for n in numbers],
        "nodes": [_read_shard(root, "nodes", n, NODE_COLUMNS) for n in numbers],
        "steps": [_read_shard(root, "steps", n, STEP_COLUMNS) for n in numbers],
    }
    return run_from_tables(manifest, tables["prompts"], tables["nodes"], tables["steps"],
                           run_dir=root, notes=notes)


def run_from_tables(manifest: dict, prompts: list[pa.Table], nodes: list[pa.Table],
                    steps: list[pa.Table], run_dir: Path | None = None,
                    notes: list[str] | None = None) -> RunData:
    """Assemble RunData from per-shard tables (shard i of each list belongs together)."""
    notes = list(notes or [])
    status = _status(manifest)
    if status is RunStatus.RUNNING:
        notes.insert(0, "Run still in progress (manifest status 'running'): this report covers only the "
                        "prompts finished so far.")
    elif status is RunStatus.UNKNOWN:
        notes.insert(0, f"Manifest status is {manifest.get('status')!r}, not 'complete': the run may be "
                        "unfinished; this report covers the prompts finished so far.")
    shard_of = lambda tables: np.repeat(np.arange(len(tables)), [t.num_rows for t in tables])  # noqa: E731
    all_prompts = _combine(prompts, _PROMPT_SCHEMA, "prompts")
    ids = all_prompts.column("prompt_id").combine_chunks()
    prompt_shard = shard_of(prompts)
    first = pc.index_in(ids, value_set=ids).to_numpy() == np.arange(len(ids))
    if not first.all():
        notes.append(f"{int((~first).sum())} duplicate prompts/ row(s) ignored (the first shard's kept).")
    keep = np.flatnonzero(first)
    ids, prompt_shard = ids.take(pa.array(keep)), prompt_shard[keep]
    domain_names = all_prompts.column("domain").to_numpy(zero_copy_only=False)[keep]
    domains = list(dict.fromkeys(domain_names.tolist()))
    code = {d: i for i, d in enumerate(domains)}
    prompts_data = Prompts(
        ids=ids.to_pylist(),
        domain=np.array([code[d] for d in domain_names], dtype=np.int64),
        text=list(np.concatenate([_optional(t, "text") for t in prompts])[keep]),
        source=list(np.concatenate([_optional(t, "source") for t in prompts])[keep]),
    )
    node_table = _combine(nodes, _NODE_SCHEMA, "nodes")
    step_table = _combine(steps, _STEP_SCHEMA, "steps")
    node_idx = _prompt_index(node_table, ids, prompt_shard, shard_of(nodes), "node", notes)
    step_idx = _prompt_index(step_table, ids, prompt_shard, shard_of(steps), "step", notes)
    if node_idx[1] is not None:
        node_table = node_table.take(pa.array(node_idx[1]))
    if step_idx[1] is not None:
        step_table = step_table.take(pa.array(step_idx[1]))
    col = lambda t, name, dtype: t.column(name).to_numpy().astype(dtype, copy=False)  # noqa: E731
    node_data = Nodes(
        prompt=node_idx[0], **{n: col(node_table, n, np.int64) for n in ("step", "node", "parent",
                                                                           "depth", "rank")},
        **{n: col(node_table, n, np.float64) for n in ("draft_entropy", "target_entropy", "accept_prob")},
        accepted_local=col(node_table, "accepted_local", bool),
        accepted_path=col(node_table, "accepted_path", bool),
    )
    step_data = Steps(prompt=step_idx[0], **{n: col(step_table, n, np.int64)
                                             for n in ("step", "tree_size", "accepted")})
    if len(node_data.prompt) == 0:
        raise SpecdynError("the finished prompts have no node records: nothing to report")
    _check_values(node_data, step_data)
    return RunData(run_dir=run_dir, manifest=manifest, status=status, domains=domains,
                   prompts=prompts_data, nodes=node_data, steps=step_data, notes=notes)


_PROMPT_SCHEMA = pa.schema([("prompt_id", pa.string()), ("domain", pa.string())])
_NODE_SCHEMA = pa.schema([("prompt_id", pa.string())] + [(n, pa.int64()) for n in NODE_COLUMNS[1:6]]
                         + [(n, pa.float64()) for n in NODE_COLUMNS[6:9]]
                         + [(n, pa.bool_()) for n in NODE_COLUMNS[9:]])
_STEP_SCHEMA = pa.schema([("prompt_id", pa.string())] + [(n, pa.int64()) for n in STEP_COLUMNS[1:]])


def _combine(tables: list[pa.Table], schema: pa.Schema, kind: str) -> pa.Table:
    """Concatenate shards after casting the needed columns to ``schema``; reject nulls and bad types."""
    try:
        table = pa.concat_tables([t.select(schema.names).cast(schema) for t in tables])
    except (pa.ArrowException, KeyError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SpecdynError(f"{kind} records have unexpected column types ({reason})") from None
    nulls = [name for name in schema.names if table.column(name).null_count]
    if nulls:
        raise SpecdynError(f"{kind} records have missing (null) values in {', '.join(nulls)}")
    return table


def _prompt_index(table: pa.Table, ids: pa.Array, prompt_shard: np.ndarray, row_shard: np.ndarray,
                  kind: str, notes: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """Prompt index of the rows that belong to a finished prompt of the same shard, and which rows
    those are (None: all of them)."""
    found = pc.index_in(table.column("prompt_id"), value_set=ids).fill_null(-1)
    idx = found.to_numpy().astype(np.int64)
    ok = idx >= 0
    ok[ok] &= prompt_shard[idx[ok]] == row_shard[ok]
    if ok.all():
        return idx, None
    notes.append(f"{int((~ok).sum())} {kind} row(s) of prompts without a finished prompts/ row "
                 "were ignored.")
    rows = np.flatnonzero(ok)
    return idx[rows], rows


def _check_values(nodes: Nodes, steps: Steps) -> None:
    """Reject records that violate the schema's documented ranges."""
    problems = []
    if np.isnan(nodes.draft_entropy).any() or np.isnan(nodes.target_entropy).any():
        problems.append("NaN entropies")
    if np.isnan(nodes.accept_prob).any() or (nodes.accept_prob < 0).any() or (nodes.accept_prob > 1).any():
        problems.append("accept_prob outside [0, 1]")
    if (nodes.depth < 1).any() or (nodes.rank < 0).any():
        problems.append("depth < 1 or rank < 0")
    if (steps.accepted < 0).any():
        problems.append("negative step `accepted`")
    if problems:
        raise SpecdynError(f"invalid records: {'; '.join(problems)}")


def _optional(table: pa.Table, name: str) -> np.ndarray:
    if name in table.column_names:
        return np.array(table.column(name).cast(pa.string()).fill_null("").to_pylist(), dtype=object)
    return np.array([""] * table.num_rows, dtype=object)


def _read_manifest(root: Path) -> dict:
    path = root / "manifest.json"
    if not path.is_file():
        raise SpecdynError(f"{root} is not a specdyn run folder: no manifest.json "
                           "(expected a folder written by `specdyn run`)")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SpecdynError(f"{path} is unreadable or not valid JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise SpecdynError(f"{path} must hold a JSON object")
    return manifest


def _status(manifest: dict) -> RunStatus:
    try:
        return RunStatus(manifest.get("status"))
    except ValueError:
        return RunStatus.UNKNOWN


def _shards(folder: Path) -> dict[int, Path]:
    if not folder.is_dir():
        return {}
    found = {}
    for path in folder.iterdir():
        match = SHARD_NAME.match(path.name)
        if match:
            found[int(match.group(1))] = path
    return found


def _read_shard(root: Path, sub: str, number: int, columns: tuple, optional: tuple = ()) -> pa.Table:
    path = root / sub / f"shard-{number:06d}.parquet"
    where = f"{sub}/{path.name}"
    hint = f"remove prompts/shard-{number:06d}.parquet to report without shard {number}"
    if not path.is_file():
        raise SpecdynError(f"{where} is missing although prompts/{path.name} exists; {hint}")
    try:
        names = pq.read_schema(path).names
        missing = [c for c in columns if c not in names]
        if missing:
            raise SpecdynError(f"{where} lacks column(s) {', '.join(missing)}: not a specdyn {sub} shard")
        return pq.read_table(path, columns=list(columns) + [c for c in optional if c in names])
    except (OSError, pa.ArrowException) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SpecdynError(f"{where} is unreadable (truncated or corrupt: {reason}); {hint}") from None
