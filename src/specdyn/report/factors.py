"""Claim (a): does the task domain predict acceptance more strongly than tree depth?

Data. Nodes whose parent the acceptance walk reached (the root's children and the children of accepted
nodes); outcome ``accepted_local``, which for a reached node equals ``accepted_path``: "was this drafted
token accepted, given the walk got to it". Nodes are aggregated into binomial cells, one per
(prompt, depth level, rank level); the fits below are identical to node-level fits.

Model. A logistic GLM, logit P(accepted) = intercept + domain + depth + sibling rank (all categorical,
treatment-coded), fitted with statsmodels; its covariance is cluster-robust with the prompt as cluster
(nodes of one prompt are correlated, and domain is constant within a prompt). The coefficients are
population-averaged: the depth effect describes how acceptance differs between reached nodes of
different depths, including the fact that deep positions are reached more often in prompts where the
draft does well (a prompt-level selection that makes deep reached nodes look easier).

Strength of a factor. The standard deviation, across reached nodes, of the factor's contribution to the
log-odds: S_F² = Σ_l w_l (b_l − Σ_k w_k b_k)² over the factor's levels l, with b_l the level's
coefficient (0 for the reference level) and w_l its share of reached nodes. It is a quadratic form
S_F² = β'A_Fβ in the coefficients. The plug-in β̂'A_Fβ̂ is biased upwards by tr(A_F Σ) (Σ the
covariance of β̂): noise alone makes level effects spread; domain, estimated from few clusters, would
gain the most. The comparison therefore uses the debiased difference

    Δ = (β̂'A_domβ̂ − tr(A_dom Σ)) − (β̂'A_depthβ̂ − tr(A_depth Σ)) = β̂'Mβ̂ − tr(MΣ),
    M = A_dom − A_depth,

with the normal-theory standard error se(Δ) = sqrt(4 β̂'MΣMβ̂ + 2 tr(MΣMΣ)).

Permutation calibration. Under "domain does not matter" the prompts' domain labels are exchangeable,
whatever the prompt-to-prompt heterogeneity and whatever the depth and rank effects. The statistic is a
cluster-robust score statistic for domain in the model without domain (intercept + depth + rank, fitted
once): with r_p the prompt's summed residual Σ (y − μ̂₀) and U_d = Σ_{p in d} r_p,
T = Σ_d U_d² / Σ_{p in d} r_p². Domain labels are permuted across prompts (domain sizes kept) and
p = (1 + #{T* ≥ T}) / (1 + permutations). The null model does not involve domain, so a permutation only
regroups the r_p: thousands of permutations cost milliseconds.

Decision rule (Δ's 95% interval: Δ ± 1.96 se):

- HOLDS when the permutation test finds a domain effect (p < 0.05) AND Δ's 95% interval lies above 0;
- DOES_NOT_HOLD when Δ's 95% interval lies below 0 (depth's effect is larger than domain's);
- INCONCLUSIVE otherwise, and whenever a fit did not converge, shows separation or is rank-deficient
  (the reasons are listed in the result);
- NOT_APPLICABLE with fewer than two domains or two depth levels (after pooling sparse depths).

"Holds" requires both tests to reject (an intersection–union test, Berger 1982): its false-positive rate
is at most 5% wherever the claim is false. When domain has no effect the exact permutation test alone
caps it at 5%, however heterogeneous the prompts; on the boundary where both factors are equally strong
the interval for Δ caps it at 2.5%. "Does not hold" is a 2.5% one-sided test of the opposite direction.
The two can never both be true.

Sensitivity: :func:`within_prompt_depth` measures depth's spread with prompt fixed effects (within-prompt
contrasts only, free of the prompt-level selection described above); the result reports it next to the
population-averaged spread. The rule itself is declared on the population-averaged model.

Why the previous rule (a CI of R²(domain) − R²(depth) above 0) could not fail under the null. McFadden's
R² of a categorical factor is the share of deviance that fitting one rate per level removes; fitting
more parameters never lowers the likelihood, so R² ≥ 0 on every resample, and it is > 0 whenever the
observed level rates differ at all, which they always do by chance. With no depth effect, R²(depth) is
a tiny positive number, while R²(domain) absorbs every prompt-to-prompt difference (domain is constant
within a prompt, so a node-level domain factor partly fits prompt identity, with far more nodes than
prompts behind it). The bootstrap interval of the difference then sits at or above 0 and the claim
"holds" on identical domains. A percentile interval is not a test when the statistic is bounded at the
null value. The rule here compares debiased effect sizes whose null distribution is centred at 0 and
checks the domain effect against its exact permutation distribution, so on identical domains it says
"holds" in at most 5% of runs (tests/test_factors.py checks this by simulation).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from scipy import stats

from specdyn.report.fits import LogitFit, fit_logit, one_hot
from specdyn.report.verdicts import ClaimResult, Verdict

LEVEL = 0.05  # two-sided: 95% intervals, and the permutation test at 5%
PERMUTATIONS = 1999
MIN_LEVEL_OUTCOMES = 5  # a depth or rank level needs this many accepted and rejected nodes, else pooled
MAX_FIXED_EFFECTS = 400  # the within-prompt sensitivity fit (one column per prompt) is skipped above this


@dataclass
class Levels:
    """Level index per observation and a label per level (the last may pool a tail, e.g. "4+")."""

    index: np.ndarray
    labels: list[str]


@dataclass
class FactorCells:
    """Reached nodes as binomial cells, one per (prompt, depth level, rank level)."""

    prompt: np.ndarray
    depth: np.ndarray
    rank: np.ndarray
    trials: np.ndarray
    successes: np.ndarray
    prompt_domain: np.ndarray  # domain index of every prompt (not only of prompts with cells)
    n_domains: int
    depth_labels: list[str]
    rank_labels: list[str]

    @property
    def domain(self) -> np.ndarray:
        return self.prompt_domain[self.prompt]


def pool_levels(values: np.ndarray, y: np.ndarray, min_each: int = MIN_LEVEL_OUTCOMES) -> Levels:
    """Integer levels of ``values``, the highest ones pooled into one "k+" level until every level has
    at least ``min_each`` successes and ``min_each`` failures of ``y`` (when it can)."""
    levels, idx = np.unique(values, return_inverse=True)
    wins = np.bincount(idx, weights=y, minlength=len(levels))
    fails = np.bincount(idx, weights=1 - y, minlength=len(levels))
    ok = (wins >= min_each) & (fails >= min_each)
    tail_ok = (np.cumsum(wins[::-1])[::-1] >= min_each) & (np.cumsum(fails[::-1])[::-1] >= min_each)
    cut = next((j for j in range(len(levels) - 1, -1, -1) if tail_ok[j] and ok[:j].all()), 0)
    labels = [str(int(v)) for v in levels[:cut]]
    labels.append(f"{int(levels[cut])}+" if cut < len(levels) - 1 else str(int(levels[cut])))
    return Levels(np.minimum(idx, cut), labels)


def factor_cells(prompt, depth, rank, accepted_local, reached, prompt_domain) -> FactorCells:
    """Aggregate the reached nodes (``reached``: parent on the accepted path, or a root child)."""
    _, prompt_domain = np.unique(np.asarray(prompt_domain), return_inverse=True)  # drop empty domains
    p, y = np.asarray(prompt)[reached], np.asarray(accepted_local)[reached].astype(float)
    d, r = pool_levels(np.asarray(depth)[reached], y), pool_levels(np.asarray(rank)[reached], y)
    width_r = len(r.labels)
    key = (p * len(d.labels) + d.index) * width_r + r.index
    cells, inverse = np.unique(key, return_inverse=True)
    return FactorCells(
        prompt=cells // (len(d.labels) * width_r), depth=(cells // width_r) % len(d.labels),
        rank=cells % width_r, trials=np.bincount(inverse).astype(float),
        successes=np.bincount(inverse, weights=y), prompt_domain=prompt_domain,
        n_domains=int(prompt_domain.max()) + 1, depth_labels=d.labels, rank_labels=r.labels)


# ----------------------------------------------------------------------------------------------------
# Effect sizes


@dataclass
class Design:
    """The model matrix and which columns belong to each factor."""

    X: np.ndarray
    columns: dict[str, np.ndarray]
    level_index: dict[str, np.ndarray]
    n_levels: dict[str, int]


def design(cells: FactorCells, factors: tuple[str, ...] = ("domain", "depth", "rank"),
           absorb_prompts: bool = False) -> Design:
    """Intercept (or, with ``absorb_prompts``, one intercept per prompt: prompt fixed effects) plus
    treatment-coded factors (level 0 is each factor's reference)."""
    index = {"domain": cells.domain, "depth": cells.depth, "rank": cells.rank}
    sizes = {"domain": cells.n_domains, "depth": len(cells.depth_labels), "rank": len(cells.rank_labels)}
    _, prompt = np.unique(cells.prompt, return_inverse=True)
    first = (one_hot(prompt, prompt.max() + 1, drop_first=False) if absorb_prompts
             else np.ones((len(prompt), 1)))
    blocks, columns, start = [first], {}, first.shape[1]
    for name in factors:
        blocks.append(one_hot(index[name], sizes[name]))
        columns[name] = np.arange(start, start + sizes[name] - 1)
        start += sizes[name] - 1
    return Design(np.hstack(blocks), columns, {k: index[k] for k in factors}, {k: sizes[k] for k in factors})


def spread_matrix(des: Design, name: str, trials: np.ndarray) -> np.ndarray:
    """A with β'Aβ = node-weighted variance of the factor's level effects (reference level = 0)."""
    k = des.n_levels[name]
    w = np.bincount(des.level_index[name], weights=trials, minlength=k)
    w = w / w.sum()
    E = np.zeros((k, des.X.shape[1]))
    E[np.arange(1, k), des.columns[name]] = 1.0
    return E.T @ (np.diag(w) - np.outer(w, w)) @ E


@dataclass
class Spread:
    """A factor's strength: SD of its log-odds effects across reached nodes."""

    sd: float  # plug-in sqrt(β̂'Aβ̂)
    variance_debiased: float  # β̂'Aβ̂ − tr(AΣ): unbiased for the true variance to first order


def spread(fit: LogitFit, A: np.ndarray) -> Spread:
    quad = float(fit.params @ A @ fit.params)
    return Spread(float(np.sqrt(max(quad, 0.0))), quad - float(np.trace(A @ fit.cov)))


@dataclass
class Difference:
    """Δ = debiased S²(domain) − S²(depth) with one-sided confidence bounds."""

    value: float
    se: float
    low: float  # two-sided (1 − LEVEL) interval
    high: float


def difference(fit: LogitFit, M: np.ndarray, level: float = LEVEL) -> Difference:
    b, S = fit.params, fit.cov
    value = float(b @ M @ b - np.trace(M @ S))
    MS = M @ S
    se = float(np.sqrt(max(4 * b @ MS @ M @ b + 2 * np.trace(MS @ MS), 0.0)))
    z = stats.norm.ppf(1 - level / 2)
    return Difference(value, se, value - z * se, value + z * se)


@dataclass
class WithinPrompt:
    """Depth's strength within prompts (prompt fixed effects + depth + rank; sensitivity analysis).

    Only prompts with both accepted and rejected reached nodes carry within-prompt information (the
    others would send their own intercept to ±∞); ``prompts_used`` counts them.
    """

    depth: Spread
    prompts_used: int
    fit: LogitFit


def within_prompt_depth(cells: FactorCells) -> WithinPrompt:
    """Fit logit P = prompt + depth + rank (cluster-robust by prompt) and measure depth's spread."""
    wins = np.bincount(cells.prompt, weights=cells.successes)
    total = np.bincount(cells.prompt, weights=cells.trials)
    keep = ((wins > 0) & (wins < total))[cells.prompt]
    sub = replace(cells, **{k: getattr(cells, k)[keep]
                            for k in ("prompt", "depth", "rank", "trials", "successes")})
    des = design(sub, ("depth", "rank"), absorb_prompts=True)
    fit = fit_logit(des.X, sub.successes, sub.trials, groups=sub.prompt)
    return WithinPrompt(spread(fit, spread_matrix(des, "depth", sub.trials)), len(np.unique(sub.prompt)), fit)


# ----------------------------------------------------------------------------------------------------
# Permutation test of "domain does not matter"


@dataclass
class PermutationTest:
    """Cluster-robust score statistic for domain and its permutation p-value."""

    statistic: float
    p_value: float
    permutations: int
    null_fit: LogitFit


def _score_statistic(residual: np.ndarray, labels: np.ndarray, n_domains: int) -> np.ndarray:
    """T = Σ_d U_d² / V_d for each row of ``labels`` (permutations x prompts)."""
    rows = np.arange(labels.shape[0])[:, None] * n_domains + labels
    size = labels.shape[0] * n_domains
    U = np.bincount(rows.ravel(), weights=np.broadcast_to(residual, labels.shape).ravel(), minlength=size)
    V = np.bincount(rows.ravel(), weights=np.broadcast_to(residual**2, labels.shape).ravel(), minlength=size)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(V > 0, U**2 / np.where(V > 0, V, 1.0), 0.0)
    return terms.reshape(labels.shape[0], n_domains).sum(axis=1)


def domain_permutation_test(cells: FactorCells, permutations: int,
                            rng: np.random.Generator) -> PermutationTest:
    """Permute domain labels across prompts; the null model (depth + rank) is fitted once."""
    des = design(cells, ("depth", "rank"))
    null = fit_logit(des.X, cells.successes, cells.trials)
    mu = 1 / (1 + np.exp(-(des.X @ null.params)))
    n_prompts = len(cells.prompt_domain)
    residual = np.bincount(cells.prompt, weights=cells.successes - cells.trials * mu, minlength=n_prompts)
    observed = _score_statistic(residual, cells.prompt_domain[None, :], cells.n_domains)[0]
    shuffled = rng.permuted(np.tile(cells.prompt_domain, (permutations, 1)), axis=1)
    null_stats = _score_statistic(residual, shuffled, cells.n_domains)
    p = (1 + np.sum(null_stats >= observed - 1e-12 * abs(observed))) / (1 + permutations)
    return PermutationTest(float(observed), float(p), permutations, null)


# ----------------------------------------------------------------------------------------------------
# The comparison and its verdict


@dataclass
class FactorComparison:
    """Claim (a) on one run: effect sizes, tests, the fit's health and the verdict."""

    verdict: Verdict
    reasons: list[str]
    domain: Spread | None = None
    depth: Spread | None = None
    rank: Spread | None = None
    difference: Difference | None = None
    permutation: PermutationTest | None = None
    fit: LogitFit | None = None
    depth_within_prompt: WithinPrompt | None = None
    prompts: int = 0
    nodes: int = 0
    depth_labels: list[str] = field(default_factory=list)
    rank_labels: list[str] = field(default_factory=list)


def decide(diff: Difference, perm: PermutationTest, fits_ok: bool, level: float = LEVEL) -> Verdict:
    """The decision rule of the module docstring."""
    if not fits_ok:
        return Verdict.INCONCLUSIVE
    if perm.p_value < level and diff.low > 0:
        return Verdict.HOLDS
    if diff.high < 0:
        return Verdict.DOES_NOT_HOLD
    return Verdict.INCONCLUSIVE


def _within(cells: FactorCells, reasons: list[str]) -> WithinPrompt | None:
    """The within-prompt sensitivity fit, its problems appended to ``reasons`` (it does not decide)."""
    if len(cells.prompt_domain) > MAX_FIXED_EFFECTS:
        reasons.append(f"within-prompt depth effect skipped: more than {MAX_FIXED_EFFECTS} prompts")
        return None
    within = within_prompt_depth(cells)
    reasons += [f"within-prompt fit (sensitivity only): {p}" for p in within.fit.problems()]
    return within


def compare_domain_depth(cells: FactorCells, permutations: int = PERMUTATIONS, seed: int = 0,
                         level: float = LEVEL, within_prompt: bool = True) -> FactorComparison:
    """Check claim (a) on the reached-node cells of one run (see the module docstring)."""
    base = dict(prompts=len(cells.prompt_domain), nodes=int(cells.trials.sum()),
                depth_labels=cells.depth_labels, rank_labels=cells.rank_labels)
    present = len(np.unique(cells.prompt_domain))
    if present < 2 or len(cells.depth_labels) < 2:
        why = f"needs two domains and two depth levels (has {present} and {len(cells.depth_labels)})"
        return FactorComparison(Verdict.NOT_APPLICABLE, [why], **base)
    des = design(cells)
    fit = fit_logit(des.X, cells.successes, cells.trials, groups=cells.prompt)
    A = {name: spread_matrix(des, name, cells.trials) for name in des.columns}
    perm = domain_permutation_test(cells, permutations, np.random.default_rng(seed))
    diff = difference(fit, A["domain"] - A["depth"], level)
    reasons = [f"full model: {p}" for p in fit.problems()]
    reasons += [f"model without domain: {p}" for p in perm.null_fit.problems()]
    verdict = decide(diff, perm, fit.ok and perm.null_fit.ok, level)
    within = _within(cells, reasons) if within_prompt else None
    return FactorComparison(verdict, reasons, spread(fit, A["domain"]), spread(fit, A["depth"]),
                            spread(fit, A["rank"]), diff, perm, fit, within, **base)


CLAIM_A = "Task type predicts acceptance more strongly than tree depth."
RULE_A = ("Logistic GLM of reached nodes' acceptance on domain + depth + sibling rank, prompt-clustered "
          "covariance. Holds if a domain-label permutation test finds a domain effect (p < 0.05) and the "
          "95% CI of Δ = debiased variance of domain's log-odds effects minus depth's lies above 0; does "
          "not hold if that CI lies below 0; inconclusive otherwise or when a fit fails.")


def _values(result: FactorComparison) -> dict:
    out = {"prompts": result.prompts, "nodes": result.nodes, "depth_levels": result.depth_labels,
           "rank_levels": result.rank_labels, "problems": result.reasons}
    for name in ("domain", "depth", "rank"):
        part = getattr(result, name)
        if part is not None:
            out[f"{name}_sd"], out[f"{name}_variance_debiased"] = part.sd, part.variance_debiased
    if result.difference is not None:
        d = result.difference
        out["difference"] = {"value": d.value, "se": d.se, "ci_low": d.low, "ci_high": d.high}
        out["permutation_p"] = result.permutation.p_value
        out["permutations"] = result.permutation.permutations
        out["fit"] = {"converged": result.fit.converged, "iterations": result.fit.iterations,
                      "separation": result.fit.separation, "rank_deficient": result.fit.rank_deficient}
    if result.depth_within_prompt is not None:
        out["depth_within_prompt_sd"] = result.depth_within_prompt.depth.sd
    return out


def _summary(result: FactorComparison) -> str:
    if result.difference is None:
        return f"not applicable: {'; '.join(result.reasons)}"
    d = result.difference
    text = (f"SD of log-odds effects: domain {result.domain.sd:.3f}, depth {result.depth.sd:.3f}, rank "
            f"{result.rank.sd:.3f}; Δ {d.value:+.4f} [{d.low:+.4f}, {d.high:+.4f}]; domain permutation "
            f"p = {result.permutation.p_value:.3f}")
    if result.depth_within_prompt is not None:
        text += f"; depth within prompts {result.depth_within_prompt.depth.sd:.3f}"
    return text + "".join(f"; {r}" for r in result.reasons)


def claim_a(result: FactorComparison, measure: str, primary: bool) -> ClaimResult:
    """Claim (a) as a :class:`ClaimResult` (``measure``: the outcome, e.g. "accepted_local")."""
    return ClaimResult("a", CLAIM_A, measure, primary, result.verdict, RULE_A, _summary(result),
                       _values(result))
