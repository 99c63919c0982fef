"""Claim (a), domain vs depth: building blocks, and calibration of the verdict on simulated runs.

Calibration thresholds (seeds are fixed, so the tests are deterministic; the binomial reasoning says
why the asserted counts are meaningful rather than lucky):

- Null (identical domains, Beta(concentration 5) prompt heterogeneity, no depth effect), 100 seeds:
  "holds" at most 5 times. The rule's rate under this null is at most 5% by construction and about 0
  in practice (0 of 500 seeds during development), so the assertion is not fragile; it is meaningful
  because a rule at 15% would pass with probability P(Binom(100, .15) <= 5) = 0.0016, and the old
  R²-difference rule ("holds" on most null runs) never.
- Moderate domain effect (per-level acceptance means 0.55 / 0.65 / 0.75 / 0.85, i.e. logit steps of
  about 0.45), 50 seeds: "holds" at least 40 times (80%). The power measured at this size on 100 other
  seeds is 91%, so P(Binom(50, .91) < 40) = 0.004; a rule with only 70% power would pass with
  probability 0.08.
- Strong depth effect (logit -1.0 per level) and identical domains, 50 seeds: "does not hold" at least
  40 times and "holds" at most 2 times (measured: 50 and 0).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from scipy import stats

from specdyn.report.factors import (
    FactorCells, claim_a, compare_domain_depth, design, domain_permutation_test, factor_cells, pool_levels,
    spread, spread_matrix,
)
from specdyn.report.fits import fit_logit

from specdyn.report.verdicts import Verdict
from treesim import TreeSim, reached_of, simulate

NULL = dict(means=(0.7, 0.7, 0.7, 0.7))
DOMAIN_EFFECT = dict(means=(0.55, 0.65, 0.75, 0.85))
DEPTH_EFFECT = dict(means=(0.7, 0.7, 0.7, 0.7), depth_slope=-1.0)


def cells_of(sim: TreeSim) -> FactorCells:
    run = simulate(sim)
    reached = reached_of(run.nodes)
    return factor_cells(run.nodes.prompt, run.nodes.depth, run.rank, run.accepted_local, reached,
                        run.prompt_domain)


def verdicts(scenario: dict, seeds: range, prompts: int = 40, **kw) -> Counter:
    out = Counter()
    for seed in seeds:
        cells = cells_of(TreeSim(prompts=prompts, seed=seed, **scenario))
        out[compare_domain_depth(cells, permutations=499, seed=seed, within_prompt=False, **kw).verdict] += 1
    return out


# ----------------------------------------------------------------------------------------------------
# Building blocks


def test_pool_levels_merges_the_sparse_tail():
    values = np.array([1] * 20 + [2] * 20 + [3] * 6 + [4] * 4)
    y = np.array([0, 1] * 10 + [0, 1] * 10 + [0, 1, 0, 1, 0, 1] + [1, 1, 1, 0])
    levels = pool_levels(values, y, min_each=3)
    assert levels.labels == ["1", "2", "3+"]
    assert levels.index.tolist() == [0] * 20 + [1] * 20 + [2] * 10
    assert pool_levels(values, y, min_each=1).labels == ["1", "2", "3", "4"]
    assert pool_levels(values, np.zeros(len(y)), min_each=1).labels == ["1+"]  # nothing can be fitted


def test_cells_reproduce_the_node_level_fit():
    run = simulate(TreeSim(means=(0.5, 0.8), prompts=6, seed=5))
    reached = reached_of(run.nodes)
    cells = factor_cells(run.nodes.prompt, run.nodes.depth, run.rank, run.accepted_local, reached,
                         run.prompt_domain)
    assert cells.trials.sum() == reached.sum() and cells.successes.sum() == run.accepted_local[reached].sum()
    p, d, r = run.nodes.prompt[reached], run.nodes.depth[reached], run.rank[reached]
    X = np.column_stack([np.ones(len(p)), run.prompt_domain[p] == 1, d == 2, d == 3, r == 1]).astype(float)
    node = fit_logit(X, run.accepted_local[reached], np.ones(len(p)), groups=p)
    cell = fit_logit(design(cells).X, cells.successes, cells.trials, groups=cells.prompt)
    assert cell.params == pytest.approx(node.params, abs=1e-8)
    assert cell.cov == pytest.approx(node.cov, rel=1e-7)


def test_spread_is_the_node_weighted_sd_of_level_effects():
    cells = cells_of(TreeSim(prompts=5, seed=6, **DOMAIN_EFFECT))
    des = design(cells)
    fit = fit_logit(des.X, cells.successes, cells.trials, groups=cells.prompt)
    for name, index in (("domain", cells.domain), ("depth", cells.depth)):
        effects = np.concatenate([[0.0], fit.params[des.columns[name]]])[index]
        sd = np.sqrt(np.cov(effects, aweights=cells.trials, ddof=0))
        A = spread_matrix(des, name, cells.trials)
        assert spread(fit, A).sd == pytest.approx(sd, rel=1e-10)
        assert spread(fit, A).variance_debiased == pytest.approx(sd**2 - np.trace(A @ fit.cov), rel=1e-10)


def test_permutation_p_values_are_uniform_under_the_null_where_a_naive_test_is_not():
    """Identical domains with heterogeneous prompts: the permutation p-values are uniform (KS test at
    0.001), while a node-level likelihood-ratio test that ignores prompts rejects far more than 5%."""
    perm, naive = [], []
    for seed in range(60):
        cells = cells_of(TreeSim(prompts=15, seed=100 + seed, **NULL))
        perm.append(domain_permutation_test(cells, 499, np.random.default_rng(seed)).p_value)
        full, small = design(cells), design(cells, ("depth", "rank"))
        ll = [fit_logit(d.X, cells.successes, cells.trials).loglik for d in (full, small)]
        naive.append(stats.chi2.sf(2 * (ll[0] - ll[1]), cells.n_domains - 1))
    assert stats.kstest(perm, "uniform").pvalue > 0.001
    assert np.mean(np.array(naive) < 0.05) > 0.3, np.mean(np.array(naive) < 0.05)


# ----------------------------------------------------------------------------------------------------
# Calibration and power of the verdict


def test_identical_domains_rarely_hold():
    counts = verdicts(NULL, range(100))
    assert counts[Verdict.HOLDS] <= 5, counts


def test_moderate_domain_effect_usually_holds():
    counts = verdicts(DOMAIN_EFFECT, range(1000, 1050))
    assert counts[Verdict.HOLDS] >= 40, counts
    assert counts[Verdict.DOES_NOT_HOLD] == 0, counts


def test_strong_depth_effect_does_not_hold():
    counts = verdicts(DEPTH_EFFECT, range(2000, 2050))
    assert counts[Verdict.DOES_NOT_HOLD] >= 40 and counts[Verdict.HOLDS] <= 2, counts


# ----------------------------------------------------------------------------------------------------
# Edge cases: nothing to compare, untrustworthy fits


def test_not_applicable_without_two_domains_or_depths():
    one_domain = compare_domain_depth(cells_of(TreeSim(means=(0.7,), prompts=10)), permutations=99)
    assert one_domain.verdict is Verdict.NOT_APPLICABLE and "two domains" in one_domain.reasons[0]
    flat = compare_domain_depth(cells_of(TreeSim(means=(0.6, 0.8), prompts=10, depth=1)), permutations=99)
    assert flat.verdict is Verdict.NOT_APPLICABLE


def test_separation_makes_the_verdict_inconclusive():
    """A domain whose drafts are never accepted: its coefficient diverges; the verdict must not trust it
    although the domain difference is enormous."""
    cells = cells_of(TreeSim(means=(0.0, 0.7, 0.8), prompts=15, concentration=np.inf, seed=3))
    result = compare_domain_depth(cells, permutations=199)
    assert result.fit.separation and result.verdict is Verdict.INCONCLUSIVE
    assert any("separation" in r for r in result.reasons)


def test_within_prompt_depth_removes_prompt_selection():
    """Deep positions are reached mostly in easy prompts, so the population-averaged depth effect is
    positive on identical, depth-free prompts; with prompt fixed effects it vanishes."""
    cells = cells_of(TreeSim(prompts=25, concentration=1.0, seed=4, means=(0.5, 0.5)))
    result = compare_domain_depth(cells, permutations=99)
    within = result.depth_within_prompt
    assert within.fit.ok and within.prompts_used <= 50
    assert result.depth.sd > 0.3 and within.depth.sd < 0.1, (result.depth, within.depth)


def test_claim_result_carries_numbers_and_fit_health():
    cells = cells_of(TreeSim(means=(0.4, 0.6, 0.8, 0.9), prompts=12, seed=8))  # a strong domain effect
    claim = claim_a(compare_domain_depth(cells, permutations=199), "accepted_local", primary=True)
    assert claim.claim == "a" and claim.primary and claim.verdict is Verdict.HOLDS
    v = claim.values
    assert v["fit"]["converged"] and not v["fit"]["separation"] and v["permutation_p"] < 0.05
    assert v["difference"]["ci_low"] > 0 and v["domain_sd"] > v["depth_sd"] and "depth_within_prompt_sd" in v
    assert "permutation p" in claim.summary and claim.to_json()["verdict"] == "holds"
    one_domain = compare_domain_depth(cells_of(TreeSim(means=(0.7,), prompts=5)), permutations=9)
    single = claim_a(one_domain, "x", False)
    assert single.verdict is Verdict.NOT_APPLICABLE and "not applicable" in single.summary


def test_fractional_outcome_sensitivity():
    """Claim (a)'s sensitivity analysis with a continuous outcome (like accept_prob) runs the same rule."""
    run = simulate(TreeSim(means=(0.4, 0.6, 0.8, 0.9), prompts=30, seed=9))
    reached = reached_of(run.nodes)
    soft = 0.5 * run.accepted_local + 0.5 * np.random.default_rng(0).random(len(run.rank))
    cells = factor_cells(run.nodes.prompt, run.nodes.depth, run.rank, soft, reached, run.prompt_domain)
    assert not np.allclose(cells.successes, np.round(cells.successes))
    result = compare_domain_depth(cells, permutations=199, within_prompt=False)
    assert result.fit.ok and result.verdict is Verdict.HOLDS, result.reasons
