"""Acceptance vectors from node records: how often the k-th ranked child is accepted once its parent is.

This is the input of the Sequoia tree search (see :mod:`specdyn.budget.sequoia`). Everything here is a
pure function of a run's node columns (:class:`~specdyn.rundir.reader.RunData`); whether a node's parent
was accepted is the reader's ``parent_reached``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from specdyn.errors import SpecdynError
from specdyn.rundir.reader import RunData

DEFAULT_MIN_OBSERVATIONS = 200
POOLED = "all domains"  # the name of the vector that pools every domain (`specdyn budget --global`, profiles)


@dataclass
class AcceptanceVector:
    """Per-rank acceptance of one domain, with the counts behind every estimate.

    ``rates[k]`` (Sequoia's ``p[k+1]``): among nodes of sibling rank k whose parent was accepted (the
    parent is the last committed token, or the parent node has ``accepted_path``), the share with
    ``accepted_path``. ``trials[k]`` counts those nodes and ``accepted[k]`` the accepted ones.
    ``usable`` is the number of leading ranks with at least ``min_observations`` trials; only those
    enter :attr:`p`. ``depth_rates[d][k]`` / ``depth_trials[d][k]`` / ``depth_accepted[d][k]`` are the same
    estimate restricted to nodes of depth d (a diagnostic of Sequoia's assumption that p does not depend
    on depth, and the prior of adaptive trees).
    """

    domain: str
    rates: list[float]
    trials: list[int]
    accepted: list[int]
    usable: int
    min_observations: int
    depth_rates: dict[int, list[float]] = field(default_factory=dict)
    depth_trials: dict[int, list[int]] = field(default_factory=dict)
    depth_accepted: dict[int, list[int]] = field(default_factory=dict)

    @property
    def p(self) -> list[float]:
        """The vector used for tree search: rates of the ranks with enough observations."""
        return self.rates[: self.usable]


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
        vec.depth_rates[d], vec.depth_trials[d], vec.depth_accepted[d] = _rates(rank[depth == d], accepted[depth == d])
    return vec


def acceptance_vectors(run: RunData, min_observations: int = DEFAULT_MIN_OBSERVATIONS) -> dict[str, AcceptanceVector]:
    """Per domain (sorted by name), the :class:`AcceptanceVector` estimated from the run's nodes.

    Raises :class:`SpecdynError` when a domain has fewer than ``min_observations`` parent-accepted nodes
    of rank 0; higher ranks with fewer observations are left out of ``p`` (see ``usable``)."""
    return {name: domain_acceptance(run, name, min_observations) for name in sorted(run.domains)}


def domain_acceptance(run: RunData, name: str, min_observations: int = DEFAULT_MIN_OBSERVATIONS) -> AcceptanceVector:
    """The :class:`AcceptanceVector` of domain ``name`` of ``run`` (same rules as :func:`acceptance_vectors`)."""
    return _vector(run, name, run.node_domain() == run.domains.index(name), min_observations)


def pooled_vector(run: RunData, min_observations: int = DEFAULT_MIN_OBSERVATIONS) -> AcceptanceVector:
    """One :class:`AcceptanceVector` of every domain's nodes together (named :data:`POOLED`)."""
    return _vector(run, POOLED, np.ones(len(run.nodes.rank), dtype=bool), min_observations)


def _vector(run: RunData, name: str, nodes_of: np.ndarray, min_observations: int) -> AcceptanceVector:
    """The vector of the parent-accepted nodes among ``nodes_of`` (a mask over the run's nodes)."""
    if min_observations < 1:
        raise SpecdynError(f"min_observations must be >= 1 (got {min_observations})")
    nodes = run.nodes
    sel = nodes.parent_reached & nodes_of
    return domain_vector(name, nodes.rank[sel], nodes.depth[sel], nodes.accepted_path[sel].astype(np.int64), min_observations)
