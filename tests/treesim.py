"""A small simulator of tree-speculation runs for the statistics tests (not the report's synthetic runs).

Every step drafts the same full tree (``depth`` levels, ``branch`` children per node, breadth-first
order; ``branch=1`` is a chain). Prompt p of domain d has a per-level acceptance rate a_p drawn from a
Beta distribution with mean ``means[d]`` and the given ``concentration`` (inf: a_p = means[d]). At a
position whose children sit at depth k the target accepts one of them with probability
sigmoid(logit(a_p) + depth_slope * (k - 1)); the accepted one is the rank-0 child with probability
``rank0`` and otherwise one of the other ranks uniformly. At most one sibling is locally accepted;
``accepted_path`` follows along root paths, as the engine records it. Unreached positions are drawn too
(``accepted_local`` is defined for every node).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import expit, logit

from specdyn.report.levels import NodeTable
from specdyn.rundir.reader import parent_reached
from synthetic import full_tree  # noqa: F401  (re-exported for the tests)


@dataclass
class TreeSim:
    means: tuple[float, ...]
    prompts: int = 20  # per domain
    steps: tuple[int, int] = (10, 20)  # steps per prompt, uniform on this closed range
    concentration: float = 5.0
    depth_slope: float = 0.0
    rank0: float = 0.75
    depth: int = 3
    branch: int = 2
    seed: int = 0


@dataclass
class SimRun:
    """Node columns (any row order) plus what the report reads alongside them."""

    nodes: NodeTable
    rank: np.ndarray
    accepted_local: np.ndarray
    prompt_domain: np.ndarray  # domain index per prompt
    step_prompt: np.ndarray  # prompt of each step
    accepted: np.ndarray  # accepted tokens per step (bonus excluded)
    rate: np.ndarray  # true per-prompt a_p

    @property
    def n_prompts(self) -> int:
        return len(self.prompt_domain)

    @property
    def reached(self) -> np.ndarray:
        return reached_of(self.nodes)


def reached_of(nodes: NodeTable) -> np.ndarray:
    """The run folder reader's ``parent_reached`` of these node columns."""
    return parent_reached(nodes.prompt, nodes.step, nodes.node, nodes.parent, nodes.accepted_path)


def _rates(sim: TreeSim, rng) -> tuple[np.ndarray, np.ndarray]:
    domain = np.repeat(np.arange(len(sim.means)), sim.prompts)
    mean = np.asarray(sim.means, dtype=float)[domain]
    if math.isinf(sim.concentration):
        return domain, mean
    return domain, rng.beta(mean * sim.concentration, (1 - mean) * sim.concentration)


def _chosen(sim: TreeSim, rng, prob: np.ndarray) -> np.ndarray:
    """Rank of the accepted child at each position; ``branch`` when none is accepted."""
    other = 1 + rng.integers(0, max(sim.branch - 1, 1), prob.shape)
    rank = np.where((rng.random(prob.shape) < sim.rank0) | (sim.branch == 1), 0, other)
    return np.where(rng.random(prob.shape) < prob, rank, sim.branch)


def simulate(sim: TreeSim) -> SimRun:
    rng = np.random.default_rng(sim.seed)
    parent, depth, rank = full_tree(sim.depth, sim.branch)
    domain, rate = _rates(sim, rng)
    n_steps = rng.integers(sim.steps[0], sim.steps[1] + 1, len(domain))
    step_prompt = np.repeat(np.arange(len(domain)), n_steps)
    child_depth = np.concatenate([[1], depth + 1])  # position q = parent + 1
    eta = logit(np.clip(rate[step_prompt], 1e-9, 1 - 1e-9))[:, None] + sim.depth_slope * (child_depth - 1)
    chosen = _chosen(sim, rng, expit(eta))
    local = chosen[:, parent + 1] == rank[None, :]
    path = np.zeros_like(local)
    for v in range(len(parent)):
        path[:, v] = local[:, v] & (True if parent[v] < 0 else path[:, parent[v]])
    step = np.concatenate([np.arange(n) for n in n_steps])
    size = len(parent)
    nodes = NodeTable(prompt=np.repeat(step_prompt, size), step=np.repeat(step, size),
                      node=np.tile(np.arange(size), len(step)), parent=np.tile(parent, len(step)),
                      depth=np.tile(depth, len(step)), accepted_path=path.ravel())
    return SimRun(nodes, np.tile(rank, len(step)), local.ravel(), domain, step_prompt, path.sum(axis=1), rate)


def shuffled(run: SimRun, seed: int = 0) -> SimRun:
    """The same run with node rows in random order."""
    perm = np.random.default_rng(seed).permutation(len(run.rank))
    n = run.nodes
    nodes = NodeTable(n.prompt[perm], n.step[perm], n.node[perm], n.parent[perm], n.depth[perm],
                      n.accepted_path[perm])
    return SimRun(nodes, run.rank[perm], run.accepted_local[perm], run.prompt_domain, run.step_prompt,
                  run.accepted, run.rate)
