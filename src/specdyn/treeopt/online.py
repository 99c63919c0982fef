"""Online tree choice for adaptive trees: Beta beliefs on acceptance per (depth, rank), updated from a
request's verification outcomes, and the tree with the most predicted tokens per second under their means.

Each reached node is one Bernoulli trial of its (depth, rank) cell: its parent position was reached by the
acceptance walk, and it succeeds when the node is accepted. Under greedy verification with top-ranked
children, whether the rank-r child matches the target does not depend on which siblings were drafted, so
the trials of a cell are exchangeable whatever trees the request used. Cells the trees never contain learn
only through the other depths of their rank (see :class:`Beliefs`); a rank the trees never contain keeps
its prior.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, logit

from specdyn.prior import AcceptancePrior
from specdyn.specs import TreeShape
from specdyn.treeopt.costs import CostModel, step_seconds
from specdyn.treeopt.sequoia import depth_table, expected_accepted_by_depth

EDGE = 1e-4  # prior means are kept inside [EDGE, 1 - EDGE] so that their log-odds are finite


@dataclass
class Beliefs:
    """One request's beliefs on acceptance per cell (depth d + 1, rank r): the prior's ``mean[d, r]`` and
    ``weight[d, r]`` (pseudo-observations) and the request's own ``hits`` and ``trials``.

    A cell's posterior is Beta(weight * centre + hits, weight * (1 - centre) + misses), where ``centre`` is
    the prior mean shifted on the log-odds scale by how far this request's rate for the same rank at the
    *other* depths (pooled, with the prior's rank rate as its own prior) lies from the prior's: a request
    that beats the prior at depth 1 is expected to beat it at depths it has not tried yet, by the same
    odds ratio. Without that, a cell the trees never contain keeps its prior, and trees would never grow
    where the prior is pessimistic. Leaving the cell's own depth out keeps its data from counting twice.
    """

    prior_mean: np.ndarray  # [depth, ranks]
    prior_weight: np.ndarray  # [depth, ranks]
    hits: np.ndarray  # [depth, ranks]
    trials: np.ndarray  # [depth, ranks]

    @classmethod
    def from_prior(cls, prior: AcceptancePrior) -> Beliefs:
        mean = np.clip(np.array(prior.mean, dtype=float), EDGE, 1.0 - EDGE)  # [depth, ranks]
        return cls(mean, np.array(prior.weight, dtype=float), np.zeros(mean.shape), np.zeros(mean.shape))

    def copy(self) -> Beliefs:
        return Beliefs(self.prior_mean, self.prior_weight, self.hits.copy(), self.trials.copy())

    def observe(self, depths, ranks, accepted) -> None:
        """Add trials: node depths (1 = top level), sibling ranks and whether each was accepted; nodes outside
        the grid are ignored."""
        d, r, ok = (np.asarray(x, dtype=np.int64) for x in (depths, ranks, accepted))  # [trials]
        inside = (d >= 1) & (d <= self.hits.shape[0]) & (r >= 0) & (r < self.hits.shape[1])  # [trials]
        np.add.at(self.hits, (d[inside] - 1, r[inside]), ok[inside])
        np.add.at(self.trials, (d[inside] - 1, r[inside]), 1)

    def centre(self) -> np.ndarray:
        """Each cell's prior mean shifted by the request's odds ratio at the other depths, ``[depth, ranks]``."""
        weight = self.prior_weight.mean(axis=0)  # [ranks]: the rank-level prior is worth one cell
        base = (self.prior_weight * self.prior_mean).sum(axis=0) / self.prior_weight.sum(axis=0)  # [ranks]
        other_hits, other_trials = self.hits.sum(axis=0) - self.hits, self.trials.sum(axis=0) - self.trials
        rate = (other_hits + weight * base) / (other_trials + weight)  # [depth, ranks]
        return expit(logit(self.prior_mean) + logit(np.clip(rate, EDGE, 1.0 - EDGE)) - logit(base))

    @property
    def alpha(self) -> np.ndarray:
        return self.prior_weight * self.centre() + self.hits

    @property
    def beta(self) -> np.ndarray:
        return self.prior_weight * (1.0 - self.centre()) + self.trials - self.hits

    @property
    def mean(self) -> np.ndarray:
        """Posterior mean acceptance per cell, ``[depth, ranks]``."""
        return (self.prior_weight * self.centre() + self.hits) / (self.prior_weight + self.trials)


@dataclass(frozen=True)
class Choice:
    """A tree priced under the beliefs: expected accepted drafted tokens per step (bonus not counted),
    predicted seconds per step and tokens per second (bonus counted, as in :mod:`specdyn.budget.plan`)."""

    shape: TreeShape
    expected_accepted: float
    step_seconds: float
    tokens_per_second: float


def nearest_batch(costs: CostModel, batch: int) -> int:
    """The measured batch size closest to ``batch`` (ties: the larger)."""
    return min(costs.batches, key=lambda b: (abs(b - batch), -b))


@dataclass
class Planner:
    """Sequoia's tree (depth-dependent acceptance) of every node budget <= ``max_nodes`` and depth limit <=
    ``max_depth``, priced with the cost model at the nearest measured batch size; the fastest wins
    (ties: the smaller, then the shallower tree)."""

    costs: CostModel
    max_nodes: int
    max_depth: int

    def choose(self, p: np.ndarray, batch: int) -> Choice:
        """The fastest predicted tree when children are accepted with ``p[d, r]`` (``[depth, ranks]``)."""
        table = depth_table(p, self.max_nodes, self.max_depth)
        shapes = {t.shape.paths: t.shape for d in range(1, self.max_depth + 1)
                  for n in range(1, self.max_nodes + 1) for t in [table.best(n, d)]}
        b = nearest_batch(self.costs, batch)
        priced = [self.price(s, p, b) for s in shapes.values()]
        return max(priced, key=lambda c: (c.tokens_per_second, -c.shape.size, -c.shape.depth))

    def price(self, shape: TreeShape, p: np.ndarray, batch: int) -> Choice:
        expected, seconds = expected_accepted_by_depth(shape, p), step_seconds(shape, self.costs, batch)
        return Choice(shape, expected, seconds, (1.0 + expected) / seconds)
