"""Running a sweep: one run folder per cell under ``DIR/cells/``, an index (``DIR/index.json``: cell →
values → config → folder → status) kept current as cells start and finish, cells in parallel on Ray or
one after another in this process. Resumable cell by cell: a cell whose folder holds its complete run is
skipped without loading anything; an interrupted one resumes through the run folder's own resume."""

from __future__ import annotations

import hashlib
import json
import re
import sys
import threading
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from tqdm import tqdm

from specdyn.errors import SpecdynError
from specdyn.execution import Backend, Execution
from specdyn.files import write_text_atomic
from specdyn.rundir.reader import read_manifest
from specdyn.rundir.writer import RunWriter
from specdyn.safetext import one_line
from specdyn.study import load_prompts, new_manifest, run_study
from specdyn.sweep.spec import Cell, Sweep, cell_identity

INDEX_FILE = "index.json"
CELLS_DIR = "cells"


class CellStatus(Enum):
    """Where a cell stands; ``failed`` keeps the error (the cell runs again on the next sweep)."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"


@dataclass
class CellState:
    cell: Cell
    folder: str  # relative to the sweep folder
    status: CellStatus
    error: str | None = None

    def to_json(self) -> dict:
        return {"cell": self.cell.index, "values": self.cell.values, "folder": self.folder,
                "status": self.status.value, "error": self.error, "config": self.cell.config.to_json()}


def cell_folder(cell: Cell) -> str:
    """``cells/<values>-<hash of the config>``: the same config always gets the same folder (values in
    dimension-name order, so reordering the sweep file's dimensions keeps it too)."""
    digest = hashlib.sha256(cell_identity(cell).encode()).hexdigest()[:10]
    slug = re.sub(r"[^A-Za-z0-9.=_-]+", "-", "_".join(f"{k}={v}" for k, v in sorted(cell.values.items())))
    return f"{CELLS_DIR}/{slug[:60].strip('-_.')}-{digest}"


def cell_status(root: Path, cell: Cell, folder: str) -> CellStatus:
    """COMPLETE when ``folder`` holds this cell's finished run (same settings, trees and suite)."""
    try:
        manifest = read_manifest(root / folder)
    except SpecdynError:
        return CellStatus.PENDING
    if manifest is None:
        return CellStatus.PENDING
    if manifest.in_progress:
        return CellStatus.RUNNING
    same = manifest.identity() == new_manifest(cell.config, load_prompts(cell.config)).identity()
    return CellStatus.COMPLETE if same else CellStatus.PENDING


@dataclass
class Index:
    """``index.json``, rewritten (atomically, one thread at a time) whenever a cell changes state."""

    root: Path
    sweep: Sweep
    states: list[CellState]

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def set(self, state: CellState, status: CellStatus, error: str | None = None) -> None:
        with self._lock:
            state.status, state.error = status, error
            self.write()

    def write(self) -> None:
        doc = {"sweep_file": str(self.sweep.path), "dimensions": [d.name for d in self.sweep.dimensions],
               "cells": [s.to_json() for s in self.states]}
        write_text_atomic(self.root / INDEX_FILE, json.dumps(doc, indent=2) + "\n")


def check_sweep_folder(root: Path) -> None:
    """Refuse, writing nothing, a folder that cannot be written or is neither empty nor a sweep folder."""
    RunWriter(root).check_writable()
    if root.is_dir() and not (root / INDEX_FILE).exists() and any(not p.name.startswith(".") for p in root.iterdir()):
        raise SpecdynError(f"{root} is not empty and is not a specdyn sweep folder (no {INDEX_FILE}); "
                           "choose another --out")


def run_sweep(sweep: Sweep, out: Path, execution: Execution, quiet: bool = False) -> list[CellState]:
    """Run every unfinished cell of ``sweep`` into ``out``; return each cell's final state."""
    root = Path(out)
    check_sweep_folder(root)
    states = [CellState(c, cell_folder(c), CellStatus.PENDING) for c in sweep.cells]
    for s in states:
        s.status = cell_status(root, s.cell, s.folder)
    todo = [s for s in states if s.status is not CellStatus.COMPLETE]
    with _cluster(execution) as width, RunWriter(root).lock():
        index = Index(root, sweep, states)
        index.write()
        if width:
            _in_parallel(index, todo, execution, width, quiet)
        else:
            _one_by_one(index, todo, execution, quiet)
    return states


@contextmanager
def _cluster(execution: Execution):
    """For Ray: connected and checked before anything is written, yielding how many cells fit at once
    (each gets ``execution.workers`` workers); 0 in this process."""
    if execution.backend is not Backend.RAY:
        yield 0
        return
    from specdyn.executors.ray_pool import check_resources, connected, free_worker_slots

    with connected(execution):
        check_resources(execution)
        yield max(1, free_worker_slots(execution) // execution.workers)


def run_cell(index: Index, state: CellState, execution: Execution, quiet: bool) -> None:
    """Run (or resume) one cell; a SpecdynError marks it failed and the sweep goes on."""
    index.set(state, CellStatus.RUNNING)
    try:
        run_study(state.cell.config, index.root / state.folder, quiet=quiet, execution=execution)
    except SpecdynError as exc:
        index.set(state, CellStatus.FAILED, one_line(exc))
        return
    index.set(state, CellStatus.COMPLETE)


def _one_by_one(index: Index, todo: list[CellState], execution: Execution, quiet: bool) -> None:
    for n, state in enumerate(todo, 1):
        if not quiet:
            print(f"specdyn: cell {n}/{len(todo)}: {one_line(state.cell.title)}", file=sys.stderr)
        run_cell(index, state, execution, quiet)


def _in_parallel(index: Index, todo: list[CellState], execution: Execution, width: int, quiet: bool) -> None:
    """Up to ``width`` cells at once, one progress bar over cells. On Ctrl-C the caller disconnects from
    Ray, which stops every cell's workers; finished prompts stay in their folders."""
    pool = ThreadPoolExecutor(min(width, max(1, len(todo))), thread_name_prefix="specdyn-cell")
    try:
        futures = [pool.submit(run_cell, index, s, execution, True) for s in todo]
        with tqdm(total=len(todo), unit="cell", disable=quiet, file=sys.stderr) as bar:
            for future in as_completed(futures):
                future.result()
                bar.update(1)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
