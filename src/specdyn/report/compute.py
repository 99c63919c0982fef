"""Compute every number of the report from a loaded run (definitions: docs/report.md).

All confidence intervals are 95% percentile intervals from a prompt-level bootstrap: prompts are
resampled with replacement within each domain (stratified: domain sizes are fixed by the suite), and
overall statistics pool the domain resamples. Every statistic is a function of per-prompt sums
(:mod:`specdyn.report.stats`), registered by :mod:`acceptance`, :mod:`entropy` and :mod:`analyses`, so
B resamples cost one matrix product per domain whatever the number of nodes. A group with fewer than 2
finished prompts gets no CI.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specdyn.report import acceptance, analyses, entropy
from specdyn.report.acceptance import AcceptanceSamples
from specdyn.report.breakdowns import breakdowns, categories
from specdyn.report.entropy import EntropySamples
from specdyn.report.factors import FactorCells, factor_cells
from specdyn.report.notions import Notion
from specdyn.report.predictors import predictors
from specdyn.report.prepare import FEW_PROMPTS, MIN_PROMPTS_FOR_CI, Prepared, consistency_notes, prepare
from specdyn.report.runinfo import run_info
from specdyn.report.schema import BootstrapInfo, GroupMetrics, Metrics
from specdyn.report.stats import Group, Resampled, Resampler, SumsLayout
from specdyn.rundir.reader import RunData
from specdyn.stats import DEFAULT_RESAMPLES
from specdyn.suites.prompts import Prompt


@dataclass
class GroupSamples:
    """A domain's bootstrap samples of the statistics the claims test."""

    acceptance: AcceptanceSamples
    entropy: EntropySamples


@dataclass
class Computed:
    """The report's numbers, the domains' samples for the claims, and claim (a)'s reached-node cells
    (outcome ``accepted_local``, and ``accept_prob`` for the sensitivity analysis)."""

    metrics: Metrics
    samples: dict[str, GroupSamples]
    cells: dict[Notion, FactorCells]


def compute(run: RunData, n_boot: int = DEFAULT_RESAMPLES, seed: int = 0,
            suite: list[Prompt] | None = None) -> Computed:
    """All statistics of ``run`` with ``n_boot`` prompt-level bootstrap resamples (seeded). ``suite``: the
    run's suite (for the prompts' categories), if known."""
    prep = prepare(run)
    notes = list(run.notes) + consistency_notes(prep)
    layout, rows = SumsLayout(prep.n_prompts), analyses.binned_rows(prep)
    acceptance.add_sums(layout, prep)
    entropy.add_sums(layout, prep)
    analyses.add_sums(layout, rows)
    resampler = Resampler(layout, layout.matrix(), n_boot, MIN_PROMPTS_FOR_CI)
    groups = _domain_groups(prep, resampler, seed, notes)
    domains, samples = {}, {}
    for name, group in groups.items():
        domains[name], samples[name] = _group(prep, group, "dom", rows)
    overall, _ = _group(prep, _pooled(list(groups.values()), layout, prep.n_prompts), "all", rows)
    metrics = Metrics(run_info(run), notes, BootstrapInfo(n_boot, seed), domains, overall,
                      breakdowns(prep, resampler, categories(run, suite), seed), predictors(prep))
    return Computed(metrics, samples, {n: _cells(prep, n) for n in (Notion.LOCAL, Notion.PROB)})


def _domain_groups(prep: Prepared, resampler: Resampler, seed: int, notes: list[str]) -> dict[str, Group]:
    """Bootstrap each domain's prompts independently (one seeded stream per domain)."""
    run = prep.run
    streams = np.random.SeedSequence(seed).spawn(len(run.domains))
    groups = {}
    for d, name in enumerate(run.domains):
        members = np.flatnonzero(run.prompts.domain == d)
        groups[name] = resampler.group(members, np.random.default_rng(streams[d]))
        if len(members) < MIN_PROMPTS_FOR_CI:
            notes.append(f"Domain {name!r} has {len(members)} finished prompt(s): no confidence intervals.")
        elif len(members) < FEW_PROMPTS:
            notes.append(f"Domain {name!r} has only {len(members)} finished prompts: its bootstrap CIs "
                         "are rough.")
    return groups


def _pooled(groups: list[Group], layout: SumsLayout, n_prompts: int) -> Group:
    """Every prompt: the domains' resamples pooled (a stratified resample of all prompts)."""
    zero = Resampled(layout, np.zeros_like(groups[0].sums.full), np.zeros_like(groups[0].sums.boot))
    return Group(sum((g.sums for g in groups), start=zero), np.arange(n_prompts), n_prompts >= MIN_PROMPTS_FOR_CI)


def _group(prep: Prepared, group: Group, scope: str, rows) -> tuple[GroupMetrics, GroupSamples]:
    accepted, accepted_samples = acceptance.acceptance(prep, group)
    entropies, entropy_samples = entropy.entropy(prep, group, scope)
    return (GroupMetrics(accepted, entropies, analyses.analyses(group, rows)),
            GroupSamples(accepted_samples, entropy_samples))


def _cells(prep: Prepared, notion: Notion) -> FactorCells:
    nodes = prep.run.nodes
    return factor_cells(nodes.prompt, nodes.depth, nodes.rank, prep.y[notion], prep.reached,
                        prep.run.prompts.domain)
