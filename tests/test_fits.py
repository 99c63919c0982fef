"""statsmodels logistic fits: closed-form agreement, cluster-robust covariance, separation, convergence."""

from __future__ import annotations

import numpy as np
import pytest

from specdyn.report.fits import fit_logit, one_hot
from specdyn.report.stats import fit_logistic, saturated_loglik


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


def test_fractional_response_matches_the_newton_solver():
    rng = np.random.default_rng(2)
    x = rng.normal(size=3000)
    y = np.clip(1 / (1 + np.exp(-(0.2 + 0.8 * x))) + rng.normal(0, 0.1, 3000), 0, 1)
    X = np.column_stack([np.ones_like(x), x])
    ours, newton = fit_logit(X, y, np.ones_like(y)), fit_logistic(X, y)
    assert ours.ok and ours.params == pytest.approx(newton.coef, abs=1e-7)
    assert ours.loglik == pytest.approx(newton.loglik, rel=1e-10)


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
