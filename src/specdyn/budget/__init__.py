"""Budget advice from recorded acceptance: per-domain acceptance vectors, Sequoia's best tree for a
node budget, a measured cost model, and the per-domain choice of tree; plus the run comparison.

See ``docs/budget.md`` for the formulas, files and commands.
"""

from specdyn.budget.acceptance import DEFAULT_MIN_OBSERVATIONS, AcceptanceVector, acceptance_vectors, parent_accepted
from specdyn.budget.costs import COSTS_FILE, CostModel, LinearFit, Role, Timing, fit_linear, measure_costs
from specdyn.budget.plan import Candidate, DomainPlan, draft_passes, plan_domain, price, step_seconds
from specdyn.budget.runs import DomainStats, RunTables, domain_stats, load_run
from specdyn.budget.sequoia import BestTree, SequoiaTable, best_trees, expected_accepted, sequoia_table

__all__ = [
    "DEFAULT_MIN_OBSERVATIONS", "AcceptanceVector", "acceptance_vectors", "parent_accepted",
    "COSTS_FILE", "CostModel", "LinearFit", "Role", "Timing", "fit_linear", "measure_costs",
    "Candidate", "DomainPlan", "draft_passes", "plan_domain", "price", "step_seconds",
    "DomainStats", "RunTables", "domain_stats", "load_run",
    "BestTree", "SequoiaTable", "best_trees", "expected_accepted", "sequoia_table",
]
