"""Per-domain choice of the drafter together with the tree, across the runs `specdyn budget` is given.

Every run contributes, on every domain it decoded, one *option* for its drafter (drafter spec plus draft
adapter: :class:`~specdyn.budget.drafters.RunDrafter`), priced by the one measured cost model:

- a drafter whose tree can be any rank-path shape (the model drafter, base or distilled) gets the Sequoia
  search over its own rank vector (:func:`~specdyn.budget.plan.plan_domain`); a merged adapter costs what
  the base draft costs per pass (:class:`~specdyn.budget.costs.DraftCost`);
- a drafter whose tree follows the context (prompt lookup: it drafts what it finds, often fewer nodes than
  its tree allows, or none) is priced on its own tree as measured: ``(1 + accepted per step) /
  (draft passes + t_target(nodes per step + 1))``, its draft passes costing nothing. t_target is linear, so
  pricing the mean node count is exact under the cost model;
- a drafter the cost model cannot price yet (early exit) is left out, with the reason.

A searchable drafter's own recorded steps are priced too (:mod:`specdyn.budget.replay`: what early stop and
lookup-or-model drafting actually drafted), and, for the drafter the cost model timed, each cheaper drafter
it also timed (``--measure``: int8, int8 with a truncated head) under the same acceptance.

The option with the highest predicted tokens/s wins the domain (ties: the smaller tree).

``--global`` adds one option for every domain at once: the first run's domains pooled into one rank vector
and its Sequoia tree, with the first run's drafter (the tree for requests whose domain is unknown: one
server, one drafter; the first run is also the one whose cost model prices everything, so it is the base
the others are compared with). Pure: records and the cost model in, advice out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from specdyn.budget.acceptance import domain_acceptance, pooled_vector
from specdyn.budget.costs import CostModel, DraftCost
from specdyn.budget.drafters import RunDrafter
from specdyn.budget.measured import DomainStats, domain_stats
from specdyn.budget.plan import Candidate, DomainPlan, DrafterChoice, draft_passes, drafter_choice, plan_domain, preference
from specdyn.budget.replay import replay
from specdyn.errors import SpecdynError
from specdyn.rundir.reader import RunData
from specdyn.specs import TreeSpec


@dataclass(frozen=True)
class Search:
    """The limits of the tree search and the batch size trees are priced at."""

    max_nodes: int
    max_depth: int
    min_observations: int
    batch: int


@dataclass
class Option:
    """One run's drafter on one domain, priced: ``best`` is its predicted-fastest tree, from the Sequoia
    search (``plan``) or its own tree as measured (``plan`` None)."""

    run: str  # the run folder as given
    drafter: RunDrafter
    tree: TreeSpec  # the tree the run decoded this domain with
    best: Candidate
    measured: DomainStats | None  # None for the global option (no one domain's measurements)
    plan: DomainPlan | None = None

    @property
    def source(self) -> str:
        return "Sequoia tree for its rank vector" if self.plan else "its own tree, as measured"


@dataclass
class DomainChoice:
    """Every option on one domain, fastest predicted first, and the runs left out (with the reason)."""

    domain: str
    options: list[Option]
    baseline_tokens_per_second: float  # plain target decoding, 1 / t_target(1)
    left_out: list[str] = field(default_factory=list)

    @property
    def best(self) -> Option:
        return self.options[0]


def measured_candidate(stats: DomainStats, tree: TreeSpec, cost: DraftCost, costs: CostModel, batch: int) -> Candidate:
    """A drafter's own tree priced with its measured accepted tokens and nodes per step."""
    draft = sum(costs.drafter_seconds(cost, q, batch) for q in draft_passes(tree.shape))
    seconds = draft + costs.target_seconds(stats.nodes_per_step + 1, batch)
    return Candidate(0, 0, tree.shape, stats.accepted_per_step, seconds, (1.0 + stats.accepted_per_step) / seconds)


def option(run: RunData, label: str, domain: str, costs: CostModel, search: Search) -> Option:
    """The priced option of ``run`` on ``domain``; SpecdynError when it cannot be priced (the reason)."""
    config = run.manifest.require_config(label)
    drafter, tree, stats = RunDrafter.of(config), config.tree_for(domain), domain_stats(run, domain)
    if drafter.cost is None:
        raise SpecdynError(f"the cost model cannot price the {drafter.drafter.KIND} drafter yet")
    if not drafter.searchable:
        return Option(label, drafter, tree, measured_candidate(stats, tree, drafter.cost, costs, search.batch), stats)
    vector = domain_acceptance(run, domain, search.min_observations)
    plan = plan_domain(vector, costs, search.max_nodes, search.max_depth, search.batch, tree.shape, stats)
    index = run.domains.index(domain)
    plan.replayed = replay(run, index, costs, search.batch)
    if drafter.drafter.text == costs.info.get("drafter", drafter.drafter.text):
        plan.drafters = [cheaper_choice(run, index, vector, costs.for_drafter(d), search) for d in costs.alternatives]
    return Option(label, drafter, tree, plan.best, stats, plan)


def cheaper_choice(run: RunData, index: int, vector, costs: CostModel, search: Search) -> DrafterChoice:
    """A cheaper drafter the cost model timed besides the run's own (``budget --measure``; ``costs`` is
    already that drafter's), priced on domain ``index``'s acceptance as recorded with the run's drafter,
    and on the run's own steps."""
    drafter = costs.info["drafter"]
    return drafter_choice(drafter, vector, costs, search.max_nodes, search.max_depth, search.batch,
                          replay(run, index, costs, search.batch))


def choose_domain(domain: str, runs: list[RunData], labels: list[str], costs: CostModel, search: Search) -> DomainChoice:
    """The options of every run that decoded ``domain``; the first reason is raised when none is left."""
    options, reasons = [], {}
    for run, label in ((r, lab) for r, lab in zip(runs, labels) if domain in r.domains):
        try:
            options.append(option(run, label, domain, costs, search))
        except SpecdynError as exc:
            reasons[label] = str(exc)
    left_out = [f"{label}: {why}" for label, why in reasons.items()]
    if not options:
        raise SpecdynError(next(iter(reasons.values())) if len(reasons) == 1 else f"no run can be priced on {domain!r}: {'; '.join(left_out)}")
    baseline = 1.0 / costs.target_seconds(1, search.batch)
    return DomainChoice(domain, sorted(options, key=lambda o: preference(o.best)), baseline, left_out)


def choose(runs: list[RunData], labels: list[str], costs: CostModel, search: Search) -> list[DomainChoice]:
    """Per domain of any run (sorted), every run's priced option, fastest predicted first."""
    check_runs(runs, labels)
    return [choose_domain(d, runs, labels, costs, search) for d in sorted({d for r in runs for d in r.domains})]


def check_global(run: RunData, label: str) -> None:
    """Before any cost is read or measured: ``--global`` can search a tree for the (first) run's drafter."""
    drafter = RunDrafter.of(run.manifest.require_config(label))
    if not drafter.searchable:
        raise SpecdynError(f"--global pools the first run's domains into one Sequoia tree for its drafter, but {label} "
                           f"decoded with the {drafter.drafter.KIND} drafter; list a run of the model drafter first")


def global_option(run: RunData, label: str, costs: CostModel, search: Search) -> Option:
    """``--global``: every domain of ``run`` pooled into one rank vector, its priced Sequoia tree, and the
    run's drafter (see the module docstring). The run's own tree is priced beside it unless it decoded
    each domain with its own tree (``--domain-trees``)."""
    config = run.manifest.require_config(label)
    own = config.tree.shape if config.domain_trees is None else None
    vector = pooled_vector(run, search.min_observations)
    plan = plan_domain(vector, costs, search.max_nodes, search.max_depth, search.batch, own)
    return Option(label, RunDrafter.of(config), config.tree, plan.best, None, plan)


def _model_id(run: RunData, role: str, label: str) -> str:
    record = run.manifest.models.get(role)
    return record.weights_id if record else getattr(run.manifest.require_config(label), role)


def check_runs(runs: list[RunData], labels: list[str]) -> None:
    """Before any cost is read or measured: some run's drafter can be priced, every run has one target
    (acceptance is measured against it), and every run of a draft-model drafter one base draft (the cost
    model times one draft model)."""
    drafters = [RunDrafter.of(r.manifest.require_config(lab)) for r, lab in zip(runs, labels)]
    if all(d.cost is None for d in drafters):
        kinds = ", ".join(sorted({d.drafter.KIND for d in drafters}))
        raise SpecdynError(f"the cost model cannot price the {kinds} drafter yet; give runs of the model or lookup drafter")
    uses = [d.cost is DraftCost.DRAFT_MODEL for d in drafters]
    for role, which in (("target", [True] * len(runs)), ("draft", uses)):
        ids = {lab: _model_id(r, role, lab) for r, lab, use in zip(runs, labels, which) if use}
        if len(set(ids.values())) > 1:
            raise SpecdynError(f"the runs decoded with different {role} models ({', '.join(f'{k}: {v[:24]}' for k, v in ids.items())}); "
                               f"budget compares drafters for one target and one draft model")
