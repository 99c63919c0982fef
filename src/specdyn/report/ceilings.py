"""Ceilings: the largest value each acceptance measure can take, given the tree shapes that were drafted.

For one step's tree with n nodes, P *positions* (the root and every node with at least one child) and
depth D (its deepest node):

- ``accepted_local`` (share of nodes): the target has one argmax per position, siblings carry distinct
  tokens, so at most one child per position is locally accepted: at most P of n nodes. Reachable: any
  one child per position may be the argmax. A full tree with branching B has P/n ≈ 1/B (7/14 = 0.5 at
  depth 3, branching 2); a chain has 1.
- ``accepted_path`` (share of nodes): the accepted nodes form one root path: at most D of n nodes,
  reached along a deepest path (3/14 for depth 3, branching 2).
- ``accepted_per_step`` (bonus excluded): at most D; with the bonus token, D + 1.
- per depth k: ``accepted_local`` at most (positions whose children are at depth k) / (nodes at depth k);
  ``accepted_path`` at most 1 / (nodes at depth k).
- per-level acceptance α and ``accept_prob``: 1 (every trial can succeed; min(1, p/q) can be 1 for every
  node).

Over a run, steps reach their caps independently, so the cap of a mean pooled over nodes is
Σ_steps (capped count) / Σ_steps n, and that of a mean over steps is the mean of the per-step caps
(steps without drafted nodes count 0 there, when the number of steps is given).

A value near its cap says little about the draft: the shape, not the models, limits it, and a measure
squeezed against a cap also loses variance, which shrinks its correlations with anything else. The
report flags a domain whose 95% interval reaches within ``CEILING_TOL`` (relative) of the cap.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from specdyn.report.levels import NodeTable, step_keys
from specdyn.stats import Estimate

CEILING_TOL = 0.02  # a CI upper bound within 2% (relative) of the cap "reaches" it


@dataclass
class Ceilings:
    """Caps of every acceptance measure for a set of drafted trees (module docstring)."""

    acceptance_local: float
    acceptance_path: float
    accepted_per_step: float
    acceptance_level: float = 1.0
    accept_prob: float = 1.0
    local_by_depth: dict[int, float] = field(default_factory=dict)
    path_by_depth: dict[int, float] = field(default_factory=dict)

    @property
    def accepted_per_step_with_bonus(self) -> float:
        return self.accepted_per_step + 1.0


def at_ceiling(est: Estimate, cap: float, rel_tol: float = CEILING_TOL) -> bool:
    """True when the estimate's CI upper bound (its value when there is no CI) is within ``rel_tol``
    of ``cap`` or above it."""
    high = est.ci_high if np.isfinite(est.ci_high) else est.value
    return bool(np.isfinite(high) and high >= cap * (1 - rel_tol))


def _distinct(step: np.ndarray, other: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Depth of each distinct (step, other) pair (pairs are assumed to share a depth)."""
    span = int(other.max() - other.min()) + 1
    _, first = np.unique(step * span + (other - other.min()), return_index=True)
    return depth[first]


def _per_level(levels: np.ndarray, nodes_at: np.ndarray, depths: np.ndarray) -> dict[int, float]:
    return {int(k): float(np.sum(depths == k) / n) for k, n in zip(levels, nodes_at)}


def run_ceilings(nodes: NodeTable, prompts: np.ndarray | None = None, n_steps: int | None = None) -> Ceilings:
    """Caps for the trees drafted for ``prompts`` (prompt indices; all when None). ``n_steps``: the
    number of steps of those prompts including steps without drafted nodes (default: steps with nodes)."""
    rows = np.arange(len(nodes.prompt)) if prompts is None else np.flatnonzero(np.isin(nodes.prompt, prompts))
    step = np.unique(step_keys(nodes)[rows], return_inverse=True)[1]
    depth, parent = nodes.depth[rows], nodes.parent[rows]
    deepest = np.zeros(step.max() + 1)
    np.maximum.at(deepest, step, depth)
    n_steps = len(deepest) if n_steps is None else n_steps
    positions = _distinct(step, parent, depth)  # children's depth at each position
    levels, nodes_at = np.unique(depth, return_counts=True)
    return Ceilings(
        acceptance_local=len(positions) / len(rows), acceptance_path=deepest.sum() / len(rows),
        accepted_per_step=deepest.sum() / n_steps if n_steps else float("nan"),
        local_by_depth=_per_level(levels, nodes_at, positions),
        path_by_depth=_per_level(levels, nodes_at, _distinct(step, depth, depth)))


def shape_ceilings(parent: np.ndarray) -> Ceilings:
    """Caps for a static tree shape given by its parent array (-1: child of the committed context;
    parents listed before their children)."""
    parent = np.asarray(parent)
    depth = np.zeros(len(parent), np.int64)
    for v, p in enumerate(parent):
        depth[v] = 1 if p < 0 else depth[p] + 1
    n = len(parent)
    zeros = np.zeros(n, np.int64)
    return run_ceilings(NodeTable(zeros, zeros, np.arange(n), parent, depth, zeros.astype(bool)))
