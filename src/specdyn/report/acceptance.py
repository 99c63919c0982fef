"""Acceptance of a group of prompts under every notion: per-level α (the headline), node rates, accepted
length per step, depth and rank profiles, the caps the tree shapes put on them, and prompt-weighted
versus pooled rates.

Definitions (docs/report.md): α = successes / trials over the group's trials (:mod:`levels`);
``acceptance_local`` / ``acceptance_path`` = share of nodes; ``accept_prob`` = mean over nodes;
``accepted_per_step`` = mean of steps' ``accepted`` (bonus token not counted), with the bonus + 1.
Pooled rates divide sums over the group's units; prompt-weighted rates average each prompt's own rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specdyn.report.ceilings import Ceilings, at_ceiling, run_ceilings
from specdyn.report.levels import SUCCESSES, TRIALS, add_level_sums, alpha, alpha_by_depth
from specdyn.report.notions import Measure, Notion
from specdyn.report.prepare import Capped, Prepared
from specdyn.report.schema import Acceptance, Ceiling, NodeRate, TrialRate, Weighting
from specdyn.report.stats import Group, SumsLayout, ratio
from specdyn.stats import Estimate, Sampled

WEIGHTED = (Measure.LEVEL, Measure.LOCAL, Measure.PROB, Measure.PER_STEP)  # prompt-weighted vs pooled


@dataclass
class AcceptanceSamples:
    """The bootstrap samples the claims test: α, accepted tokens per step, node rates per notion."""

    level: Sampled
    per_step: Sampled
    rate: dict[Notion, Sampled]


# ----------------------------------------------------------------------------------------------------
# Per-prompt sums


def add_sums(layout: SumsLayout, prep: Prepared) -> None:
    run, nodes = prep.run, prep.run.nodes
    n = prep.n_prompts
    layout.add("n", np.bincount(nodes.prompt, minlength=n))
    layout.add("steps", np.bincount(run.steps.prompt, minlength=n))
    layout.add("accepted", np.bincount(run.steps.prompt, weights=run.steps.accepted, minlength=n))
    layout.add("depth:n", _cells(prep, prep.depth))
    layout.add("rank:n", _cells(prep, prep.rank))
    layout.add("rankc:n", _cells(prep, prep.rank, prep.reached))
    layout.add("rankc:acc", _cells(prep, prep.rank, prep.reached & nodes.accepted_local))
    for notion, y in prep.y.items():
        layout.add(f"y:{notion.value}", np.bincount(nodes.prompt, weights=y, minlength=n))
        layout.add(f"depth:{notion.value}", _cells(prep, prep.depth, y))
        layout.add(f"rank:{notion.value}", _cells(prep, prep.rank, y))
    add_level_sums(layout, prep.levels)
    _add_prompt_rates(layout, prep)


def _cells(prep: Prepared, levels: Capped, weights=None) -> np.ndarray:
    width = len(levels.values)
    w = None if weights is None else np.asarray(weights, dtype=float)
    flat = np.bincount(prep.run.nodes.prompt * width + levels.index, weights=w, minlength=prep.n_prompts * width)
    return flat.reshape(prep.n_prompts, width)


def _add_prompt_rates(layout: SumsLayout, prep: Prepared) -> None:
    """Each prompt's own rate of every WEIGHTED measure (0 when undefined) and whether it is defined."""
    own = lambda name: layout.block(name).sum(axis=1)  # noqa: E731
    fractions = {Measure.LEVEL: (SUCCESSES, TRIALS), Measure.LOCAL: ("y:accepted_local", "n"),
                 Measure.PROB: ("y:accept_prob", "n"), Measure.PER_STEP: ("accepted", "steps")}
    for measure in WEIGHTED:
        num, den = (own(name) for name in fractions[measure])
        layout.add(f"pw:{measure.value}", np.nan_to_num(ratio(num, den)))
        layout.add(f"pw:{measure.value}:has", (den > 0).astype(float))


# ----------------------------------------------------------------------------------------------------
# Statistics of a group


def _first(g, name):
    return g(name)[..., 0]


def level(group: Group) -> Sampled:
    """Per-level acceptance α of the group's trials."""
    return group.keep(alpha(group.sums))


def rate(group: Group, notion: Notion) -> Sampled:
    """Share of the group's nodes accepted under ``notion`` (mean ``accept_prob`` for PROB)."""
    return group.sample(lambda g: ratio(_first(g, f"y:{notion.value}"), _first(g, "n")))


def per_step(group: Group) -> Sampled:
    """Drafted tokens accepted per step (steps' ``accepted``), bonus token not counted."""
    return group.sample(lambda g: ratio(_first(g, "accepted"), _first(g, "steps")))


@dataclass
class Counts:
    """How many nodes, steps and trials a group's prompts have."""

    nodes: int
    steps: int
    trials: int


def counts(group: Group) -> Counts:
    return Counts(*(int(group.total(name).sum()) for name in ("n", "steps", TRIALS)))


def _profile(group: Group, num: str, den: str, levels: Capped) -> dict[str, NodeRate]:
    point, boot = group.columns(lambda g: ratio(g(num), g(den)))
    counts = group.total(den)
    return {levels.label(v): NodeRate.of(Sampled(point[j], boot[:, j]).estimate(), counts[j])
            for j, v in enumerate(levels.values) if counts[j] > 0}


def _levels_by_depth(prep: Prepared, group: Group) -> dict[str, TrialRate]:
    counts = dict(zip(prep.levels.depths.tolist(), group.total(TRIALS)))
    depth = prep.depth
    return {depth.label(d): TrialRate.of(group.keep(s).estimate(), counts[d])
            for d, s in alpha_by_depth(group.sums, prep.levels).items()}


def _weighting(group: Group, measure: Measure, pooled: Sampled) -> Weighting:
    key = f"pw:{measure.value}"
    mean = group.sample(lambda g: ratio(_first(g, key), _first(g, f"{key}:has")))
    diff = Sampled(mean.point - pooled.point, mean.boot - pooled.boot)
    return Weighting(pooled.estimate(), mean.estimate(), diff.estimate())


def group_ceilings(prep: Prepared, group: Group) -> Ceilings:
    """Caps of the measures for the trees drafted for the group's prompts."""
    steps = int(np.isin(prep.run.steps.prompt, group.members).sum())
    return run_ceilings(prep.tree, group.members, steps)


def _ceilings(caps: Ceilings, est: dict[Measure, Estimate]) -> dict[Measure, Ceiling]:
    return {m: Ceiling(getattr(caps, m.value), at_ceiling(e, getattr(caps, m.value))) for m, e in est.items()}


def _depth_ceilings(caps: dict[int, float], profile: dict[str, NodeRate]) -> dict[str, Ceiling]:
    return {label: Ceiling(caps[int(label)], at_ceiling(e, caps[int(label)]))
            for label, e in profile.items() if label.isdigit() and int(label) in caps}


def acceptance(prep: Prepared, group: Group) -> tuple[Acceptance, AcceptanceSamples]:
    """The group's acceptance numbers and the samples the claims need."""
    s = AcceptanceSamples(level(group), per_step(group), {n: rate(group, n) for n in Notion})
    est = {Measure.LEVEL: s.level.estimate(), Measure.PER_STEP: s.per_step.estimate(),
           Measure.PER_STEP_BONUS: s.per_step.estimate().shifted(1.0),
           **{n.measure: s.rate[n].estimate() for n in Notion}}
    profiles = {n: _profile(group, f"depth:{n.value}", "depth:n", prep.depth) for n in Notion}
    caps = group_ceilings(prep, group)
    pooled = {Measure.LEVEL: s.level, Measure.PER_STEP: s.per_step, **{n.measure: s.rate[n] for n in Notion}}
    n = counts(group)
    result = Acceptance(
        nodes=n.nodes, steps=n.steps, prompts=len(group.members), trials=n.trials,
        acceptance_level=est[Measure.LEVEL], acceptance_level_by_depth=_levels_by_depth(prep, group),
        acceptance_local=est[Measure.LOCAL], acceptance_path=est[Measure.PATH], accept_prob=est[Measure.PROB],
        accepted_per_step=est[Measure.PER_STEP], accepted_per_step_with_bonus=est[Measure.PER_STEP_BONUS],
        depth_profile=profiles[Notion.LOCAL], depth_profile_path=profiles[Notion.PATH],
        depth_profile_accept_prob=profiles[Notion.PROB],
        rank_profile=_profile(group, "rank:accepted_local", "rank:n", prep.rank),
        rank_acceptance_vector=_profile(group, "rankc:acc", "rankc:n", prep.rank),
        ceilings=_ceilings(caps, est),
        depth_ceilings={Measure.LOCAL: _depth_ceilings(caps.local_by_depth, profiles[Notion.LOCAL]),
                        Measure.PATH: _depth_ceilings(caps.path_by_depth, profiles[Notion.PATH])},
        prompt_weighted={m: _weighting(group, m, pooled[m]) for m in WEIGHTED})
    return result, s
