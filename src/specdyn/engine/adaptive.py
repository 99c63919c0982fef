"""Adaptive trees (``--tree adaptive:...``): every request's tree follows its own measured acceptance.

Each row of the batch carries Beta beliefs on acceptance per (depth, rank) (:class:`~specdyn.treeopt.online.
Beliefs`), started from the spec's prior. After every step the row learns from each position the acceptance
walk reached and the draft expanded: the token the step emitted there (an accepted child or the bonus) has
some rank r among the draft's top ``branch`` tokens at that position (or none), and the rank-r child is
the one verification accepts there, drafted or not (greedy: the target's argmax; sampling with these
deterministic children: the point-mass rule descends to the child carrying the emitted token). So every
rank's cell gets one trial per such position, a success for rank r only: ranks the tree left out are
observed too. Every ``every`` steps the row's tree is re-solved: Sequoia's DP with the posterior means as
depth-dependent acceptance, every node budget and depth limit priced with the cost model, the fastest
predicted tree kept (:class:`~specdyn.treeopt.online.Planner`). Drafting reuses
:class:`~specdyn.engine.proposers.DraftModelProposer` with one shape per row.

Children are the draft's top-ranked tokens, deterministic at every temperature, so verification is lossless
(greedy) or exact (sampling: the point-mass rule). A step's shape depends only on earlier steps' outcomes,
never on the current step's draws, which is all the exactness argument needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from specdyn.engine.proposers import DraftModelProposer
from specdyn.engine.timing import measure_timings
from specdyn.engine.tree import ROOT, DraftTree
from specdyn.specs import AdaptiveTree, TreeShape
from specdyn.treeopt.costs import CostModel
from specdyn.treeopt.online import Beliefs, Planner

STARTUP_REPEATS = 2  # timed passes per size when no profile cost model is given (a short measurement)


@dataclass
class Drafted:
    """A row's last step, kept until its emitted tokens are in the context: the committed length it was
    drafted at, the draft's ranked tokens at each expanded position (node index, ROOT for the top), and
    the accepted path."""

    context_len: int
    ranked: dict[int, list[int]]
    path: list[int] = field(default_factory=list)


@dataclass
class RowState:
    """One request's beliefs, current tree shape, steps learned from, and its last step."""

    beliefs: Beliefs
    shape: TreeShape
    steps: int = 0
    last: Drafted | None = None


def position_outcomes(last: Drafted, emitted: list[int], ranks: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(depth, rank, accepted) trials of a step: for each reached, expanded position (the top, then each
    accepted node the draft expanded), one trial per rank < ``ranks`` for the children's depth, a success
    for the rank of the token emitted there."""
    positions = [(ROOT, 0)] + [(node, i + 1) for i, node in enumerate(last.path)]  # (position, emitted index)
    rows = []
    for depth, (node, k) in enumerate(positions, start=1):
        if node in last.ranked and k < len(emitted):
            tokens = last.ranked[node]
            rows += [(depth, r, int(r < len(tokens) and tokens[r] == emitted[k])) for r in range(ranks)]
    return tuple(np.array(col, dtype=np.int64) for col in zip(*rows)) if rows else (np.zeros(0, np.int64),) * 3


class AdaptiveProposer(DraftModelProposer):
    """A draft model drafting each row's own tree, re-solved from the row's acceptance every ``spec.every``
    steps. Row state follows the batch through ``add_rows`` / ``select_rows``."""

    def __init__(self, model, spec: AdaptiveTree, costs: CostModel, stop: float = 0.0, full_stats: bool = True):
        self.spec, self.planner = spec, Planner(costs, spec.nodes, spec.depth)
        self.prior = Beliefs.from_prior(spec.prior)
        self._start: dict[int, TreeShape] = {}  # batch size -> the prior's tree
        super().__init__(model, self.start_shape(1), stop=stop, full_stats=full_stats)
        self.rows: list[RowState] = []
        self._ranked: dict[int, dict[int, list[int]]] = {}  # row -> expanded position -> ranked tokens

    def start_shape(self, batch: int) -> TreeShape:
        """The tree every request starts with (the prior's best) at this batch size."""
        if batch not in self._start:
            self._start[batch] = self.planner.choose(self.prior.mean, batch).shape
        return self._start[batch]

    def row_shapes(self, rows: int) -> list[TreeShape]:
        return [r.shape for r in self.rows]

    def add_rows(self, contexts):
        super().add_rows(contexts)
        shape = self.start_shape(len(self.rows) + len(contexts))
        self.rows += [RowState(self.prior.copy(), shape) for _ in contexts]

    def select_rows(self, rows):
        super().select_rows(rows)
        self.rows = [self.rows[i] for i in rows]

    def propose(self, contexts, rngs=None):
        for row, ctx in zip(self.rows, contexts):
            self._learn(row, ctx)
        self._ranked = {}
        trees = super().propose(contexts, rngs)
        for b, (row, ctx) in enumerate(zip(self.rows, contexts)):
            row.last = Drafted(len(ctx), self._ranked.get(b, {}))
        return trees

    def _level_top(self, flat, shapes, at_least=1):
        """The level's statistics, wide enough to also keep each expanded node's top ``branch`` tokens (what
        its position teaches the beliefs, whatever the shape drafted there)."""
        top = super()._level_top(flat, shapes, max(at_least, self.spec.branch))
        for (b, f), tokens in zip(flat, top.tokens[:, : self.spec.branch].tolist()):
            self._ranked.setdefault(b, {})[f.node] = tokens
        return top

    def commit(self, paths):
        super().commit(paths)
        for row, path in zip(self.rows, paths):
            row.last.path = list(path)

    def _learn(self, row: RowState, context: list[int]) -> None:
        """Learn from the row's last step (its tokens are now in ``context``); re-solve every ``every`` steps."""
        if row.last is None:
            return
        row.beliefs.observe(*position_outcomes(row.last, context[row.last.context_len:], self.spec.branch))
        row.steps, row.last = row.steps + 1, None
        if row.steps % self.spec.every == 0:
            row.shape = self.planner.choose(row.beliefs.mean, len(self.rows)).shape


def adaptive_costs(spec: AdaptiveTree, draft_model, target_model, batches: list[int]) -> CostModel:
    """The profile's cost model when it has one; else a short measurement of these models now, at query sizes
    up to the spec's node budget and at ``batches`` (sizes between are read off the fitted lines)."""
    if spec.profile is not None and spec.profile.costs is not None:
        return CostModel.from_json(dict(spec.profile.costs))
    sizes = sorted({1, 2, 4, 8, spec.nodes + 1})
    measured = measure_timings(draft_model, target_model, sizes=sizes, batches=sorted(set(batches)), repeats=STARTUP_REPEATS,
                               info={"measured_at": "startup of an adaptive-tree decoder"})
    return CostModel.from_timings(measured.timings, measured.context_tokens, measured.info)
