"""The only writer of run folders (layout in :mod:`.layout`).

Every shard is written to a temporary name and renamed, nodes and steps before prompts, so a shard
number present in ``prompts/`` is complete. A kill at any moment leaves at most orphan node/step shards
(no prompts shard), which :meth:`RunWriter.open` deletes; their prompts are decoded again.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from specdyn.files import write_atomic, write_text_atomic
from specdyn.errors import SpecdynError
from specdyn.rundir.layout import ADDED_COLUMNS, LOCK_FILE, MANIFEST_FILE, NODES, PROMPTS, SCHEMAS, STEPS, SUITE_FILE, TABLES, shard_files, shard_name
from specdyn.rundir.manifest import Counts, RunManifest
from specdyn.rundir.reader import finished_prompt_ids, read_manifest, row_counts

if TYPE_CHECKING:
    from specdyn.engine import GenerationResult


@dataclass
class FinishedPrompt:
    """A decoded prompt with its suite entry's domain and source, ready to be written."""

    result: GenerationResult
    domain: str
    source: str


def _records_table(records, table: str, domain: str) -> pa.Table:
    schema = SCHEMAS[table]
    cols = {n: [getattr(r, n) for r in records] for n in schema.names if n != "domain"}
    return pa.table({**cols, "domain": [domain] * len(records)}, schema=schema)


def _prompts_table(batch: Sequence[FinishedPrompt]) -> pa.Table:
    results = [f.result for f in batch]
    return pa.table({
        "prompt_id": [r.prompt_id for r in results], "domain": [f.domain for f in batch],
        "source": [f.source for f in batch], "prompt_ids": [r.prompt_ids for r in results],
        "output_ids": [r.output_ids for r in results], "steps": [len(r.steps) for r in results],
        "text": [r.text for r in results], "seconds": [r.seconds for r in results],
    }, schema=SCHEMAS[PROMPTS])


def _readable(path: Path) -> bool:
    """A shard whose Parquet footer can be read (a crash can leave an empty or cut file behind)."""
    try:
        pq.read_metadata(path)
        return True
    except (OSError, pa.ArrowInvalid):
        return False


class RunWriter:
    """Appends finished prompts to a run folder as numbered shards, and writes its manifest and suite."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.next_shard = 0

    def read_manifest(self) -> RunManifest | None:
        """The folder's manifest, or None when it has none."""
        return read_manifest(self.root)

    def write_manifest(self, manifest: RunManifest) -> None:
        write_text_atomic(self.root / MANIFEST_FILE, json.dumps(manifest.to_json(), indent=2, default=str))

    def write_suite(self, text: str) -> None:
        write_text_atomic(self.root / SUITE_FILE, text)

    def check_writable(self) -> None:
        """Fail early, creating nothing, when the run folder cannot be created or written."""
        probe = self.root if self.root.exists() else next(p for p in self.root.absolute().parents if p.exists())
        if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
            raise SpecdynError(f"cannot write run folder {self.root}: {probe} is not a writable folder")

    def has_finished_prompts(self) -> bool:
        return any(_readable(p) for p in shard_files(self.root / PROMPTS).values())

    def open(self) -> set[str]:
        """Create the folders, delete orphan shards and temp files; return the ids of finished prompts."""
        try:
            for t in TABLES:
                (self.root / t).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SpecdynError(f"cannot write run folder {self.root}: {exc.strerror}") from None
        done = {p.name for p in shard_files(self.root / PROMPTS).values() if _readable(p)}
        for t in TABLES:
            for p in (self.root / t).iterdir():
                if p.name.startswith(".") or p.name not in done:
                    p.unlink()
        self.next_shard = max(shard_files(self.root / PROMPTS), default=-1) + 1
        return set(finished_prompt_ids(self.root))

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

    def append(self, batch: Sequence[FinishedPrompt]) -> None:
        """Write finished prompts as one shard."""
        if not batch:
            return
        nodes = pa.concat_tables([_records_table(f.result.nodes, NODES, f.domain) for f in batch])
        steps = pa.concat_tables([_records_table(f.result.steps, STEPS, f.domain) for f in batch])
        self.append_tables(nodes, steps, _prompts_table(batch))

    def append_tables(self, nodes: pa.Table, steps: pa.Table, prompts: pa.Table) -> None:
        """Write one shard from columnar tables (cast to the run-folder schemas; extra columns dropped, and
        :data:`~specdyn.rundir.layout.ADDED_COLUMNS` left out when the tables lack them, as in a run folder
        recorded before they existed)."""
        name = shard_name(self.next_shard)
        for table, data in ((NODES, nodes), (STEPS, steps), (PROMPTS, prompts)):
            schema = pa.schema([f for f in SCHEMAS[table] if f.name in data.column_names or f.name not in ADDED_COLUMNS[table]])
            data = data.select(schema.names).cast(schema)
            write_atomic(self.root / table / name, lambda p, d=data: pq.write_table(d, p))
        self.next_shard += 1

    def counts(self) -> Counts:
        return row_counts(self.root)
