"""``--profile RUN_DIR``: a finished (or partly finished) run read as the starting point of adaptive trees —
its acceptance by (depth, rank) pooled over every domain, its identity, and its cost model.

Read once at the command boundary, through the run-folder reader; the result (:class:`~specdyn.prior.
Profile`) travels inside the adaptive tree spec and is recorded in the new run's manifest.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from specdyn.budget.acceptance import AcceptanceVector, pooled_vector
from specdyn.errors import SpecdynError
from specdyn.files import read_text
from specdyn.prior import Profile
from specdyn.rundir.reader import RunData, load_run
from specdyn.sampling_spec import setting_label
from specdyn.treeopt.costs import COSTS_FILE, CostModel


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _grids(vec: AcceptanceVector) -> tuple[tuple[tuple[int, ...], ...], tuple[tuple[int, ...], ...]]:
    """(trials, accepted) per depth 1..max and rank, zero-padded to a rectangle."""
    depth, ranks = max(vec.depth_trials), len(vec.trials)
    def grid(counts: dict[int, list[int]]):
        return tuple(tuple((counts.get(d, []) + [0] * ranks)[:ranks]) for d in range(1, depth + 1))

    return grid(vec.depth_trials), grid(vec.depth_accepted)


def _costs(run: RunData) -> tuple[dict | None, str | None]:
    """The run's ``costs.json`` (checked by parsing it) and its digest, or (None, None)."""
    path = run.run_dir / COSTS_FILE
    if not path.is_file():
        return None, None
    text = read_text(path, "cost model")
    CostModel.load(path)  # refuse a malformed file here, before any model loads
    return json.loads(text), _sha256(text)


def load_profile(run_dir: str) -> Profile:
    """The :class:`~specdyn.prior.Profile` of ``run_dir``; a one-line SpecdynError when it is not a usable run."""
    if not str(run_dir).strip():
        raise SpecdynError("--profile must not be empty (give a run folder written by `specdyn run`)")
    try:
        run = load_run(run_dir)
    except SpecdynError as exc:
        raise SpecdynError(f"--profile: {exc}") from None
    config = run.manifest.require_config(f"--profile {run_dir}")
    if not run.nodes.parent_reached.any():
        raise SpecdynError(f"--profile {run_dir}: the run recorded no drafted nodes to learn acceptance from")
    trials, accepted = _grids(pooled_vector(run, min_observations=1))
    costs, digest = _costs(run)
    identity = run.manifest.identity()
    return Profile(str(Path(run_dir).resolve()), identity["suite_sha256"],
                   _sha256(json.dumps({"config": identity["config"], "trees": identity["trees"]}, sort_keys=True)),
                   config.draft, config.target, trials, accepted, digest, setting_label(config.sampling, config.children),
                   costs)
