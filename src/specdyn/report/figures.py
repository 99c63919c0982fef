"""The report's figures on acceptance and entropy, drawn from the typed metrics and returned as PNG bytes;
:data:`FIGURES` lists every figure of the report (the reviewer analyses are in :mod:`analysis_figures`)."""

from __future__ import annotations

import numpy as np

from specdyn.report import analysis_figures
from specdyn.report.notions import Entropy, Measure, Notion
from specdyn.report.plots import binned_panel, counts, figure, grouped_bars, legend_below, png, profile_panel, tick
from specdyn.report.schema import Metrics
from specdyn.safetext import visible


def acceptance_level(metrics: Metrics) -> bytes:
    """Per-level acceptance α per domain (left) and per trial depth (right)."""
    fig, (left, right) = figure(2)
    groups = metrics.groups()
    grouped_bars(left, list(groups), {"α": [g.acceptance.acceptance_level for g in groups.values()]})
    left.tick_params(axis="x", labelrotation=20)
    left.set_ylabel("α = successes / trials")
    left.set_title("Per-level acceptance α (the headline rate)")
    left.set_ylim(0, 1.05)
    profile_panel(right, metrics, lambda g: g.acceptance.acceptance_level_by_depth, "α among trials at that depth",
                  "depth of the children a trial tests")
    right.set_title("α by depth")
    legend_below(fig, right)
    return png(fig, metrics)


def accepted_length(metrics: Metrics) -> bytes:
    """Accepted tokens per step per domain, without and with the bonus token, and the tree's cap."""
    groups = metrics.groups()
    fig, (ax,) = figure(width=max(6, 1.6 * len(groups) + 2))
    accepted = [g.acceptance for g in groups.values()]
    grouped_bars(ax, list(groups), {"bonus token not counted": [a.accepted_per_step for a in accepted],
                                    "bonus token counted": [a.accepted_per_step_with_bonus for a in accepted]},
                 [tick(n, g) for n, g in groups.items()])
    caps = [g.acceptance.ceilings[Measure.PER_STEP].cap for g in groups.values()]
    ax.hlines(caps, np.arange(len(caps)) - 0.4, np.arange(len(caps)), colors="black", linestyles=":",
              label="cap of the drafted trees (no bonus)")
    ax.axhline(1.0, color="black", linestyle="--", linewidth=1, label="1.0 token per step")
    ax.set_ylabel("accepted tokens per step")
    ax.set_title("Expected accepted length per step (from steps' accepted)")
    legend_below(fig, ax)
    return png(fig, metrics)


def depth_profile(metrics: Metrics) -> bytes:
    """Node acceptance rate per tree depth, per domain (accepted_local and accepted_path), with caps."""
    fig, axes = figure(2)
    for ax, notion, key in ((axes[0], Notion.LOCAL, "depth_profile"), (axes[1], Notion.PATH, "depth_profile_path")):
        profile_panel(ax, metrics, lambda g, k=key: getattr(g.acceptance, k),
                      f"{notion.value} rate (share of nodes)", "tree depth")
        caps = metrics.overall.acceptance.depth_ceilings[notion.measure]
        if caps:
            depths = np.array([float(k) for k in caps])
            ax.plot(depths, [c.cap for c in caps.values()], "k:", label="cap (all trees)")
        ax.set_title(f"{notion.label(metrics.run.sampled)} by depth")
    legend_below(fig, axes[0])
    return png(fig, metrics)


def rank_vector(metrics: Metrics) -> bytes:
    """Sibling-rank acceptance vector: P(rank-k child accepted | its parent was reached), per domain."""
    fig, (ax,) = figure(width=8)
    profile_panel(ax, metrics, lambda g: g.acceptance.rank_acceptance_vector, "P(child accepted | parent reached)",
                  "sibling rank (0 = the draft's first child)")
    ax.set_title("Sibling-rank acceptance vector (accepted_local among verified nodes)")
    legend_below(fig, ax)
    return png(fig, metrics)


def entropy_acceptance(metrics: Metrics) -> bytes:
    """accepted_local rate against entropy (decile bins), per domain, for draft and target entropy."""
    fig, axes = figure(2, sharey=True)
    for ax, src in zip(axes, Entropy):
        binned_panel(ax, metrics, lambda g, s=src: g.entropy.entropy_bins[s], Measure.LOCAL,
                     f"{src.label} at the parent position (nats; bin mean)", "accepted_local rate (share of nodes)")
        ax.set_title(f"accepted_local rate vs {src.label}")
    legend_below(fig, axes[0])
    return png(fig, metrics)


def entropy_distributions(metrics: Metrics) -> bytes:
    """Histograms (share of nodes per bin) of draft and target entropy, per domain, with mean and CI."""
    fig, axes = figure(2)
    for ax, src in zip(axes, Entropy):
        for name, group in metrics.domains.items():
            dist = group.entropy.distribution(src)
            heights = np.array(dist.histogram.counts)
            m = dist.mean
            ci = "" if not np.isfinite(m.ci_low) else f" [{m.ci_low:.2f}, {m.ci_high:.2f}]"
            ax.stairs(heights / max(heights.sum(), 1), np.array(dist.histogram.edges),
                      label=f"{visible(name)}: mean {m.value:.2f}{ci} nats; {counts(group)}")
        ax.set_xlabel(f"{src.label} (nats; last bin includes the top 0.5%)")
        ax.set_ylabel("share of nodes")
        ax.set_title(f"{src.label} distribution")
        ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, -0.22 - 0.07 * len(metrics.domains)))
    return png(fig, metrics)


FIGURES = {
    "acceptance_level": acceptance_level,
    "accepted_length": accepted_length,
    "depth_profile": depth_profile,
    "rank_vector": rank_vector,
    "entropy_distributions": entropy_distributions,
    "entropy_acceptance": entropy_acceptance,
    **analysis_figures.FIGURES,
}
