"""Acceptance vectors from node records: how often the k-th ranked child is accepted once its parent is.

This is the input of the Sequoia tree search (see :mod:`specdyn.budget.sequoia`). Everything here is a
pure function of a nodes table (a ``pyarrow.Table`` or a mapping of column name to array).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from specdyn.errors import SpecdynError

DEFAULT_MIN_OBSERVATIONS = 200
COLUMNS = ("domain", "prompt_id", "step", "node", "parent", "depth", "rank", "accepted_path")


@dataclass
class AcceptanceVector:
    """Per-rank acceptance of one domain, with the counts behind every estimate.

    ``rates[k]`` (Sequoia's ``p[k+1]``): among nodes of sibling rank k whose parent was accepted (the
    parent is the last committed token, or the parent node has ``accepted_path``), the share with
    ``accepted_path``. ``trials[k]`` counts those nodes and ``accepted[k]`` the accepted ones.
    ``usable`` is the number of leading ranks with at least ``min_observations`` trials; only those
    enter :attr:`p`. ``depth_rates[d][k]`` / ``depth_trials[d][k]`` are the same estimate restricted to
    nodes of depth d (a diagnostic of Sequoia's assumption that p does not depend on depth).
    """

    domain: str
    rates: list[float]
    trials: list[int]
    accepted: list[int]
    usable: int
    min_observations: int
    depth_rates: dict[int, list[float]] = field(default_factory=dict)
    depth_trials: dict[int, list[int]] = field(default_factory=dict)

    @property
    def p(self) -> list[float]:
        """The vector used for tree search: rates of the ranks with enough observations."""
        return self.rates[: self.usable]


def _columns(nodes, names=COLUMNS) -> dict[str, np.ndarray]:
    present = set(nodes.column_names if hasattr(nodes, "column_names") else nodes.keys())
    missing = [n for n in names if n not in present]
    if missing:
        raise SpecdynError(f"nodes table lacks column(s) {', '.join(missing)}")
    out = {}
    for n in names:
        col = nodes[n]
        out[n] = col.to_numpy() if hasattr(col, "to_numpy") else np.asarray(col)
    return out


def _step_groups(cols: dict[str, np.ndarray]) -> np.ndarray:
    """An integer id per row, equal for rows of the same (domain, prompt_id, step)."""
    _, dom = np.unique(cols["domain"].astype(str), return_inverse=True)
    _, pid = np.unique(cols["prompt_id"].astype(str), return_inverse=True)
    steps = cols["step"].astype(np.int64)
    return (dom.astype(np.int64) * (pid.max() + 1) + pid) * (steps.max() + 1) + steps


def parent_accepted(cols: dict[str, np.ndarray]) -> np.ndarray:
    """Bool per row: the node's parent is the root (-1) or a node of the same step on the accepted path."""
    parent = cols["parent"].astype(np.int64)
    width = int(max(cols["node"].max(), parent.max())) + 1
    group = _step_groups(cols)
    key = group * width + cols["node"].astype(np.int64)
    order = np.argsort(key, kind="stable")
    want = group * width + np.maximum(parent, 0)
    pos = np.searchsorted(key[order], want).clip(max=len(key) - 1)
    has_parent = parent >= 0
    if np.any(has_parent & (key[order][pos] != want)):
        raise SpecdynError("nodes table is inconsistent: some nodes name a parent absent from their step")
    return np.where(has_parent, cols["accepted_path"].astype(bool)[order][pos], True)


def _rates(rank: np.ndarray, ok: np.ndarray) -> tuple[list[float], list[int], list[int]]:
    """Per rank 0..max: (share accepted, trials, accepted) over the given parent-accepted nodes."""
    size = int(rank.max()) + 1 if rank.size else 0
    trials = np.bincount(rank, minlength=size)
    hits = np.bincount(rank, weights=ok, minlength=size).astype(np.int64)
    rates = [float(h / t) if t else 0.0 for h, t in zip(hits, trials)]
    return rates, trials.tolist(), hits.tolist()


def domain_vector(domain: str, rank, depth, accepted, min_observations: int) -> AcceptanceVector:
    """The vector of one domain from its parent-accepted nodes (rank, depth, accepted_path arrays)."""
    rates, trials, hits = _rates(rank, accepted)
    usable = next((k for k, t in enumerate(trials) if t < min_observations), len(trials))
    if usable == 0:
        have = trials[0] if trials else 0
        raise SpecdynError(
            f"domain {domain!r} has {have} parent-accepted observations of rank 0; at least {min_observations} "
            f"are needed (record more prompts or lower --min-observations)"
        )
    vec = AcceptanceVector(domain, rates, trials, hits, usable, min_observations)
    for d in np.unique(depth).tolist():
        vec.depth_rates[d], vec.depth_trials[d], _ = _rates(rank[depth == d], accepted[depth == d])
    return vec


def acceptance_vectors(nodes, min_observations: int = DEFAULT_MIN_OBSERVATIONS) -> dict[str, AcceptanceVector]:
    """Per domain (sorted by name), the :class:`AcceptanceVector` estimated from a nodes table.

    Raises :class:`SpecdynError` when a domain has fewer than ``min_observations`` parent-accepted nodes
    of rank 0; higher ranks with fewer observations are left out of ``p`` (see ``usable``)."""
    if min_observations < 1:
        raise SpecdynError(f"min_observations must be >= 1 (got {min_observations})")
    cols = _columns(nodes)
    if cols["node"].size == 0:
        raise SpecdynError("the nodes table is empty: no records to estimate acceptance from")
    mask = parent_accepted(cols)
    domains = cols["domain"].astype(str)
    out = {}
    for dom in sorted(set(domains.tolist())):
        sel = mask & (domains == dom)
        out[dom] = domain_vector(dom, cols["rank"][sel].astype(np.int64), cols["depth"][sel].astype(np.int64),
                                 cols["accepted_path"][sel].astype(np.int64), min_observations)
    return out
