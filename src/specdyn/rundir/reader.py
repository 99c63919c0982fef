"""The only reader of run folders: records of finished prompts as aligned numpy columns, strictly checked.

Every analysis (report, budget, compare) reads a run through :func:`load_run`. A prompt is finished iff it
has a row in ``prompts/``; only shard numbers present in ``prompts/`` are read (a nodes/steps shard
without one is left over from an interrupted or ongoing flush, and is noted). Anything else that does not
add up is refused with one line that names the shard: an unreadable or incomplete shard, rows of a prompt
that is not in the same-numbered prompts shard, a prompt listed twice, step or node counts that disagree
with the prompt rows, a node whose parent is absent from its step, or (for a complete run) row counts
that disagree with the manifest. Fields added to the records over time (``NODE_OPTIONAL``,
``STEP_OPTIONAL``) may be absent: older folders still load, with those fields None.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from specdyn.errors import SpecdynError
from specdyn.rundir.layout import MANIFEST_FILE, NODES, PROMPTS, STEPS, SUITE_FILE, TABLES, shard_files, shard_name
from specdyn.rundir.manifest import Counts, RunManifest, RunStatus, parse_manifest
from specdyn.suites.prompts import Prompt, load_suite

NODE_COLUMNS = ("prompt_id", "step", "node", "parent", "depth", "rank", "draft_entropy",
                "target_entropy", "accept_prob", "accepted_local", "accepted_path")
STEP_COLUMNS = ("prompt_id", "step", "tree_size", "accepted")
PROMPT_COLUMNS = ("prompt_id", "domain", "output_ids", "steps", "seconds")
PROMPT_OPTIONAL = ("text", "source")
# Columns added to the records over time: a run folder written before one existed still loads; the field
# is then None in RunData and the analyses that need it say so (see ``RunData.missing_fields``).
NODE_OPTIONAL = ("draft_prob", "verify_prob", "draft_target_tv")
STEP_OPTIONAL = ("output_pos", "draft_passes")
COLUMNS = {NODES: NODE_COLUMNS, STEPS: STEP_COLUMNS, PROMPTS: PROMPT_COLUMNS}
OPTIONAL = {NODES: NODE_OPTIONAL, STEPS: STEP_OPTIONAL, PROMPTS: PROMPT_OPTIONAL}


@dataclass
class Prompts:
    """Finished prompts, one entry per prompt; ``domain`` holds indices into ``RunData.domains``.
    ``output_tokens``: generated tokens; ``steps``: speculative steps; ``seconds``: wall time."""

    ids: list[str]
    domain: np.ndarray
    text: list[str]
    source: list[str]
    output_tokens: np.ndarray
    steps: np.ndarray
    seconds: np.ndarray


@dataclass
class Nodes:
    """Node records as columns; ``prompt`` indexes ``RunData.prompts``. ``parent_reached``: the node's
    parent is the last committed token or lies on its step's accepted path (the acceptance walk reached
    the node) — computed here once for every analysis. ``draft_prob``, ``verify_prob`` and
    ``draft_target_tv`` are None for run folders recorded before the field existed (``draft_target_tv``
    is NaN for drafters without a distribution)."""

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
    parent_reached: np.ndarray
    draft_prob: np.ndarray | None = None
    verify_prob: np.ndarray | None = None
    draft_target_tv: np.ndarray | None = None


@dataclass
class Steps:
    """Step records as columns; ``prompt`` indexes ``RunData.prompts``. ``output_pos`` (tokens generated
    before the step) and ``draft_passes`` are None for run folders recorded before the field existed."""

    prompt: np.ndarray
    step: np.ndarray
    tree_size: np.ndarray
    accepted: np.ndarray
    output_pos: np.ndarray | None = None
    draft_passes: np.ndarray | None = None


@dataclass
class RunData:
    """Everything the analyses read from one run, restricted to finished prompts. ``notes``: what the
    reader noticed but accepted (a run still in progress, leftover shards); commands print them."""

    run_dir: Path | None
    manifest: RunManifest
    domains: list[str]
    prompts: Prompts
    nodes: Nodes
    steps: Steps
    notes: list[str] = field(default_factory=list)

    @property
    def status(self) -> RunStatus:
        return self.manifest.status

    def node_domain(self) -> np.ndarray:
        """Domain index of every node."""
        return self.prompts.domain[self.nodes.prompt]

    def step_domain(self) -> np.ndarray:
        """Domain index of every step."""
        return self.prompts.domain[self.steps.prompt]

    @property
    def missing_fields(self) -> list[str]:
        """Optional record fields this run folder lacks (recorded before they existed)."""
        return ([n for n in NODE_OPTIONAL if getattr(self.nodes, n) is None]
                + [n for n in STEP_OPTIONAL if getattr(self.steps, n) is None])


# --------------------------------------------------------------------------------------------------
# Folder level


def read_manifest(root: Path) -> RunManifest | None:
    """``root/manifest.json`` parsed (:func:`~specdyn.rundir.manifest.parse_manifest`), or None if absent."""
    path = Path(root) / MANIFEST_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SpecdynError(f"{path} is unreadable: {exc.strerror}") from None
    return parse_manifest(data, path)


def load_run(run_dir: str | Path) -> RunData:
    """Read ``run_dir`` (written by ``specdyn run``); SpecdynError when it cannot be analysed."""
    root = _run_folder(run_dir)
    manifest = read_manifest(root)
    if manifest is None:
        raise SpecdynError(f"{root} is not a specdyn run folder: no {MANIFEST_FILE} "
                           "(expected a folder written by `specdyn run`)")
    numbers = sorted(shard_files(root / PROMPTS))
    if not numbers:
        state = "the run is still in progress" if manifest.in_progress else "the run is empty"
        raise SpecdynError(f"{root}: no finished prompts ({state}: prompts/ has no shards)")
    tables = {t: [_read_shard(root, t, n) for n in numbers] for t in TABLES}
    return run_from_tables(manifest, tables[PROMPTS], tables[NODES], tables[STEPS], run_dir=root,
                           notes=_orphan_notes(root, numbers), shards=numbers)


def _run_folder(run_dir: str | Path) -> Path:
    root = Path(run_dir)
    if not root.exists():
        raise SpecdynError(f"{root}: no such directory")
    if not root.is_dir():
        raise SpecdynError(f"{root} is not a directory (expected a run folder written by `specdyn run`)")
    return root


def _orphan_notes(root: Path, numbers: list[int]) -> list[str]:
    notes = []
    for sub in (NODES, STEPS):
        extra = sorted(shard_files(root / sub).keys() - set(numbers))
        if extra:
            notes.append(f"Ignored {sub}/ shard(s) {', '.join(map(str, extra))}: no matching prompts/ shard "
                         "(left by an interrupted or ongoing flush).")
    return notes


def _read_shard(root: Path, sub: str, number: int) -> pa.Table:
    where = f"{sub}/{shard_name(number)}"
    path = root / where
    hint = f"remove prompts/{shard_name(number)} to use the run without shard {number}"
    if not path.is_file():
        raise SpecdynError(f"{where} is missing although prompts/{shard_name(number)} exists; {hint}")
    try:
        names = pq.read_schema(path).names
        missing = [c for c in COLUMNS[sub] if c not in names]
        if missing:
            raise SpecdynError(f"{where} lacks column(s) {', '.join(missing)}: not a specdyn {sub} shard")
        return pq.read_table(path, columns=list(COLUMNS[sub]) + [c for c in OPTIONAL[sub] if c in names])
    except (OSError, pa.ArrowException) as exc:
        raise SpecdynError(f"{where} is unreadable (truncated or corrupt: {_first_line(exc)}); {hint}") from None


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def read_suite(root: str | Path) -> list[Prompt] | None:
    """The suite the run decoded (``suite.jsonl``, validated), or None when the folder has none."""
    path = Path(root) / SUITE_FILE
    return load_suite(path) if path.is_file() else None


def finished_prompt_ids(root: Path) -> list[str]:
    """Ids of the prompts with a row in ``prompts/``, in shard order (for the writer's resume)."""
    files = [f for _, f in sorted(shard_files(Path(root) / PROMPTS).items())]
    return [pid for f in files for pid in pq.read_table(f, columns=["prompt_id"])["prompt_id"].to_pylist()]


def row_counts(root: Path) -> Counts:
    """Rows per table over all shards (Parquet footers only)."""
    rows = {t: sum(pq.read_metadata(f).num_rows for f in shard_files(Path(root) / t).values()) for t in TABLES}
    return Counts(rows[PROMPTS], rows[STEPS], rows[NODES])


def read_records(root: str | Path, table: str) -> pa.Table:
    """Every column of one table of a checked run folder (finished prompts), in shard order."""
    return _checked_table(load_run(root), table)  # refuse what the analyses would refuse


def _checked_table(run: RunData, table: str, columns: list[str] | None = None) -> pa.Table:
    """``columns`` of ``table`` for the prompts ``run`` holds (a shard finished since it was read is left
    out), in shard order; an unreadable shard is named."""
    numbers = sorted(shard_files(run.run_dir / PROMPTS))
    tables = []
    for n in numbers:
        try:
            tables.append(pq.read_table(run.run_dir / table / shard_name(n), columns=columns))
        except (OSError, pa.ArrowException, KeyError) as exc:
            raise SpecdynError(f"{table}/{shard_name(n)} is unreadable ({_first_line(exc)})") from None
    rows = pa.concat_tables(tables)
    return rows.slice(0, len(run.prompts.ids)) if table == PROMPTS else rows


# --------------------------------------------------------------------------------------------------
# Token ids of finished prompts (what `specdyn distill` trains on)


@dataclass(frozen=True)
class PromptTokens:
    """One finished prompt's token ids: those fed to the models (the chat-templated prompt) and the
    target's output."""

    prompt_id: str
    domain: str
    prompt_ids: tuple[int, ...]
    output_ids: tuple[int, ...]


@dataclass
class RunTokens:
    """A checked run (:func:`load_run`: manifest, notes, records) and the token ids of its finished prompts,
    in the order of ``run.prompts``."""

    run: RunData
    prompts: list[PromptTokens]


TOKEN_COLUMNS = ["prompt_id", "domain", "prompt_ids", "output_ids"]


def load_prompt_tokens(run_dir: str | Path) -> RunTokens:
    """The finished prompts' token ids of ``run_dir``, read after the same checks as :func:`load_run`."""
    run = load_run(run_dir)
    table = _checked_table(run, PROMPTS, TOKEN_COLUMNS)
    nulls = [c for c in TOKEN_COLUMNS if table.column(c).null_count]
    if nulls:
        raise SpecdynError(f"prompts records have missing (null) values in {', '.join(nulls)}: the run folder is corrupt")
    if table.column("prompt_id").to_pylist() != run.prompts.ids:
        raise SpecdynError(f"{run.run_dir}: prompts/ changed while it was read; run the command again")
    rows = table.to_pylist()
    return RunTokens(run, [PromptTokens(r["prompt_id"], r["domain"], tuple(r["prompt_ids"]), tuple(r["output_ids"]))
                           for r in rows])


# --------------------------------------------------------------------------------------------------
# Tables to columns


_PROMPT_SCHEMA = pa.schema([("prompt_id", pa.string()), ("domain", pa.string()), ("steps", pa.int64()),
                            ("seconds", pa.float64())])
_NODE_SCHEMA = pa.schema([("prompt_id", pa.string())] + [(n, pa.int64()) for n in NODE_COLUMNS[1:6]]
                         + [(n, pa.float64()) for n in NODE_COLUMNS[6:9]]
                         + [(n, pa.bool_()) for n in NODE_COLUMNS[9:]])
_STEP_SCHEMA = pa.schema([("prompt_id", pa.string())] + [(n, pa.int64()) for n in STEP_COLUMNS[1:]])


@dataclass
class _Shards:
    """Which shard each row of a concatenated table came from, to name it in errors."""

    kind: str
    numbers: list[int]
    of_row: np.ndarray

    @classmethod
    def of(cls, kind: str, tables: list[pa.Table], numbers: list[int]) -> _Shards:
        return cls(kind, numbers, np.repeat(np.arange(len(tables)), [t.num_rows for t in tables]))

    def name(self, row: int) -> str:
        return f"{self.kind}/{shard_name(self.numbers[self.of_row[row]])}"


def run_from_tables(manifest: RunManifest, prompts: list[pa.Table], nodes: list[pa.Table],
                    steps: list[pa.Table], run_dir: Path | None = None, notes: list[str] | None = None,
                    shards: list[int] | None = None) -> RunData:
    """Assemble and check RunData from per-shard tables (shard i of each list belongs together)."""
    numbers = list(shards) if shards is not None else list(range(len(prompts)))
    where = {kind: _Shards.of(kind, tables, numbers) for kind, tables in ((PROMPTS, prompts), (NODES, nodes), (STEPS, steps))}
    prompt_table = _combine(prompts, _PROMPT_SCHEMA, PROMPTS)
    ids = prompt_table.column("prompt_id").combine_chunks()
    _refuse_duplicates(ids, where[PROMPTS])
    domains = list(dict.fromkeys(prompt_table.column("domain").to_pylist()))
    node_table, step_table = _combine(nodes, _NODE_SCHEMA, NODES), _combine(steps, _STEP_SCHEMA, STEPS)
    node_prompt = _prompt_index(node_table, ids, where[PROMPTS], where[NODES])
    step_prompt = _prompt_index(step_table, ids, where[PROMPTS], where[STEPS])
    notes = _status_notes(manifest, len(ids)) + list(notes or [])
    extra_nodes = _optional_columns(nodes, NODE_OPTIONAL, pa.float64(), NODES, notes)
    extra_steps = _optional_columns(steps, STEP_OPTIONAL, pa.int64(), STEPS, notes)
    run = RunData(run_dir, manifest, domains, _prompts(prompts, prompt_table, domains),
                  _nodes(node_table, node_prompt, len(ids), where[NODES], extra_nodes),
                  _steps(step_table, step_prompt, extra_steps), notes)
    _check_run(run, where[PROMPTS])
    return run


def _combine(tables: list[pa.Table], schema: pa.Schema, kind: str) -> pa.Table:
    """Concatenate shards after casting the needed columns to ``schema``; reject nulls and bad types."""
    try:
        table = pa.concat_tables([t.select(schema.names).cast(schema) for t in tables])
    except (pa.ArrowException, KeyError) as exc:
        raise SpecdynError(f"{kind} records have unexpected column types ({_first_line(exc)})") from None
    nulls = [name for name in schema.names if table.column(name).null_count]
    if nulls:
        raise SpecdynError(f"{kind} records have missing (null) values in {', '.join(nulls)}")
    return table


def _refuse_duplicates(ids: pa.Array, shards: _Shards) -> None:
    first = pc.index_in(ids, value_set=ids).to_numpy()
    again = np.flatnonzero(first != np.arange(len(ids)))
    if again.size:
        row = int(again[0])
        raise SpecdynError(f"prompt {ids[row].as_py()!r} is listed twice ({shards.name(int(first[row]))} and "
                           f"{shards.name(row)}): the run folder is corrupt")


def _prompt_index(table: pa.Table, ids: pa.Array, prompts: _Shards, rows: _Shards) -> np.ndarray:
    """Prompt index of every row; refuse rows whose prompt is not in the same-numbered prompts shard."""
    idx = pc.index_in(table.column("prompt_id"), value_set=ids).fill_null(-1).to_numpy().astype(np.int64)
    ok = idx >= 0
    ok[ok] &= prompts.of_row[idx[ok]] == rows.of_row[ok]
    if not ok.all():
        row = int(np.flatnonzero(~ok)[0])
        pid = table.column("prompt_id")[row].as_py()
        raise SpecdynError(f"{rows.name(row)} holds {int((~ok).sum())} row(s) of prompts missing from the "
                           f"prompts/ shard of the same number (e.g. {pid!r}): the run folder is corrupt")
    return idx


def _optional_columns(tables: list[pa.Table], names: tuple[str, ...], kind_type: pa.DataType, kind: str,
                      notes: list[str]) -> dict[str, np.ndarray]:
    """The optional columns every shard has, as arrays. A column only some shards have is dropped with a
    note (a run resumed by another specdyn version); one that is null throughout was not recorded."""
    out = {}
    for name in names:
        present = [name in t.column_names for t in tables]
        if tables and all(present):
            values = _optional_array(tables, name, kind_type, kind)
            if values is not None:
                out[name] = values
        elif any(present):
            notes.append(f"{kind} field `{name}` is recorded in some shards only (a run resumed by another "
                         "specdyn version): the analyses that need it are skipped.")
    return out


def _optional_array(tables: list[pa.Table], name: str, kind_type: pa.DataType, kind: str) -> np.ndarray | None:
    """The column over all shards; None when every value is null; refused when only some are."""
    try:
        chunks = [c for t in tables for c in t.column(name).cast(kind_type).chunks]
    except pa.ArrowException as exc:
        raise SpecdynError(f"{kind} records have an unexpected type in {name} ({_first_line(exc)})") from None
    column = pa.chunked_array(chunks, type=kind_type)
    if column.null_count == len(column):
        return None
    if column.null_count:
        raise SpecdynError(f"{kind} records have missing (null) values in {name}")
    return column.to_numpy()


def _column(table: pa.Table, name: str, dtype) -> np.ndarray:
    return table.column(name).to_numpy().astype(dtype, copy=False)


def _optional(tables: list[pa.Table], name: str) -> list[str]:
    out = []
    for t in tables:
        col = t.column(name).cast(pa.string()).fill_null("").to_pylist() if name in t.column_names else None
        out += col if col is not None else [""] * t.num_rows
    return out


def _prompts(tables: list[pa.Table], table: pa.Table, domains: list[str]) -> Prompts:
    code = {d: i for i, d in enumerate(domains)}
    names = table.column("domain").to_pylist()
    outputs = pa.chunked_array([pc.list_value_length(t.column("output_ids")).fill_null(0) for t in tables])
    return Prompts(
        ids=table.column("prompt_id").to_pylist(), domain=np.array([code[d] for d in names], dtype=np.int64),
        text=_optional(tables, "text"), source=_optional(tables, "source"),
        output_tokens=outputs.to_numpy().astype(np.int64), steps=_column(table, "steps", np.int64),
        seconds=_column(table, "seconds", np.float64),
    )


def _nodes(table: pa.Table, prompt: np.ndarray, n_prompts: int, shards: _Shards, extra: dict) -> Nodes:
    ints = {n: _column(table, n, np.int64) for n in ("step", "node", "parent", "depth", "rank")}
    path = _column(table, "accepted_path", bool)
    return Nodes(
        prompt=prompt, **ints, **{n: _column(table, n, np.float64) for n in ("draft_entropy", "target_entropy",
                                                                             "accept_prob")},
        accepted_local=_column(table, "accepted_local", bool), accepted_path=path,
        parent_reached=_reached_or_refuse(prompt, ints["step"], ints["node"], ints["parent"], path, shards),
        **extra,
    )


def _steps(table: pa.Table, prompt: np.ndarray, extra: dict) -> Steps:
    return Steps(prompt=prompt, **{n: _column(table, n, np.int64) for n in ("step", "tree_size", "accepted")},
                 **extra)


class MissingParentError(SpecdynError):
    """A node names a parent absent from its (prompt, step): the records are corrupt. ``row``: the node."""

    def __init__(self, row: int, count: int):
        super().__init__(f"{count} node(s) name a parent absent from their step: the run folder is corrupt")
        self.row = row


def parent_reached(prompt, step, node, parent, accepted_path) -> np.ndarray:
    """Per node: True when the greedy walk reached it, i.e. its parent is the last committed token
    (``parent == -1``) or a node of the same (prompt, step) on the accepted path. The one implementation
    of "was the parent reached" (the report, budget and the statistics tests all use it); a parent
    absent from its step raises :class:`MissingParentError`."""
    if len(node) == 0:
        return np.ones(0, bool)
    span_node = int(max(node.max(), parent.max())) + 2
    span_step = int(step.max()) + 1
    if (int(prompt.max()) + 1) * span_step * span_node >= 2**62:
        raise SpecdynError("step or node indices are too large (corrupt records?)")
    base = (prompt * span_step + step) * span_node
    key = base + node
    order = None if np.all(key[1:] > key[:-1]) else np.argsort(key, kind="stable")
    sorted_key = key if order is None else key[order]
    child = np.flatnonzero(parent >= 0)
    want = base[child] + parent[child]
    pos = np.minimum(np.searchsorted(sorted_key, want), len(key) - 1)
    found = sorted_key[pos] == want
    if not found.all():
        raise MissingParentError(int(child[np.flatnonzero(~found)[0]]), int((~found).sum()))
    reached = np.ones(len(key), bool)
    reached[child] = accepted_path[pos if order is None else order[pos]]
    return reached


def _reached_or_refuse(prompt, step, node, parent, accepted_path, shards: _Shards) -> np.ndarray:
    try:
        return parent_reached(prompt, step, node, parent, accepted_path)
    except MissingParentError as exc:
        raise SpecdynError(f"{shards.name(exc.row)}: {exc}") from None


# --------------------------------------------------------------------------------------------------
# Consistency


def _status_notes(manifest: RunManifest, finished: int) -> list[str]:
    if manifest.status is RunStatus.RUNNING:
        return [f"Run still in progress (manifest status 'running'): only the {finished} prompts finished "
                "so far are used."]
    return []


def _check_run(run: RunData, shards: _Shards) -> None:
    if len(run.nodes.prompt) == 0:
        raise SpecdynError("the finished prompts have no node records: nothing to analyse")
    _check_counts_per_prompt(run, shards)
    _check_values(run.nodes, run.steps)
    _check_manifest_counts(run)


def _check_counts_per_prompt(run: RunData, shards: _Shards) -> None:
    """Each prompt row's ``steps`` equals its step rows, and its steps' tree sizes add up to its node rows."""
    n = len(run.prompts.ids)
    steps = np.bincount(run.steps.prompt, minlength=n)
    nodes = np.bincount(run.nodes.prompt, minlength=n)
    sizes = np.bincount(run.steps.prompt, weights=run.steps.tree_size, minlength=n)
    for what, bad in (("step rows", steps != run.prompts.steps), ("node rows", nodes != sizes)):
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise SpecdynError(f"prompt {run.prompts.ids[i]!r} ({shards.name(i)}) and its {what} disagree "
                               f"({int(bad.sum())} prompt(s) in all): the run folder is corrupt")


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
    for name in NODE_OPTIONAL:
        if _outside_unit(getattr(nodes, name), nan_ok=name == "draft_target_tv"):
            problems.append(f"{name} outside [0, 1]")
    if steps.output_pos is not None and (steps.output_pos < 0).any():
        problems.append("negative step `output_pos`")
    if problems:
        raise SpecdynError(f"invalid records: {'; '.join(problems)}")


def _outside_unit(values: np.ndarray | None, nan_ok: bool) -> bool:
    """Any value outside [0, 1] (NaN counts as outside unless ``nan_ok``); False for an absent column."""
    if values is None:
        return False
    finite = values[~np.isnan(values)]
    return bool((finite < 0).any() or (finite > 1).any() or (not nan_ok and len(finite) < len(values)))


def _check_manifest_counts(run: RunData) -> None:
    counts = run.manifest.counts
    if run.manifest.status is not RunStatus.COMPLETE or counts is None:
        return
    found = Counts(len(run.prompts.ids), len(run.steps.prompt), len(run.nodes.prompt))
    if found != counts:
        raise SpecdynError(f"the manifest of this complete run counts {vars(counts)} rows but the shards hold "
                           f"{vars(found)}: shards are missing or were added")
