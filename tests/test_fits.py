"""statsmodels logistic fits: closed-form agreement, cluster-robust covariance, separation, convergence."""

from __future__ import annotations

import numpy as np
import pytest

from specdyn.report.fits import fit_logit, kernel_loglik, one_hot
from specdyn.report.stats import saturated_loglik


def clustered_data(seed: int = 0, n: int = 4000, clusters: int = 30):
    rng = np.random.default_rng(seed)
    group = rng.integers(0, clusters, n)
    level = rng.integers(0, 3, n)
    shift = rng.normal(0, 0.7, clusters)[group]
    y = (rng.random(n) < 1 / (1 + np.exp(-(-0.3 + 0.6 * (level == 1) - 0.5 * (level == 2) + shift)))) * 1.0
    return group, level, y


def test_categorical_fit_equals_closed_form_and_cells_equal_nodes():
    group, level, y = clustered_data()
    X = np.column_stack([np.ones(len(y)), one_hot(level, 3)])
    node = fit_logit(X, y, np.ones(len(y)), groups=group)
    assert node.ok and node.clusters == 30
    closed = saturated_loglik(np.bincount(level, y), np.bincount(level))
    assert node.loglik == pytest.approx(closed, rel=1e-10)
    rates = np.bincount(level, y) / np.bincount(level)
    logits = np.log(rates / (1 - rates))
    assert node.params == pytest.approx([logits[0], logits[1] - logits[0], logits[2] - logits[0]], abs=1e-8)
    keys, inverse = np.unique(group * 3 + level, return_inverse=True)
    cells = fit_logit(np.column_stack([np.ones(len(keys)), one_hot(keys % 3, 3)]), np.bincount(inverse, y),
                      np.bincount(inverse), groups=keys // 3)
    assert cells.params == pytest.approx(node.params, abs=1e-9)
    assert cells.cov == pytest.approx(node.cov, rel=1e-8)
    assert cells.loglik == pytest.approx(node.loglik, rel=1e-12)


def test_cluster_covariance_is_the_cr1_sandwich():
    group, level, y = clustered_data(1)
    X = np.column_stack([np.ones(len(y)), one_hot(level, 3)])
    fit = fit_logit(X, y, np.ones(len(y)), groups=group)
    mu = 1 / (1 + np.exp(-X @ fit.params))
    bread = np.linalg.inv(X.T @ (X * (mu * (1 - mu))[:, None]))
    scores = np.stack([X[group == g].T @ (y - mu)[group == g] for g in np.unique(group)])
    G = len(scores)
    assert fit.cov == pytest.approx(G / (G - 1) * bread @ scores.T @ scores @ bread, rel=1e-8)
    naive = fit_logit(X, y, np.ones(len(y)))
    # the cluster effect shifts whole clusters: the intercept's SE widens, within-cluster contrasts' do not
    assert naive.clusters is None and fit.bse[0] > 1.5 * naive.bse[0]
    assert fit.bse[1:] == pytest.approx(naive.bse[1:], rel=0.2)


def test_fractional_response_solves_the_score_equations():
    """The quasi-likelihood maximum: X'(y - mu) = 0, and no nearby coefficients do better."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=3000)
    y = np.clip(1 / (1 + np.exp(-(0.2 + 0.8 * x))) + rng.normal(0, 0.1, 3000), 0, 1)
    X = np.column_stack([np.ones_like(x), x])
    ours = fit_logit(X, y, np.ones_like(y))
    mu = 1 / (1 + np.exp(-X @ ours.params))
    assert ours.ok and np.abs(X.T @ (y - mu)).max() < 1e-6 * len(y)
    assert ours.params == pytest.approx([0.2, 0.8], abs=0.05)
    for step in ([1e-3, 0], [0, -1e-3], [-1e-3, 1e-3]):
        moved = 1 / (1 + np.exp(-X @ (ours.params + step)))
        assert kernel_loglik(y, np.ones_like(y), moved) < ours.loglik


def test_coefficients_of_a_categorical_and_a_continuous_predictor_are_recovered():
    rng = np.random.default_rng(2)
    cell = rng.integers(0, 3, 20000)
    x = rng.normal(size=20000)
    eta = -0.5 + 0.8 * (cell == 1) - 0.4 * (cell == 2) + 0.7 * x
    y = (rng.random(20000) < 1 / (1 + np.exp(-eta))) * 1.0
    fit = fit_logit(np.column_stack([np.ones_like(x), one_hot(cell, 3), x]), y, np.ones_like(y))
    assert fit.ok and fit.params == pytest.approx([-0.5, 0.8, -0.4, 0.7], abs=0.08)


def test_separation_and_non_convergence_are_reported():
    group, level, y = clustered_data(3)
    y = np.where(level == 2, 1.0, y)  # every node of level 2 accepted: its coefficient diverges
    X = np.column_stack([np.ones(len(y)), one_hot(level, 3)])
    separated = fit_logit(X, y, np.ones(len(y)), groups=group)
    assert separated.separation and not separated.ok
    assert any("separation" in p for p in separated.problems())
    short = fit_logit(X, clustered_data(4)[2], np.ones(len(y)), max_iter=1)
    assert not short.converged and not short.ok and "did not converge" in short.problems()[0]
    empty = fit_logit(X[:3], np.array([1.0, 0.0, 0.0]), np.array([2.0, 0.0, 0.0]))
    assert empty.rank_deficient and not empty.ok and "rank-deficient" in empty.problems()[0]


def test_a_saturated_model_of_cells_is_not_separation():
    """statsmodels warns when fitted shares equal the observed ones, as they always do for one parameter
    per cell; that is separation only when every cell is all-accepted or all-rejected."""
    group, level, y = clustered_data(5)
    X = np.column_stack([np.ones(3), one_hot(np.arange(3), 3)])
    cells = fit_logit(X, np.bincount(level, y), np.bincount(level).astype(float))
    assert cells.ok and not cells.separation
    assert fit_logit(X, np.array([0.0, 5.0, 0.0]), np.array([4.0, 5.0, 6.0])).separation

