"""Budget advice from recorded acceptance: per-domain acceptance vectors, Sequoia's best tree for a
node budget, a measured cost model, and the per-domain choice of tree; plus the run comparison.

Pure: records (read by :mod:`specdyn.rundir`) and timings (taken by :mod:`specdyn.engine.timing`) in,
advice out. See ``docs/budget.md`` for the formulas, files and commands.
"""

from specdyn.budget.acceptance import DEFAULT_MIN_OBSERVATIONS, AcceptanceVector, acceptance_vectors
from specdyn.budget.costs import COSTS_FILE, CostModel, LinearFit, fit_linear
from specdyn.budget.measured import DomainStats, PromptThroughput, domain_stats, per_prompt_throughput
from specdyn.budget.plan import Candidate, DomainPlan, draft_passes, plan_domain, price, step_seconds
from specdyn.budget.sequoia import BestTree, SequoiaTable, best_trees, expected_accepted, sequoia_table

__all__ = [
    "DEFAULT_MIN_OBSERVATIONS", "AcceptanceVector", "acceptance_vectors",
    "COSTS_FILE", "CostModel", "LinearFit", "fit_linear",
    "DomainStats", "PromptThroughput", "domain_stats", "per_prompt_throughput",
    "Candidate", "DomainPlan", "draft_passes", "plan_domain", "price", "step_seconds",
    "BestTree", "SequoiaTable", "best_trees", "expected_accepted", "sequoia_table",
]
