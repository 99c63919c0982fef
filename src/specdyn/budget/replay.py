"""The run's own steps priced by the cost model: what its drafter actually did, step by step.

A static shape's cost is known in advance; early stop (``model:stop=V``), prompt lookup
(``model:lookup=N``, ``lookup``) and dynamic trees make each step's tree and number of draft passes
depend on the text. So the run's own drafter is priced on its recorded steps: step s with ``n_s`` nodes,
``P_s`` draft passes (the ``draft_passes`` record) and ``I_s`` internal nodes (nodes with children)
costs

    t_draft(1) + sum over its other passes of t_draft(q) + t_target(n_s + 1)
      = [P_s > 0] * (P_s * a_d + b_d * (1 + I_s)) + a_t + b_t * (n_s + 1)

with the fitted lines ``t(q) = a + b q``: the first pass feeds the pending token, each later pass the
nodes of one level that get children (a dynamic tree expands more nodes than it keeps; the kept ones
are counted). Predicted tokens per second is ``(1 + mean accepted) / mean step seconds`` over the
domain's steps. Runs recorded before ``draft_passes`` existed count one pass per tree level for a draft
model (exact for static trees) and none for prompt lookup. Pure: records and costs in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specdyn.budget.costs import CostModel
from specdyn.rundir.reader import RunData


@dataclass
class Replayed:
    """The run's own recorded steps on one domain, priced by a cost model: mean nodes, draft passes and
    accepted tokens per step (bonus not counted), predicted seconds per step and tokens per second per
    prompt (bonus counted)."""

    steps: int
    nodes_per_step: float
    draft_passes_per_step: float
    accepted_per_step: float
    step_seconds: float
    tokens_per_second: float


@dataclass
class StepShapes:
    """Per recorded step of one domain: nodes, draft passes, internal nodes and accepted tokens."""

    nodes: np.ndarray
    passes: np.ndarray
    internal: np.ndarray
    accepted: np.ndarray


def step_shapes(run: RunData, domain: int) -> StepShapes:
    """The domain's steps as recorded (see the module docstring for runs without ``draft_passes``)."""
    steps, nodes = run.steps, run.nodes
    mine, here = run.step_domain() == domain, run.node_domain() == domain
    width = int(steps.step.max(initial=0)) + 1
    keys = steps.prompt[mine] * width + steps.step[mine]  # [steps] (prompt, step) keys, unique
    order = np.argsort(keys)
    row = order[np.searchsorted(keys, nodes.prompt[here] * width + nodes.step[here], sorter=order)]  # [nodes]
    depth = np.zeros(len(keys), np.int64)
    np.maximum.at(depth, row, nodes.depth[here])
    parents = nodes.parent[here]
    pairs = np.unique(np.stack([row[parents >= 0], parents[parents >= 0]]), axis=1)  # distinct (step, parent)
    internal = np.bincount(pairs[0], minlength=len(keys))
    passes = steps.draft_passes[mine] if steps.draft_passes is not None else _passes_by_depth(run, depth)
    return StepShapes(steps.tree_size[mine], passes, internal, steps.accepted[mine])


def _passes_by_depth(run: RunData, depth: np.ndarray) -> np.ndarray:
    """Draft passes of runs recorded without ``draft_passes``: a tree level each, none without a draft model."""
    config = run.manifest.config
    return depth if config is None or config.drafter.uses_draft_model else np.zeros_like(depth)


def line(cost) -> tuple[float, float]:
    """(intercept, slope) of a fitted linear pass cost ``cost(q)``, read off at q = 1 and 2."""
    one, two = cost(1), cost(2)
    return 2 * one - two, two - one


def replay(run: RunData, domain: int, costs: CostModel, batch: int) -> Replayed | None:
    """The domain's recorded steps priced by ``costs`` at ``batch`` (None when it has no steps)."""
    shapes = step_shapes(run, domain)
    if len(shapes.nodes) == 0:
        return None
    (a_d, b_d), (a_t, b_t) = (line(lambda q, f=f: f(q, batch)) for f in (costs.draft_seconds, costs.target_seconds))
    draft = np.where(shapes.passes > 0, shapes.passes * a_d + b_d * (1 + shapes.internal), 0.0)
    seconds = float(np.mean(draft + a_t + b_t * (shapes.nodes + 1)))
    accepted = float(np.mean(shapes.accepted))
    return Replayed(len(shapes.nodes), float(np.mean(shapes.nodes)), float(np.mean(shapes.passes)), accepted,
                    seconds, (1.0 + accepted) / seconds)
