"""Per-domain tree choice: the Sequoia tree of every (budget, depth), priced by the measured cost model.

For a tree shape T with n nodes and depth d, fed to ``batch`` rows at once:

    step_seconds(T) = t_draft(1) + sum_{l=1}^{d-1} t_draft(f_l) + t_target(n + 1)
    tokens_per_second(T) = (1 + expected_accepted(T)) / step_seconds(T)

``f_l`` is the number of depth-l nodes of T that have children (the frontier the draft model scores at
level l + 1); the first draft pass feeds the one pending committed token; the target pass feeds the
pending token plus the n tree nodes. ``t_draft(q)`` / ``t_target(q)`` are the fitted pass costs for q
query tokens per row at this batch size (:class:`~specdyn.treeopt.costs.CostModel`;
:func:`~specdyn.treeopt.costs.step_seconds` computes this). The 1 is the bonus
token, so this is tokens emitted per second per prompt; engine overhead outside the two models'
forward passes (verification, bookkeeping, records) is not modelled, so predictions run high.

Cheaper drafters: the same search runs with each drafter the cost model has timings of
(:meth:`~specdyn.budget.costs.CostModel.for_drafter`), under the run's acceptance vector: an int8 or
truncated-vocabulary draft is priced at its own measured pass cost *assuming the acceptance the run
recorded*; their rounding and cut vocabulary move acceptance a little, which only a run with that drafter
measures. The run's own steps are also priced as recorded (:mod:`specdyn.budget.replay`): that is how early
stop and prompt lookup, whose trees vary step by step, are covered.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from specdyn.budget.acceptance import AcceptanceVector
from specdyn.budget.measured import DomainStats
from specdyn.budget.replay import Replayed
from specdyn.specs import TreeShape
from specdyn.treeopt.costs import CostModel, draft_passes, step_seconds
from specdyn.treeopt.sequoia import expected_accepted, sequoia_table

__all__ = ["Candidate", "DomainPlan", "draft_passes", "plan_domain", "preference", "price", "step_seconds"]


@dataclass
class Candidate:
    """A tree priced by the cost model: expected accepted tokens per step (bonus not counted), predicted
    seconds per step and predicted tokens per second per prompt (bonus counted, see the module docstring).
    ``budget`` / ``max_depth`` are the limits it was searched under (0 for a tree not from the search)."""

    budget: int
    max_depth: int
    shape: TreeShape
    expected_accepted: float
    step_seconds: float
    tokens_per_second: float


@dataclass
class DrafterChoice:
    """A drafter priced on one domain: the best tree under its measured pass costs (the run's acceptance
    vector assumed) and the run's own recorded steps priced with its costs."""

    drafter: str
    best: Candidate
    replayed: Replayed | None = None


@dataclass
class DomainPlan:
    """The recommendation for one domain and what it is compared with.

    ``baseline_tokens_per_second``: plain target-only decoding, ``1 / t_target(1)``. ``own``: the run's
    own tree under the same vector and cost model (None for dynamic trees); ``measured``: what the run
    measured on this domain; ``replayed``: the run's recorded steps priced by the cost model (early stop,
    lookup and dynamic trees included); ``drafters``: the cheaper drafters the cost model timed, each
    priced the same way (fastest first)."""

    domain: str
    vector: AcceptanceVector
    best: Candidate
    candidates: list[Candidate]
    baseline_tokens_per_second: float
    own: Candidate | None = None
    measured: DomainStats | None = None
    replayed: Replayed | None = None
    drafters: list[DrafterChoice] = field(default_factory=list)


def price(shape: TreeShape, p: list[float], costs: CostModel, batch: int, budget: int = 0, depth: int = 0) -> Candidate:
    """A :class:`Candidate` for ``shape`` under acceptance vector ``p``."""
    expected, seconds = expected_accepted(shape, p), step_seconds(shape, costs, batch)
    return Candidate(budget, depth, shape, expected, seconds, (1.0 + expected) / seconds)


def preference(c: Candidate) -> tuple:
    """Sort key: fastest predicted first; among equals the smaller, then the shallower tree."""
    return (-c.tokens_per_second, c.shape.size, c.shape.depth)


def candidates(vector: AcceptanceVector, costs: CostModel, max_nodes: int, max_depth: int, batch: int) -> list[Candidate]:
    """The best tree of every budget n <= max_nodes and depth d <= max_depth, priced."""
    table = sequoia_table(vector.p, max_nodes, max_depth)
    return [price(t.shape, vector.p, costs, batch, n, d)
            for d in range(1, max_depth + 1) for n in range(1, max_nodes + 1) for t in [table.best(n, d)]]


def plan_domain(vector: AcceptanceVector, costs: CostModel, max_nodes: int, max_depth: int, batch: int,
                own_shape: TreeShape | None = None, measured: DomainStats | None = None) -> DomainPlan:
    """Price the best tree of every budget n <= max_nodes and depth d <= max_depth; keep the fastest
    (ties: the smaller tree)."""
    cands = candidates(vector, costs, max_nodes, max_depth, batch)
    own = price(own_shape, vector.p, costs, batch) if own_shape is not None else None
    return DomainPlan(vector.domain, vector, min(cands, key=preference), cands, 1.0 / costs.target_seconds(1, batch),
                      own, measured)


def drafter_choice(drafter: str, vector: AcceptanceVector, costs: CostModel, max_nodes: int, max_depth: int,
                   batch: int, replayed: Replayed | None = None) -> DrafterChoice:
    """``drafter`` priced on ``vector``'s domain with ``costs`` (already that drafter's, :meth:`CostModel.for_drafter`)."""
    return DrafterChoice(drafter, min(candidates(vector, costs, max_nodes, max_depth, batch), key=preference), replayed)


def fastest_drafter(plan: DomainPlan) -> DrafterChoice | None:
    """The cheaper drafter predicted fastest when it beats the run's own best tree, else None."""
    faster = [d for d in plan.drafters if d.best.tokens_per_second > plan.best.tokens_per_second]
    return max(faster, key=lambda d: d.best.tokens_per_second) if faster else None
