"""Compute every number of the report from a loaded run (each metrics.json key is defined in
docs/report.md; the definitions are repeated in the docstrings here).

All confidence intervals are 95% percentile intervals from a prompt-level bootstrap: prompts are
resampled with replacement within each domain (stratified: domain sizes are fixed by the suite), and
overall statistics pool the domain resamples. A domain with fewer than 2 finished prompts gets no CI.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from specdyn.rundir.reader import RunData
from specdyn.report.notions import Entropy, Notion
from specdyn.report.stats import (
    Resampled, SumsLayout, fit_logistic, lr_test, mcfadden_r2, midranks, pearson_from_sums, ratio,
    resample_group, saturated_loglik,
)
from specdyn.stats import DEFAULT_RESAMPLES, Estimate, Sampled

DEPTH_CAP = 32  # depths >= this are pooled into one level "32+"
RANK_CAP = 16  # sibling ranks >= this are pooled into one level "16+"
ENTROPY_BINS = 10  # quantile bins of entropy for the acceptance-vs-entropy curves
HISTOGRAM_BINS = 40
MIN_PROMPTS_FOR_CI = 2
FEW_PROMPTS = 20  # below this many prompts a domain's bootstrap CIs are flagged as unreliable
HEADLINE = (Entropy.DRAFT, Notion.LOCAL)


@dataclass
class Computed:
    """The report's numbers: JSON-ready ``metrics`` plus bootstrap samples the claims need."""

    metrics: dict
    samples: dict[str, dict[str, Sampled]]  # domain -> statistic -> value and aligned resamples
    r2: dict[Notion, dict[str, Sampled]]  # notion -> "domain" / "depth" / "difference"
    n_depth_levels: int
    notes: list[str] = field(default_factory=list)


@dataclass
class _Prepared:
    """Node-level arrays shared by all computations."""

    run: RunData
    node_domain: np.ndarray
    depth_levels: np.ndarray
    depth_idx: np.ndarray
    rank_levels: np.ndarray
    rank_idx: np.ndarray
    reached: np.ndarray
    y: dict[Notion, np.ndarray]
    x: dict[Entropy, np.ndarray]
    bin_edges: dict[Entropy, np.ndarray]
    bin_idx: dict[Entropy, np.ndarray]


def compute(run: RunData, n_boot: int = DEFAULT_RESAMPLES, seed: int = 0) -> Computed:
    """All statistics of ``run`` with ``n_boot`` prompt-level bootstrap resamples (seeded)."""
    prep = _prepare(run)
    notes = list(run.notes) + _consistency_notes(run, prep)
    layout = _sums(prep)
    groups = _resample_domains(run, layout, n_boot, seed, notes)
    zero = Resampled(layout, np.zeros(len(groups[0].full)), np.zeros_like(groups[0].boot))
    overall = sum(groups, start=zero)  # stratified resample of all prompts
    domains, samples = {}, {}
    for d, name in enumerate(run.domains):
        domains[name], samples[name] = _group(prep, groups[d], prep.node_domain == d, "dom",
                                              int(np.sum(run.prompts.domain == d)))
    overall_metrics, _ = _group(prep, overall, np.ones(len(prep.node_domain), bool), "all",
                                len(run.prompts.ids))
    if len(run.prompts.ids) < MIN_PROMPTS_FOR_CI:
        overall = Resampled(layout, overall.full, np.full_like(overall.boot, np.nan))
    predictors, r2 = _predictors(prep, overall, layout)
    metrics = {
        "schema": "specdyn.report/1",
        "run": _run_info(run),
        "notes": notes,
        "bootstrap": {"resamples": n_boot, "seed": seed, "level": 0.95, "unit": "prompt",
                      "stratified_by": "domain", "method": "percentile"},
        "domains": domains,
        "overall": overall_metrics,
        "predictors": predictors,
    }
    return Computed(metrics, samples, r2, len(prep.depth_levels), notes)


def _resample_domains(run: RunData, layout: SumsLayout, n_boot: int, seed: int,
                      notes: list[str]) -> list[Resampled]:
    """Bootstrap each domain's prompts independently (one seeded stream per domain)."""
    sums = layout.matrix()
    streams = np.random.SeedSequence(seed).spawn(len(run.domains))
    groups = []
    for d, name in enumerate(run.domains):
        members = np.flatnonzero(run.prompts.domain == d)
        groups.append(resample_group(layout, sums, members, n_boot, np.random.default_rng(streams[d])))
        if len(members) < MIN_PROMPTS_FOR_CI:
            notes.append(f"Domain {name!r} has {len(members)} finished prompt(s): no confidence intervals.")
        elif len(members) < FEW_PROMPTS:
            notes.append(f"Domain {name!r} has only {len(members)} finished prompts: its bootstrap CIs "
                         "are rough.")
    return groups


# ----------------------------------------------------------------------------------------------------
# Preparation


def _levels(values: np.ndarray, cap: int) -> tuple[np.ndarray, np.ndarray]:
    capped = np.minimum(values, cap)
    levels = np.unique(capped)
    return levels, np.searchsorted(levels, capped)


def level_label(level: int, cap: int) -> str:
    return f"{level}+" if level >= cap else str(int(level))


def _prepare(run: RunData) -> _Prepared:
    nodes = run.nodes
    depth_levels, depth_idx = _levels(nodes.depth, DEPTH_CAP)
    rank_levels, rank_idx = _levels(nodes.rank, RANK_CAP)
    x = {Entropy.DRAFT: nodes.draft_entropy, Entropy.TARGET: nodes.target_entropy}
    edges, bins = {}, {}
    for src, values in x.items():
        e = np.unique(np.quantile(values, np.linspace(0, 1, ENTROPY_BINS + 1)))
        edges[src] = e if len(e) > 1 else np.array([e[0], e[0]])
        bins[src] = np.clip(np.searchsorted(edges[src][1:-1], values, side="right"), 0, len(edges[src]) - 2)
    return _Prepared(
        run=run, node_domain=run.prompts.domain[nodes.prompt], depth_levels=depth_levels,
        depth_idx=depth_idx, rank_levels=rank_levels, rank_idx=rank_idx, reached=run.nodes.parent_reached,
        y={Notion.LOCAL: nodes.accepted_local.astype(float), Notion.PATH: nodes.accepted_path.astype(float),
           Notion.PROB: nodes.accept_prob},
        x=x, bin_edges=edges, bin_idx=bins,
    )


def _consistency_notes(run: RunData, prep: _Prepared) -> list[str]:
    nodes, steps, n_prompts = run.nodes, run.steps, len(run.prompts.ids)
    on_path = np.bincount(nodes.prompt, weights=nodes.accepted_path, minlength=n_prompts)
    accepted = np.bincount(steps.prompt, weights=steps.accepted, minlength=n_prompts)
    notes = []
    bad = int(np.sum(np.abs(on_path - accepted) > 0.5))
    if bad:
        notes.append(f"For {bad} prompt(s) the number of accepted_path nodes differs from the sum of "
                     "steps' `accepted`: the records are inconsistent.")
    orphans = int(np.sum(~prep.reached & (nodes.parent >= 0) & nodes.accepted_path))
    if orphans:
        notes.append(f"{orphans} node(s) are accepted_path although their parent is not: inconsistent.")
    return notes


# ----------------------------------------------------------------------------------------------------
# Per-prompt sums


def _sums(prep: _Prepared) -> SumsLayout:
    run, nodes = prep.run, prep.run.nodes
    n_prompts = len(run.prompts.ids)
    pidx = nodes.prompt
    layout = SumsLayout(n_prompts)

    def total(weights=None):
        return np.bincount(pidx, weights=weights, minlength=n_prompts)

    def cells(idx, width, weights=None):
        flat = np.bincount(pidx * width + idx, weights=weights, minlength=n_prompts * width)
        return flat.reshape(n_prompts, width)

    layout.add("n", total())
    layout.add("steps", np.bincount(run.steps.prompt, minlength=n_prompts))
    layout.add("accepted", np.bincount(run.steps.prompt, weights=run.steps.accepted, minlength=n_prompts))
    n_dom, n_depth, n_rank = len(run.domains), len(prep.depth_levels), len(prep.rank_levels)
    dom_cells = np.zeros((n_prompts, n_dom))
    dom_cells[np.arange(n_prompts), run.prompts.domain] = 1.0
    layout.add("dom:n", dom_cells * total()[:, None])
    layout.add("depth:n", cells(prep.depth_idx, n_depth))
    layout.add("rank:n", cells(prep.rank_idx, n_rank))
    layout.add("rankc:n", cells(prep.rank_idx, n_rank, prep.reached.astype(float)))
    layout.add("rankc:acc", cells(prep.rank_idx, n_rank, (prep.reached & nodes.accepted_local).astype(float)))
    for notion, y in prep.y.items():
        layout.add(f"y:{notion.value}", total(y))
        layout.add(f"dom:{notion.value}", dom_cells * total(y)[:, None])
        layout.add(f"depth:{notion.value}", cells(prep.depth_idx, n_depth, y))
        layout.add(f"rank:{notion.value}", cells(prep.rank_idx, n_rank, y))
    layout.add("yy:accept_prob", total(prep.y[Notion.PROB] ** 2))
    ranks_y = {scope: _scaled_ranks(prep.y[Notion.PROB], prep, scope) for scope in ("dom", "all")}
    for scope in ("dom", "all"):
        layout.add(f"{scope}:ry", total(ranks_y[scope]))
        layout.add(f"{scope}:ryy", total(ranks_y[scope] ** 2))
    for src, values in prep.x.items():
        xc = values - values.mean()
        layout.add(f"x:{src.value}", total(xc))
        layout.add(f"xx:{src.value}", total(xc**2))
        k = len(prep.bin_edges[src]) - 1
        layout.add(f"bin:{src.value}:n", cells(prep.bin_idx[src], k))
        layout.add(f"bin:{src.value}:x", cells(prep.bin_idx[src], k, values))
        for notion, y in prep.y.items():
            layout.add(f"xy:{src.value}:{notion.value}", total(xc * y))
            layout.add(f"bin:{src.value}:{notion.value}", cells(prep.bin_idx[src], k, y))
        for scope in ("dom", "all"):
            rx = _scaled_ranks(values, prep, scope)
            layout.add(f"{scope}:rx:{src.value}", total(rx))
            layout.add(f"{scope}:rxx:{src.value}", total(rx**2))
            for notion, y in prep.y.items():
                ry = ranks_y[scope] if notion is Notion.PROB else y
                layout.add(f"{scope}:rxy:{src.value}:{notion.value}", total(rx * ry))
    return layout


def _scaled_ranks(values: np.ndarray, prep: _Prepared, scope: str) -> np.ndarray:
    """Mid-ranks divided by n, minus 0.5, within each domain ("dom") or over all nodes ("all")."""
    if scope == "all":
        return midranks(values) / len(values) - 0.5
    out = np.empty(len(values))
    for d in range(len(prep.run.domains)):
        mask = prep.node_domain == d
        if mask.any():
            out[mask] = midranks(values[mask]) / mask.sum() - 0.5
    return out


# ----------------------------------------------------------------------------------------------------
# Per-group statistics


def _rate(num: str, den: str = "n"):
    return lambda g: ratio(g(num)[..., 0], g(den)[..., 0])


def _pearson(src: Entropy, notion: Notion):
    y2 = f"y:{notion.value}" if notion is not Notion.PROB else "yy:accept_prob"
    return lambda g: pearson_from_sums(g("n")[..., 0], g(f"x:{src.value}")[..., 0],
                                       g(f"y:{notion.value}")[..., 0], g(f"xx:{src.value}")[..., 0],
                                       g(y2)[..., 0], g(f"xy:{src.value}:{notion.value}")[..., 0])


def _spearman(src: Entropy, notion: Notion, scope: str):
    if notion is Notion.PROB:
        sy, syy = f"{scope}:ry", f"{scope}:ryy"
    else:
        sy = syy = f"y:{notion.value}"
    return lambda g: pearson_from_sums(g("n")[..., 0], g(f"{scope}:rx:{src.value}")[..., 0], g(sy)[..., 0],
                                       g(f"{scope}:rxx:{src.value}")[..., 0], g(syy)[..., 0],
                                       g(f"{scope}:rxy:{src.value}:{notion.value}")[..., 0])


def _estimate(sampled: Sampled, has_ci: bool) -> Estimate:
    est = sampled.estimate()
    return est if has_ci else Estimate(est.value, float("nan"), float("nan"))


def _profile(group: Resampled, num: str, den: str, levels, cap: int, has_ci: bool) -> dict:
    point, boot = group.columns(lambda g: ratio(g(num), g(den)))
    counts = group.full[group.layout.slices[den]]
    out = {}
    for j, level in enumerate(levels):
        if counts[j] > 0:
            est = _estimate(Sampled(point[j], boot[:, j]), has_ci)
            out[level_label(level, cap)] = {**est.to_dict(), "nodes": int(counts[j])}
    return out


def _group(prep: _Prepared, group: Resampled, mask: np.ndarray, scope: str, n_prompts: int):
    """metrics.json entry of one domain (or overall) and its Sampled statistics for the claims."""
    has_ci = n_prompts >= MIN_PROMPTS_FOR_CI
    s: dict[str, Sampled] = {}
    for notion in Notion:
        s[notion.rate_key] = group.sample(_rate(f"y:{notion.value}"))
    s["accepted_per_step"] = group.sample(_rate("accepted", "steps"))
    for src in Entropy:
        shift = float(prep.x[src].mean())
        mean = group.sample(_rate(f"x:{src.value}"))
        s[f"{src.value}_mean"] = Sampled(mean.point + shift, mean.boot + shift)
        for notion in Notion:
            s[f"pearson:{src.value}:{notion.value}"] = group.sample(_pearson(src, notion))
            s[f"spearman:{src.value}:{notion.value}"] = group.sample(_spearman(src, notion, scope))
    if not has_ci:  # a single prompt: resamples carry no information about sampling variability
        s = {k: Sampled(v.point, np.full_like(v.boot, np.nan)) for k, v in s.items()}
    est = {k: v.estimate() for k, v in s.items()}
    full = lambda name: float(group.full[group.layout.slices[name]][0])  # noqa: E731
    out = {
        "nodes": int(full("n")),
        "steps": int(full("steps")),
        "prompts": int(n_prompts),
        "accept_prob": est["accept_prob"].to_dict(),
        "acceptance_local": est["acceptance_local"].to_dict(),
        "acceptance_path": est["acceptance_path"].to_dict(),
        "accepted_per_step": est["accepted_per_step"].to_dict(),
        "accepted_per_step_with_bonus": est["accepted_per_step"].shifted(1.0).to_dict(),
        "depth_profile": _profile(group, "depth:accepted_local", "depth:n", prep.depth_levels, DEPTH_CAP,
                                  has_ci),
        "depth_profile_path": _profile(group, "depth:accepted_path", "depth:n", prep.depth_levels,
                                       DEPTH_CAP, has_ci),
        "depth_profile_accept_prob": _profile(group, "depth:accept_prob", "depth:n", prep.depth_levels,
                                              DEPTH_CAP, has_ci),
        "rank_profile": _profile(group, "rank:accepted_local", "rank:n", prep.rank_levels, RANK_CAP, has_ci),
        "rank_acceptance_vector": _profile(group, "rankc:acc", "rankc:n", prep.rank_levels, RANK_CAP,
                                           has_ci),
        "pearson_draft_entropy_accepted_local":
            est[f"pearson:{Entropy.DRAFT.value}:{Notion.LOCAL.value}"].to_dict("r"),
        "correlations": {
            kind: {src.value: {notion.value: est[f"{kind}:{src.value}:{notion.value}"].to_dict(key)
                               for notion in Notion} for src in Entropy}
            for kind, key in (("pearson", "r"), ("spearman", "rho"))},
    }
    for src in Entropy:
        out[src.value] = _distribution(prep.x[src][mask], est[f"{src.value}_mean"], prep.x[src])
    out["entropy_bins"] = {src.value: _bins(prep, group, src, has_ci) for src in Entropy}
    return out, s


def _distribution(values: np.ndarray, mean: Estimate, everything: np.ndarray) -> dict:
    top = float(np.quantile(everything, 0.995)) if len(everything) else 1.0
    edges = np.linspace(0.0, max(top, 1e-6), HISTOGRAM_BINS + 1)
    counts, _ = np.histogram(np.clip(values, 0.0, edges[-1]), bins=edges)
    qs = np.quantile(values, [0.1, 0.25, 0.5, 0.75, 0.9]) if len(values) else [np.nan] * 5
    return {
        "mean": mean.to_dict(),
        "quantiles": {f"p{int(q * 100)}": float(v) for q, v in zip((0.1, 0.25, 0.5, 0.75, 0.9), qs)},
        "histogram": {"edges": edges.tolist(), "counts": counts.tolist()},
    }


def _bins(prep: _Prepared, group: Resampled, src: Entropy, has_ci: bool) -> list[dict]:
    edges = prep.bin_edges[src]
    n = group.full[group.layout.slices[f"bin:{src.value}:n"]]
    xsum = group.full[group.layout.slices[f"bin:{src.value}:x"]]
    rates = {notion: group.columns(lambda g, nt=notion: ratio(g(f"bin:{src.value}:{nt.value}"),
                                                                g(f"bin:{src.value}:n")))
             for notion in Notion}
    out = []
    for j in range(len(edges) - 1):
        if n[j] == 0:
            continue
        row = {"low": float(edges[j]), "high": float(edges[j + 1]), "mean_entropy": float(xsum[j] / n[j]),
               "nodes": int(n[j])}
        for notion, (point, boot) in rates.items():
            row[notion.value] = _estimate(Sampled(point[j], boot[:, j]), has_ci).to_dict()
        out.append(row)
    return out


# ----------------------------------------------------------------------------------------------------
# Which factor predicts acceptance


def _design(prep: _Prepared, factors: tuple[str, ...]) -> np.ndarray:
    """Row-level design matrix: intercept, treatment-coded categorical factors, standardized entropies."""
    cols = [np.ones(len(prep.node_domain))]
    codes = {"domain": (prep.node_domain, len(prep.run.domains)),
             "depth": (prep.depth_idx, len(prep.depth_levels)),
             "rank": (prep.rank_idx, len(prep.rank_levels))}
    for name in factors:
        if name in codes:
            idx, k = codes[name]
            cols += [(idx == j).astype(float) for j in range(1, k)]
        else:
            x = prep.x[Entropy(name)]
            sd = x.std()
            if sd > 0:
                cols.append((x - x.mean()) / sd)
    return np.column_stack(cols)


def _cell_design(n_dom: int, n_depth: int) -> np.ndarray:
    """Design matrix of the additive domain + depth model over the n_dom x n_depth cells."""
    cell = np.arange(n_dom * n_depth)
    return np.column_stack([np.ones(len(cell))]
                           + [(cell // n_depth == j).astype(float) for j in range(1, n_dom)]
                           + [(cell % n_depth == j).astype(float) for j in range(1, n_depth)])


def _models(prep: _Prepared, notion: Notion, cell, designs: dict) -> dict[str, tuple[float, int]]:
    """Maximized log-likelihood and parameter count of each model of acceptance under ``notion``.

    Single categorical factors have a closed form (one rate per level); domain + depth is fitted on
    domain x depth cells (exact for categorical predictors); models with entropy use every node.
    """
    key, y = notion.value, prep.y[notion]
    n_dom, n_depth = len(prep.run.domains), len(prep.depth_levels)
    dom_depth = prep.node_domain * n_depth + prep.depth_idx
    trials = np.bincount(dom_depth, minlength=n_dom * n_depth)
    used = trials > 0
    successes = np.bincount(dom_depth, weights=y, minlength=n_dom * n_depth)
    fits = {name: fit_logistic(X, y) for name, X in designs.items()}
    X_cells = _cell_design(n_dom, n_depth)[used]
    cells_fit = fit_logistic(X_cells, successes[used] / trials[used], trials[used])
    return {
        "null": (float(saturated_loglik(cell(f"y:{key}").sum(), cell("n").sum())), 1),
        "domain": (float(saturated_loglik(cell(f"dom:{key}"), cell("dom:n"))), n_dom),
        "depth": (float(saturated_loglik(cell(f"depth:{key}"), cell("depth:n"))), n_depth),
        "rank": (float(saturated_loglik(cell(f"rank:{key}"), cell("rank:n"))), len(prep.rank_levels)),
        "draft_entropy": (fits["draft_entropy"].loglik, designs["draft_entropy"].shape[1]),
        "target_entropy": (fits["target_entropy"].loglik, designs["target_entropy"].shape[1]),
        "domain+depth": (cells_fit.loglik, X_cells.shape[1]),
        "all": (fits["all"].loglik, designs["all"].shape[1]),
    }


LR_TESTS = [("domain", "null"), ("depth", "null"), ("rank", "null"), ("draft_entropy", "null"),
            ("target_entropy", "null"), ("domain+depth", "depth"), ("domain+depth", "domain"),
            ("all", "null")]


def _predictors(prep: _Prepared, overall: Resampled, layout: SumsLayout):
    """Logistic regressions of acceptance on domain / depth / rank / entropy, per notion."""
    cell = lambda name: overall.full[layout.slices[name]]  # noqa: E731
    designs = {src.value: _design(prep, (src.value,)) for src in Entropy}
    designs["all"] = _design(prep, ("domain", "depth", "rank", Entropy.DRAFT.value, Entropy.TARGET.value))
    results, r2 = {}, {}
    for notion in Notion:
        models = _models(prep, notion, cell, designs)
        ll0 = models["null"][0]
        r2[notion] = _r2_samples(overall, notion.value)
        est = {k: v.estimate() for k, v in r2[notion].items()}
        results[notion.value] = {
            "models": {name: {"parameters": df, "loglik": ll, "mcfadden_r2": float(mcfadden_r2(ll, ll0))}
                       for name, (ll, df) in models.items()},
            "lr_tests": [_lr_row(models, big, small, notion) for big, small in LR_TESTS],
            "r2_domain": est["domain"].to_dict(),
            "r2_depth": est["depth"].to_dict(),
            "r2_domain_minus_depth": est["difference"].to_dict(),
            "verdict": _verdict_sentence(notion, models, est, len(prep.run.domains), len(prep.depth_levels)),
        }
    return {"headline_notion": Notion.LOCAL.value, "verdict": results[Notion.LOCAL.value]["verdict"],
            **results}, r2


def _lr_row(models: dict, big: str, small: str, notion: Notion) -> dict:
    (ll_b, df_b), (ll_s, df_s) = models[big], models[small]
    chi2, p = lr_test(ll_b, ll_s, df_b - df_s)
    if notion is Notion.PROB:
        p = float("nan")  # quasi-likelihood for a fractional response: no chi-square reference
    return {"model": big, "versus": small, "df": df_b - df_s, "chi2": chi2,
            "p_value": None if not np.isfinite(p) else p}


def _r2_samples(overall: Resampled, key: str) -> dict[str, Sampled]:
    """McFadden R² of domain-only and depth-only models (closed form) on the data and each resample."""
    def r2(factor):
        return overall.sample(lambda g: mcfadden_r2(
            saturated_loglik(g(f"{factor}:{key}"), g(f"{factor}:n")),
            saturated_loglik(g(f"y:{key}"), g("n"))))
    dom, depth = r2("dom"), r2("depth")
    difference = Sampled(dom.point - depth.point, dom.boot - depth.boot)
    return {"domain": dom, "depth": depth, "difference": difference}


def _verdict_sentence(notion: Notion, models: dict, est: dict, n_dom: int, n_depth: int) -> str:
    r2 = {name: mcfadden_r2(ll, models["null"][0]) for name, (ll, _) in models.items()}
    ranked = sorted(("domain", "depth", "rank", "draft_entropy", "target_entropy"), key=lambda k: -r2[k])
    order = ", ".join(f"{k} {100 * r2[k]:.2f}%" for k in ranked)
    diff = est["difference"]
    if n_dom < 2 or n_depth < 2:
        lead = "Domain and depth cannot be compared (this run has fewer than two domains or depth levels)"
    elif np.isfinite(diff.ci_low) and diff.ci_low > 0:
        lead = "Task domain predicts acceptance more strongly than tree depth"
    elif np.isfinite(diff.ci_high) and diff.ci_high < 0:
        lead = "Tree depth predicts acceptance more strongly than task domain"
    else:
        lead = "Neither task domain nor tree depth is a clearly stronger predictor at 95%"
    ci = (f"95% CI {diff.ci_low:+.4f} to {diff.ci_high:+.4f}" if np.isfinite(diff.ci_low) else "no CI")
    return (f"{lead} under {notion.value}: deviance explained (McFadden R²) by each factor alone is "
            f"{order}; domain minus depth = {diff.value:+.4f} ({ci}).")


def _run_info(run: RunData) -> dict:
    counts = vars(run.manifest.counts) if run.manifest.counts is not None else None
    return {
        "dir": str(run.run_dir) if run.run_dir else None,
        "status": run.status.value,
        "in_progress": run.manifest.in_progress,
        "manifest_counts": counts,
        "started": run.manifest.started,
        "finished": run.manifest.finished,
        "domains": list(run.domains),
        "finished_prompts": len(run.prompts.ids),
        "nodes": int(len(run.nodes.prompt)),
        "steps": int(len(run.steps.prompt)),
    }
