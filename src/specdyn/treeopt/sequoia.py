"""Sequoia's dynamic program: the tree with the most expected accepted tokens for a node budget, under an
acceptance vector that is the same at every depth (Sequoia's assumption) or one that depends on depth.

Score of a tree shape under an acceptance vector ``p`` (0-based ranks): the expected number of drafted
tokens accepted per step, ``sum over nodes v of prod_{r in rank path of v} p[r]`` (ranks beyond
``len(p)`` count as never accepted). The target's bonus token is NOT counted; add 1 for tokens per step.
With depth-dependent acceptance ``p[h][r]`` (a child of depth h + 1 and rank r; rows beyond ``len(p)``
count as never accepted) the product takes, for the i-th rank of the path, row i.

DP (Sequoia, our own indexing). A *subtree* is a node together with its descendants; it is scored
relative to reaching its node, the node itself counting 1. ``G[m, l, b]``: best score of a subtree of
exactly m nodes, at most l levels (the node's own level included), whose node has children of ranks
0..b-1. ``F[m, l] = max_b G[m, l, b]``.

    G[1, l, 0] = 1
    G[m, l, b] = max over y in 1..m-1 of  G[y, l, b-1] + p[b-1] * F[m-y, l-1]

(the rank b-1 child carries a subtree of m-y nodes). The draft tree hangs under the last committed
token, so the best tree of exactly n nodes and depth <= d scores ``F[n+1, d+1] - 1``. A budget n means
*at most* n nodes: the smallest tree reaching the best score among sizes 1..n is returned, so zero-value
nodes are never added (with ``p = [x, 0, ...]`` the answer is a chain).

Depth-dependent acceptance adds the depth h of the subtree's node to every index: ``G[h, l, m, b]`` uses
``p[h][b-1]`` and ``F[h+1, l-1, m-y]``. One table then holds every depth limit d (the root is h = 0 with
l = d + 1), at D/2 times the cost of the constant-vector table. O(N^2 * D^2 * K).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from specdyn.errors import SpecdynError
from specdyn.specs import TreeShape

TIE = 1e-12  # scores closer than this count as equal (the smaller tree wins)


@dataclass(frozen=True)
class BestTree:
    """The best tree of at most ``budget`` nodes and depth at most ``max_depth``.

    ``expected_accepted``: expected drafted tokens accepted per step under the acceptance vector
    (sum over nodes of the product of p over the ranks on the node's root path; bonus not counted).
    """

    budget: int
    max_depth: int
    shape: TreeShape
    expected_accepted: float


def expected_accepted(shape: TreeShape, p: list[float]) -> float:
    """Expected accepted drafted tokens per step of ``shape`` under ``p`` (bonus not counted).

    Sum over the shape's rank paths of the product of ``p[r]`` over the path; ranks >= len(p) score 0."""
    return expected_accepted_by_depth(shape, [p] * shape.depth)


def expected_accepted_by_depth(shape: TreeShape, p) -> float:
    """Expected accepted drafted tokens per step of ``shape`` when the i-th rank of a path is accepted with
    ``p[i][rank]`` (bonus not counted); ranks or depths outside ``p`` score 0."""
    def accept(i: int, r: int) -> float:
        return float(p[i][r]) if i < len(p) and r < len(p[i]) else 0.0

    return float(sum(math.prod(accept(i, r) for i, r in enumerate(path)) for path in shape.paths))


def _check(p, max_nodes: int, max_depth: int) -> None:
    if max_nodes < 1:
        raise SpecdynError(f"node budget must be >= 1 (got {max_nodes})")
    if max_depth < 1:
        raise SpecdynError(f"maximum depth must be >= 1 (got {max_depth})")
    if not p or not all(0.0 <= x <= 1.0 for x in p):
        raise SpecdynError(f"acceptance vector must be non-empty with values in [0, 1] (got {list(p)})")


def _fill(g: np.ndarray, split: np.ndarray, below: np.ndarray, p) -> None:
    """Fill ``g[m, b]`` (and the maximizing y in ``split``) for m >= 2 of one (depth, levels) cell, whose
    children are accepted with ``p[b - 1]`` and carry subtrees scored ``below[m]`` (-inf: none exists)."""
    finite = np.isfinite(below)  # [m]
    for m in range(2, g.shape[0]):
        child, ok = below[m - 1 : 0 : -1], finite[m - 1 : 0 : -1]  # [m-1]: F[m-y] for y = 1..m-1
        for b in range(1, g.shape[1]):
            cand = g[1:m, b - 1] + np.where(ok, p[b - 1] * np.where(ok, child, 0.0), -np.inf)  # [m-1]
            y = int(np.argmax(cand))
            g[m, b], split[m, b] = cand[y], y + 1


class _Table:
    """Reading the best tree off a filled table; subclasses say where the cell of (depth h, levels l) is."""

    max_nodes: int
    max_depth: int

    def cell(self, h: int, l: int) -> tuple[np.ndarray, np.ndarray]:
        """``(G[m, b], split[m, b])`` of subtrees whose node lies at depth h with at most l levels."""
        raise NotImplementedError

    def best(self, budget: int, depth: int) -> BestTree:
        """Best tree of at most ``budget`` nodes and depth at most ``depth``."""
        if not (1 <= budget <= self.max_nodes and 1 <= depth <= self.max_depth):
            raise SpecdynError(f"budget {budget} / depth {depth} outside the table (<= {self.max_nodes} / {self.max_depth})")
        full = self.cell(0, depth + 1)[0][2 : budget + 2].max(axis=1)  # [budget]: F[n+1, depth+1] for n = 1..budget
        n = 1 + int(np.argmax(full >= full.max() - TIE))
        paths = self._paths(n + 1, 0, depth + 1, ())
        return BestTree(budget, depth, TreeShape(tuple(sorted(paths, key=lambda q: (len(q), q)))), float(full[n - 1] - 1))

    def _paths(self, m: int, h: int, l: int, prefix: tuple[int, ...]) -> list[tuple[int, ...]]:
        """Rank paths below ``prefix`` (a node at depth h) of the best subtree with m nodes, at most l levels."""
        value, split = self.cell(h, l)
        b = int(np.argmax(value[m]))
        paths = []
        for k in range(b, 0, -1):  # the rank k-1 child holds the last m - y nodes
            y = int(split[m, k])
            child = prefix + (k - 1,)
            paths += [child] + self._paths(m - y, h + 1, l - 1, child)
            m = y
        return paths


@dataclass
class SequoiaTable(_Table):
    """The filled DP for one acceptance vector; :meth:`best` reads any (budget, depth) off it."""

    p: tuple[float, ...]
    max_nodes: int
    max_depth: int
    value: np.ndarray  # [m, l, b] float: G, -inf where no such subtree exists
    split: np.ndarray  # [m, l, b] int: the maximizing y of G[m, l, b]

    def cell(self, h: int, l: int) -> tuple[np.ndarray, np.ndarray]:
        return self.value[:, l], self.split[:, l]  # the same at every depth h


def sequoia_table(p: list[float], max_nodes: int, max_depth: int) -> SequoiaTable:
    """Fill the DP for budgets up to ``max_nodes`` and depths up to ``max_depth``. O(N^2 * D * K)."""
    _check(p, max_nodes, max_depth)
    m_max, l_max, k = max_nodes + 1, max_depth + 1, len(p)
    g = np.full((m_max + 1, l_max + 1, k + 1), -np.inf)  # [m, l, b]
    split = np.zeros(g.shape, dtype=np.int64)  # [m, l, b]
    for l in range(1, l_max + 1):
        g[1, l, 0] = 1.0
        _fill(g[:, l], split[:, l], g[:, l - 1].max(axis=1), p)  # below: F[m, l-1] (all -inf when l == 1)
    return SequoiaTable(tuple(p), max_nodes, max_depth, g, split)


def best_trees(p: list[float], max_nodes: int, max_depth: int) -> list[BestTree]:
    """The best tree (depth <= ``max_depth``) for every budget n = 1..``max_nodes``, in budget order."""
    table = sequoia_table(p, max_nodes, max_depth)
    return [table.best(n, max_depth) for n in range(1, max_nodes + 1)]


@dataclass
class DepthTable(_Table):
    """The filled DP for depth-dependent acceptance ``p[h][r]`` (row h: children at depth h + 1)."""

    p: tuple[tuple[float, ...], ...]
    max_nodes: int
    max_depth: int
    value: np.ndarray  # [h, l, m, b] float: G, -inf where no such subtree exists
    split: np.ndarray  # [h, l, m, b] int: the maximizing y of G[h, l, m, b]

    def cell(self, h: int, l: int) -> tuple[np.ndarray, np.ndarray]:
        return self.value[h, l], self.split[h, l]


def depth_table(p, max_nodes: int, max_depth: int) -> DepthTable:
    """Fill the depth-dependent DP for budgets up to ``max_nodes`` and every depth limit up to ``max_depth``.

    ``p[h]`` holds the acceptance by rank of children at depth h + 1; it needs ``max_depth`` rows of equal
    length."""
    rows = [list(map(float, row)) for row in p]
    if len(rows) < max_depth or len({len(r) for r in rows}) > 1:
        raise SpecdynError(f"depth-dependent acceptance needs {max_depth} rows of equal length (got {len(rows)})")
    for row in rows:
        _check(row, max_nodes, max_depth)
    m_max, k = max_nodes + 1, len(rows[0])
    g = np.full((max_depth + 1, max_depth + 2, m_max + 1, k + 1), -np.inf)  # [h, l, m, b]
    split = np.zeros(g.shape, dtype=np.int64)  # [h, l, m, b]
    for l in range(1, max_depth + 2):
        for h in range(0, max_depth + 2 - l):  # the subtree's deepest level h + l - 1 is at most max_depth
            g[h, l, 1, 0] = 1.0
            if l > 1:
                _fill(g[h, l], split[h, l], g[h + 1, l - 1].max(axis=1), rows[h])
    return DepthTable(tuple(map(tuple, rows)), max_nodes, max_depth, g, split)
