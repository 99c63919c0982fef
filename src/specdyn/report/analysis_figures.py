"""Figures of the analyses a reviewer expects: entropy-acceptance correlation per sibling rank and within
/ between prompts, prompt-weighted versus pooled rates, draft calibration, per source and category,
acceptance against the position in the output and against the draft-target TV distance. An analysis the
run cannot have is drawn as a panel saying why."""

from __future__ import annotations

import numpy as np

from specdyn.report.acceptance import WEIGHTED
from specdyn.report.notions import Entropy, Measure
from specdyn.report.plots import (
    binned_panel, figure, grouped_bars, legend_below, png, profile_panel, unavailable_panel,
)
from specdyn.report.schema import Breakdown, Metrics
from specdyn.report.verdicts import WEAK


def rank_correlations(metrics: Metrics) -> bytes:
    """Pearson r of draft entropy and acceptance among reached nodes of each sibling rank, per domain."""
    fig, (ax,) = figure(width=8)
    profile_panel(ax, metrics, lambda g: g.entropy.rank_correlations, "Pearson r (draft entropy, accepted)",
                  "sibling rank (0 = the draft's first child)")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_ylim(-1, 1)
    ax.set_title("Entropy-acceptance correlation per sibling rank (nodes whose parent was reached)")
    legend_below(fig, ax)
    return png(fig, metrics)


def correlation_parts(metrics: Metrics) -> bytes:
    """Trial-level r (entropy at a position, acceptance there): total, within and between prompts."""
    fig, axes = figure(2, sharey=True)
    names = list(metrics.domains)
    for ax, src in zip(axes, Entropy):
        parts = [g.entropy.trial_correlations[src] for g in metrics.domains.values()]
        grouped_bars(ax, names, {"total": [p.total for p in parts], "within prompts": [p.within_prompt for p in parts],
                                 "between prompts": [p.between_prompt for p in parts]})
        ax.axhspan(-WEAK, 0, color="#cde", alpha=0.5, zorder=0, label=f"weak negative (-{WEAK:g}, 0)")
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_title(f"Pearson r ({src.label} at a trial's position, trial success)")
    axes[0].set_ylabel("Pearson r")
    axes[0].set_ylim(-1, 1)
    legend_below(fig, axes[0])
    return png(fig, metrics)


def prompt_weighting(metrics: Metrics) -> bytes:
    """Each measure pooled over units versus averaged over prompts, per domain."""
    fig, axes = figure(len(WEIGHTED), width=4.2)
    names = list(metrics.domains)
    for ax, measure in zip(axes, WEIGHTED):
        rows = [g.acceptance.prompt_weighted[measure] for g in metrics.domains.values()]
        grouped_bars(ax, names, {"pooled": [r.pooled for r in rows],
                                 "prompt-weighted": [r.prompt_weighted for r in rows]})
        ax.set_title(measure.label(metrics.run.sampled), fontsize=10)
    legend_below(fig, axes[0])
    return png(fig, metrics)


def calibration(metrics: Metrics) -> bytes:
    """Share of nodes accepted against the draft's probability of their token (bins of 0.1)."""
    fig, (ax,) = figure(width=7)
    if binned_panel(ax, metrics, lambda g: g.analyses.calibration, Measure.LOCAL,
                    "draft_prob of the token (temperature 1; bin mean)", "accepted_local rate"):
        ax.plot([0, 1], [0, 1], "k:", label="calibrated (rate = probability)")
        ax.set_xlim(0, 1)
        legend_below(fig, ax)
    ax.set_title("Draft calibration")
    return png(fig, metrics)


def _breakdown_panel(ax, part: Breakdown, title: str) -> None:
    if part.unavailable:
        unavailable_panel(ax, part.unavailable)
    else:
        names = list(part.groups)
        grouped_bars(ax, names, {"α": [r.acceptance_level for r in part.groups.values()]})
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("α (per-level acceptance)")
    ax.set_title(title)


def breakdowns(metrics: Metrics) -> bytes:
    """α per prompt source and per category."""
    fig, axes = figure(2, width=6.5)
    _breakdown_panel(axes[0], metrics.breakdowns.source, "α per source")
    _breakdown_panel(axes[1], metrics.breakdowns.category, "α per category")
    for ax in axes:
        ax.tick_params(axis="x", labelrotation=30)
    return png(fig, metrics)


def output_position(metrics: Metrics) -> bytes:
    """α against the number of tokens generated before the step."""
    fig, (ax,) = figure(width=8)
    if binned_panel(ax, metrics, lambda g: g.analyses.output_position, Measure.LEVEL,
                    "tokens generated before the step (output_pos; bin mean)", "α among the trials in the bin"):
        legend_below(fig, ax)
    ax.set_title("Acceptance against the position in the output")
    return png(fig, metrics)


def draft_target_tv(metrics: Metrics) -> bytes:
    """α against the TV distance between draft and target at the trial's position."""
    fig, (ax,) = figure(width=7)
    if binned_panel(ax, metrics, lambda g: g.analyses.draft_target_tv, Measure.LEVEL,
                    "draft-target TV distance at the position (bin mean)", "α among the trials in the bin"):
        tv = np.linspace(0, 1, 11)
        ax.plot(tv, 1 - tv, "k:", label="1 - TV (speculative sampling, one sampled draft token)")
        ax.set_xlim(0, 1)
        legend_below(fig, ax)
    ax.set_title("Acceptance against the draft-target distance")
    return png(fig, metrics)


FIGURES = {
    "rank_correlations": rank_correlations,
    "correlation_parts": correlation_parts,
    "prompt_weighting": prompt_weighting,
    "calibration": calibration,
    "breakdowns": breakdowns,
    "output_position": output_position,
    "draft_target_tv": draft_target_tv,
}
