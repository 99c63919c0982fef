"""A run folder on disk: Parquet shards of node, step and prompt records plus ``manifest.json``.

Layout::

    RUN_DIR/manifest.json            config, versions, models, machine, times, counts, status
    RUN_DIR/nodes/shard-NNNNNN.parquet    per-node records (+ domain)
    RUN_DIR/steps/shard-NNNNNN.parquet    per-step records (+ domain)
    RUN_DIR/prompts/shard-NNNNNN.parquet  one row per finished prompt

Every shard is written to a temporary name and renamed, nodes and steps before prompts, so a shard
number present in ``prompts/`` is complete. A kill at any moment leaves at most orphan node/step shards
(no prompts shard), which :meth:`RunStore.open` deletes; their prompts are decoded again.
"""

from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from specdyn.engine import GenerationResult
from specdyn.errors import SpecdynError
from specdyn.records import NodeRecord, StepRecord

TABLES = ("nodes", "steps", "prompts")
LOCK_FILE = ".lock"
_ARROW = {int: pa.int32(), float: pa.float32(), bool: pa.bool_(), str: pa.string()}


def _schema(cls) -> pa.Schema:
    types = {"int": int, "float": float, "bool": bool, "str": str}
    cols = [pa.field(f.name, _ARROW[types[str(f.type)]]) for f in fields(cls)]
    return pa.schema(cols + [pa.field("domain", pa.string())])


NODE_SCHEMA = _schema(NodeRecord)
STEP_SCHEMA = _schema(StepRecord)
PROMPT_SCHEMA = pa.schema([
    ("prompt_id", pa.string()), ("domain", pa.string()), ("source", pa.string()),
    ("prompt_ids", pa.list_(pa.int32())), ("output_ids", pa.list_(pa.int32())),
    ("steps", pa.int32()), ("text", pa.string()), ("seconds", pa.float64()),
])


def _table(records, schema: pa.Schema, domain: str) -> pa.Table:
    names = [n for n in schema.names if n != "domain"]
    cols = {n: [getattr(r, n) for r in records] for n in names}
    cols["domain"] = [domain] * len(records)
    return pa.table(cols, schema=schema)


def write_atomic(path: Path, write) -> None:
    """Write through ``write(tmp_path)``, flush it to disk, then rename into place (same folder, so the
    rename is atomic) and flush the folder entry: after a crash the file is either whole or absent."""
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def _readable(path: Path) -> bool:
    """A shard whose Parquet footer can be read (a crash can leave an empty or cut file behind)."""
    try:
        pq.read_metadata(path)
        return True
    except (OSError, pa.ArrowInvalid):
        return False


class RunStore:
    """Appends finished prompts to a run folder as numbered shards."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.next_shard = 0

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    def read_manifest(self) -> dict | None:
        try:
            return json.loads(self.manifest_path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, json.JSONDecodeError) as exc:
            raise SpecdynError(f"{self.manifest_path} is unreadable: {exc}") from None

    def write_manifest(self, manifest: dict) -> None:
        write_atomic(self.manifest_path, lambda p: p.write_text(json.dumps(manifest, indent=2, default=str)))

    def check_writable(self) -> None:
        """Fail early, creating nothing, when the run folder cannot be created or written."""
        probe = self.root if self.root.exists() else next(p for p in self.root.parents if p.exists())
        if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
            raise SpecdynError(f"cannot write run folder {self.root}: {probe} is not a writable folder")

    def open(self) -> set[str]:
        """Create the folders, delete orphan shards and temp files; return the ids of finished prompts."""
        try:
            for t in TABLES:
                (self.root / t).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SpecdynError(f"cannot write run folder {self.root}: {exc.strerror}") from None
        done_shards = {p.name for p in (self.root / "prompts").glob("shard-*.parquet") if _readable(p)}
        for t in TABLES:
            for p in (self.root / t).iterdir():
                if p.name.startswith(".") or p.name not in done_shards:
                    p.unlink()
        numbers = [int(n[6:12]) for n in done_shards]
        self.next_shard = max(numbers, default=-1) + 1
        return set(self.finished_ids())

    @contextmanager
    def lock(self):
        """Hold an exclusive lock on the run folder (creating it); a second writer is refused."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / LOCK_FILE, "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise SpecdynError(f"{self.root} is being written by another specdyn process") from None
            yield

    def finished_ids(self) -> list[str]:
        files = sorted((self.root / "prompts").glob("shard-*.parquet"))
        return [pid for f in files for pid in pq.read_table(f, columns=["prompt_id"])["prompt_id"].to_pylist()]

    def append(self, batch: list[tuple[GenerationResult, dict]]) -> None:
        """Write finished prompts (each with its suite entry: domain, source) as one shard."""
        if not batch:
            return
        name = f"shard-{self.next_shard:06d}.parquet"
        nodes = pa.concat_tables([_table(r.nodes, NODE_SCHEMA, meta["domain"]) for r, meta in batch])
        steps = pa.concat_tables([_table(r.steps, STEP_SCHEMA, meta["domain"]) for r, meta in batch])
        prompts = pa.table({
            "prompt_id": [r.prompt_id for r, _ in batch], "domain": [m["domain"] for _, m in batch],
            "source": [m["source"] for _, m in batch], "prompt_ids": [r.prompt_ids for r, _ in batch],
            "output_ids": [r.output_ids for r, _ in batch], "steps": [len(r.steps) for r, _ in batch],
            "text": [r.text for r, _ in batch], "seconds": [r.seconds for r, _ in batch],
        }, schema=PROMPT_SCHEMA)
        for table, data in (("nodes", nodes), ("steps", steps), ("prompts", prompts)):
            write_atomic(self.root / table / name, lambda p, d=data: pq.write_table(d, p))
        self.next_shard += 1

    def read(self, table: str) -> pa.Table:
        """All shards of one table, in shard order."""
        files = sorted((self.root / table).glob("shard-*.parquet"))
        schema = {"nodes": NODE_SCHEMA, "steps": STEP_SCHEMA, "prompts": PROMPT_SCHEMA}[table]
        return pa.concat_tables([pq.read_table(f) for f in files]) if files else schema.empty_table()
