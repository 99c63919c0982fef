"""Entropy and acceptance for a group of prompts: distributions, node-level Pearson and Spearman
correlations under every notion, the trial-level correlation (entropy at a trial's position vs its
success) split into within-prompt and between-prompt parts, the correlation per sibling rank among
reached nodes, and acceptance within entropy deciles.

Spearman's rho is the Pearson correlation of mid-ranks scaled to (-0.5, 0.5), ranked within the domain
for a domain and over all nodes for the overall figure; for 0/1 outcomes the rank transform is affine,
so the 0/1 values are used directly. Its interval keeps the full-sample ranks fixed across resamples
(an approximation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specdyn.report.binned import BinnedRows, add_binned, read_binned
from specdyn.report.levels import add_trial_pearson_sums, trial_pearson_parts
from specdyn.report.notions import Entropy, Notion
from specdyn.report.prepare import Prepared
from specdyn.report.schema import Correlations, Distribution, EntropyMetrics, Histogram, NodeRate, Parts
from specdyn.report.stats import (
    MOMENTS, Group, Moments, SumsLayout, correlation_samples, midranks, moment_sums, ratio,
)
from specdyn.stats import Sampled

HISTOGRAM_BINS = 40
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
SCOPES = ("dom", "all")  # Spearman ranks within each domain, or over all nodes


@dataclass
class EntropySamples:
    """The bootstrap samples the claims test: mean entropies, node-level and trial-level Pearson r."""

    mean: dict[Entropy, Sampled]
    pearson: dict[tuple[Entropy, Notion], Sampled]
    trial_pearson: dict[Entropy, Sampled]


def _bin_rows(prep: Prepared, src: Entropy) -> BinnedRows:
    return BinnedRows(f"bin:{src.value}", prep.run.nodes.prompt, prep.entropy_bins[src], prep.x[src],
                      {n.measure: y for n, y in prep.y.items()})


def add_sums(layout: SumsLayout, prep: Prepared) -> None:
    prompt, n = prep.run.nodes.prompt, prep.n_prompts
    ranked_y = {scope: {notion: _scaled_ranks(y, prep, scope) if notion is Notion.PROB else y
                        for notion, y in prep.y.items()} for scope in SCOPES}
    for src, x in prep.x.items():
        layout.add(f"x:{src.value}", np.column_stack([np.bincount(prompt, minlength=n),
                                                      np.bincount(prompt, weights=x, minlength=n)]))
        moments = Moments(prompt, n, x)
        for notion, y in prep.y.items():
            layout.add(f"r:{src.value}:{notion.value}", moments.with_y(y))
        for scope in SCOPES:
            ranked = Moments(prompt, n, _scaled_ranks(x, prep, scope))
            for notion, ry in ranked_y[scope].items():
                layout.add(f"rho:{scope}:{src.value}:{notion.value}", ranked.with_y(ry))
        add_trial_pearson_sums(layout, prep.trials, prep.trial_x(x), src.value)
        add_binned(layout, _bin_rows(prep, src))
    reached = prep.reached
    layout.add("rank-r", moment_sums(prompt[reached], n, prep.x[Entropy.DRAFT][reached],
                                     prep.y[Notion.LOCAL][reached], prep.rank.index[reached],
                                     len(prep.rank.values)))


def _scaled_ranks(values: np.ndarray, prep: Prepared, scope: str) -> np.ndarray:
    """Mid-ranks divided by n, minus 0.5, within each domain ("dom") or over all nodes ("all")."""
    if scope == "all":
        return midranks(values) / len(values) - 0.5
    out = np.empty(len(values))
    for d in range(len(prep.run.domains)):
        mask = prep.node_domain == d
        if mask.any():
            out[mask] = midranks(values[mask]) / mask.sum() - 0.5
    return out


def _distribution(values: np.ndarray, mean: Sampled, everything: np.ndarray) -> Distribution:
    top = float(np.quantile(everything, 0.995)) if len(everything) else 1.0
    edges = np.linspace(0.0, max(top, 1e-6), HISTOGRAM_BINS + 1)
    counts, _ = np.histogram(np.clip(values, 0.0, edges[-1]), bins=edges)
    qs = np.quantile(values, QUANTILES) if len(values) else [np.nan] * len(QUANTILES)
    return Distribution(mean.estimate(), {f"p{round(q * 100)}": float(v) for q, v in zip(QUANTILES, qs)},
                        Histogram(edges.tolist(), counts.tolist()))


def _mean(group: Group, src: Entropy) -> Sampled:
    return group.sample(lambda g: ratio(g(f"x:{src.value}")[..., 1], g(f"x:{src.value}")[..., 0]))


def _pearson(group: Group, name: str) -> Sampled:
    return group.keep(correlation_samples(group.sums, name)[0].total)


def _parts(group: Group, src: Entropy) -> Parts:
    parts = trial_pearson_parts(group.sums, src.value)
    return Parts(*(group.keep(s).estimate() for s in (parts.total, parts.within, parts.between)))


def _rank_correlations(prep: Prepared, group: Group) -> dict[str, NodeRate]:
    counts = group.total("rank-r")[0::MOMENTS]
    return {prep.rank.label(v): NodeRate.of(group.keep(parts.total).estimate(), counts[j])
            for j, (v, parts) in enumerate(zip(prep.rank.values, correlation_samples(group.sums, "rank-r")))
            if counts[j] > 0}


def entropy(prep: Prepared, group: Group, scope: str) -> tuple[EntropyMetrics, EntropySamples]:
    """The group's entropy numbers (``scope``: "dom" for a domain, "all" for every prompt)."""
    nodes = prep.node_mask(group.members)
    s = EntropySamples(
        mean={src: _mean(group, src) for src in Entropy},
        pearson={(src, n): _pearson(group, f"r:{src.value}:{n.value}") for src in Entropy for n in Notion},
        trial_pearson={src: group.keep(trial_pearson_parts(group.sums, src.value).total) for src in Entropy})
    spearman = {src: {n: _pearson(group, f"rho:{scope}:{src.value}:{n.value}").estimate() for n in Notion}
                for src in Entropy}
    pearson = {src: {n: s.pearson[src, n].estimate() for n in Notion} for src in Entropy}
    dist = {src: _distribution(prep.x[src][nodes], s.mean[src], prep.x[src]) for src in Entropy}
    metrics = EntropyMetrics(
        draft_entropy=dist[Entropy.DRAFT], target_entropy=dist[Entropy.TARGET],
        pearson_draft_entropy_accepted_local=pearson[Entropy.DRAFT][Notion.LOCAL],
        correlations=Correlations(pearson, spearman),
        trial_correlations={src: _parts(group, src) for src in Entropy},
        rank_correlations=_rank_correlations(prep, group),
        entropy_bins={src: read_binned(group, _bin_rows(prep, src), src.value, "nodes") for src in Entropy})
    return metrics, s
