"""The run folder's layout, shared by its writer and its reader (and known nowhere else)::

    RUN_DIR/manifest.json                 config, trees, versions, models, machine, times, counts, status
    RUN_DIR/suite.jsonl                   the exact suite decoded
    RUN_DIR/nodes/shard-NNNNNN.parquet    per-node records (+ domain)
    RUN_DIR/steps/shard-NNNNNN.parquet    per-step records (+ domain)
    RUN_DIR/prompts/shard-NNNNNN.parquet  one row per finished prompt

Shard number N of nodes/, steps/ and prompts/ holds the same prompts. A prompt is finished iff it has a
row in prompts/; the writer writes a shard's nodes and steps before its prompts.
"""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pyarrow as pa

from specdyn.records import NodeRecord, StepRecord

MANIFEST_FILE = "manifest.json"
SUITE_FILE = "suite.jsonl"
LOCK_FILE = ".lock"
NODES, STEPS, PROMPTS = "nodes", "steps", "prompts"
TABLES = (NODES, STEPS, PROMPTS)  # in writing order
SHARD_NAME = re.compile(r"^shard-(\d+)\.parquet$")
_ARROW = {"int": pa.int32(), "float": pa.float32(), "bool": pa.bool_(), "str": pa.string()}


def shard_name(number: int) -> str:
    return f"shard-{number:06d}.parquet"


def shard_files(folder: Path) -> dict[int, Path]:
    """Shard number -> file of the shards in ``folder`` (none when it does not exist)."""
    if not folder.is_dir():
        return {}
    found = {}
    for path in folder.iterdir():
        match = SHARD_NAME.match(path.name)
        if match:
            found[int(match.group(1))] = path
    return found


def _record_schema(cls) -> pa.Schema:
    return pa.schema([pa.field(f.name, _ARROW[str(f.type)]) for f in fields(cls)] + [pa.field("domain", pa.string())])


# Record columns added after run folders were first written: folders recorded before them lack them, so the
# reader never requires them (an analysis that needs one says it is unavailable for that run).
ADDED_COLUMNS = {NODES: ("draft_target_tv",), STEPS: ("output_pos", "draft_passes"), PROMPTS: ()}

SCHEMAS = {
    NODES: _record_schema(NodeRecord),
    STEPS: _record_schema(StepRecord),
    PROMPTS: pa.schema([
        ("prompt_id", pa.string()), ("domain", pa.string()), ("source", pa.string()),
        ("prompt_ids", pa.list_(pa.int32())), ("output_ids", pa.list_(pa.int32())),
        ("steps", pa.int32()), ("text", pa.string()), ("seconds", pa.float64()),
    ]),
}
