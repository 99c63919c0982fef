"""The report's numbers as typed objects, and their JSON form (``metrics.json``).

Every key :func:`to_json` writes is a field name below (or a name the data supply: domains, sources,
categories, depth and rank levels), and every field is defined in docs/report.md ("metrics.json"); a test
checks that. Estimates are :class:`specdyn.stats.Estimate` (``value``, ``ci_low``, ``ci_high``: a 95%
prompt-bootstrap interval, ``null`` when undefined). Dictionaries keyed by an enum are written with the
enum's value as key. A field marked ``flat`` is merged into its parent object.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, is_dataclass
from enum import Enum
from pathlib import Path

from specdyn.report.notions import Entropy, Measure, Notion
from specdyn.report.runinfo import RunInfo
from specdyn.report.verdicts import ClaimResult
from specdyn.stats import Estimate

SCHEMA = "specdyn.report/2"


def flat(**kwargs):
    """A dataclass field whose object's keys are written into the parent object."""
    return field(metadata={"flat": True}, **kwargs)


@dataclass
class Counted(Estimate):
    """An estimate with the number of units it rests on (the subclass names the unit)."""

    @classmethod
    def of(cls, est: Estimate, count: int):
        return cls(est.value, est.ci_low, est.ci_high, int(count))


@dataclass
class NodeRate(Counted):
    """An estimate among a set of nodes, with their number."""

    nodes: int


@dataclass
class TrialRate(Counted):
    """An estimate among a set of trials (tree positions the walk reached that have children)."""

    trials: int


@dataclass
class Ceiling:
    """The largest value a measure can take given the trees drafted, and whether the estimate's 95% CI
    reaches it (within 2%, relative)."""

    cap: float
    at_ceiling: bool


@dataclass
class Weighting:
    """A rate pooled over its units (nodes, trials, steps) and the mean of the prompts' own rates."""

    pooled: Estimate
    prompt_weighted: Estimate
    difference: Estimate  # prompt_weighted minus pooled


@dataclass
class Acceptance:
    """Acceptance of one group of prompts (a domain, or all of them) under every notion."""

    nodes: int
    steps: int
    prompts: int
    trials: int
    acceptance_level: Estimate
    acceptance_level_by_depth: dict[str, TrialRate]
    acceptance_local: Estimate
    acceptance_path: Estimate
    accept_prob: Estimate
    accepted_per_step: Estimate
    accepted_per_step_with_bonus: Estimate
    depth_profile: dict[str, NodeRate]
    depth_profile_path: dict[str, NodeRate]
    depth_profile_accept_prob: dict[str, NodeRate]
    rank_profile: dict[str, NodeRate]
    rank_acceptance_vector: dict[str, NodeRate]
    ceilings: dict[Measure, Ceiling]
    depth_ceilings: dict[Measure, dict[str, Ceiling]]
    prompt_weighted: dict[Measure, Weighting]

    def rate(self, measure: Measure) -> Estimate:
        return getattr(self, measure.value)


@dataclass
class Histogram:
    edges: list[float]
    counts: list[int]


@dataclass
class Distribution:
    """An entropy's distribution over a group's nodes (nats)."""

    mean: Estimate
    quantiles: dict[str, float]
    histogram: Histogram


@dataclass
class Correlations:
    """Node-level correlations between an entropy and acceptance under each notion."""

    pearson: dict[Entropy, dict[Notion, Estimate]]
    spearman: dict[Entropy, dict[Notion, Estimate]]


@dataclass
class Parts:
    """A correlation over rows and its within-prompt and between-prompt parts."""

    total: Estimate
    within_prompt: Estimate
    between_prompt: Estimate


@dataclass
class Bin:
    """One bin of a binned analysis: its edges, the mean of the binned quantity, how many rows it holds,
    and rates (per measure) among them."""

    low: float
    high: float
    mean: float
    count: int
    rates: dict[Measure, Estimate]


@dataclass
class Binned:
    """Rates within bins of a quantity ``x``; ``unit`` says what ``count`` counts. ``unavailable``: why
    the analysis cannot be done on this run (then ``bins`` is empty)."""

    x: str
    unit: str
    unavailable: str | None = None
    bins: list[Bin] = field(default_factory=list)


@dataclass
class EntropyMetrics:
    """Entropy distributions and how entropy relates to acceptance, for one group of prompts."""

    draft_entropy: Distribution
    target_entropy: Distribution
    pearson_draft_entropy_accepted_local: Estimate
    correlations: Correlations
    trial_correlations: dict[Entropy, Parts]
    rank_correlations: dict[str, NodeRate]
    entropy_bins: dict[Entropy, Binned]

    def distribution(self, source: Entropy) -> Distribution:
        return getattr(self, source.value)


@dataclass
class Analyses:
    """Acceptance against the draft's probability, the position in the output and the TV distance."""

    calibration: Binned
    output_position: Binned
    draft_target_tv: Binned


@dataclass
class GroupMetrics:
    """Everything the report says about one group of prompts (written as one flat object)."""

    acceptance: Acceptance = flat()
    entropy: EntropyMetrics = flat()
    analyses: Analyses = flat()


@dataclass
class BreakdownRow:
    """Acceptance of the prompts sharing a source (or a category)."""

    domains: list[str]
    prompts: int
    nodes: int
    trials: int
    acceptance_level: Estimate
    acceptance_local: Estimate
    accept_prob: Estimate
    accepted_per_step: Estimate


@dataclass
class Breakdown:
    unavailable: str | None
    groups: dict[str, BreakdownRow] = field(default_factory=dict)


@dataclass
class Breakdowns:
    source: Breakdown
    category: Breakdown


@dataclass
class ModelFit:
    """A logistic regression of node acceptance: size, fit, share of deviance explained, health."""

    parameters: int
    loglik: float
    mcfadden_r2: float
    converged: bool
    separation: bool
    rank_deficient: bool


@dataclass
class Predictors:
    summary: str
    models: dict[Notion, dict[str, ModelFit]]


@dataclass
class BootstrapInfo:
    resamples: int
    seed: int
    level: float = 0.95
    unit: str = "prompt"
    stratified_by: str = "domain"
    method: str = "percentile"


@dataclass
class Metrics:
    """Every number of the report: ``metrics.json``."""

    run: RunInfo
    notes: list[str]
    bootstrap: BootstrapInfo
    domains: dict[str, GroupMetrics]
    overall: GroupMetrics
    breakdowns: Breakdowns
    predictors: Predictors
    claims: list[ClaimResult] = field(default_factory=list)
    generated: str = ""
    schema: str = SCHEMA

    def groups(self) -> dict[str, GroupMetrics]:
        """The domains, then every prompt together under the name "overall (all domains)"."""
        return {**self.domains, "overall (all domains)": self.overall}


def to_json(obj):
    """The JSON form of a report object: dataclasses as objects (``flat`` fields merged), enums as their
    values, NaN and infinity as None, objects with a ``to_json`` method through it."""
    if hasattr(obj, "to_json"):
        return to_json(obj.to_json())
    if is_dataclass(obj):
        return _dataclass_json(obj)
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, dict):
        return {_key(k): to_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):  # numpy scalar
        return to_json(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _dataclass_json(obj) -> dict:
    out = {}
    for f in fields(obj):
        value = to_json(getattr(obj, f.name))
        if f.metadata.get("flat"):
            out.update(value)
        else:
            out[f.name] = value
    return out


def _key(key) -> str:
    return key.value if isinstance(key, Enum) else str(key)
