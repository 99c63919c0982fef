"""Logistic regressions through statsmodels, with convergence and separation surfaced, never ignored.

Rows are binomial *cells*: ``successes`` out of ``trials`` (a node-level 0/1 fit is the special case
``trials = 1``; aggregating nodes that share a design row and a cluster gives the same estimates, the
same log-likelihood kernel and the same cluster-robust covariance, because scores add within a cell).
``successes`` may be fractional (e.g. a sum of ``accept_prob``): the fit is then the fractional-response
(Bernoulli quasi-likelihood) logistic model.

``loglik`` is the Bernoulli log-likelihood *kernel* Σ [s log μ + (n − s) log(1 − μ)], without the
binomial coefficients, so it is comparable with :func:`specdyn.report.stats.saturated_loglik` and across
aggregations of the same nodes.

Separation: IRLS on separated data stops on a flat deviance with coefficients drifting to ±∞ and
statsmodels often reports convergence anyway (it warns only when *every* fitted value equals its
outcome, which for aggregated cells also happens to any saturated model: the warning counts only when
every cell is all-accepted or all-rejected). So a fit is also flagged as separated when a fitted
probability of a non-empty cell is within ``SEPARATION_EPS`` of 0 or 1, or when its covariance is not
finite.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import statsmodels.api as sm
from scipy import special
from statsmodels.tools.sm_exceptions import PerfectSeparationWarning

SEPARATION_EPS = 1e-6  # a fitted probability this close to 0 or 1 means (quasi-)separation
MAX_ITER = 100


@dataclass
class LogitFit:
    """A fitted logistic regression.

    ``cov`` is the covariance of ``params``: cluster-robust (the CR1 sandwich over clusters, scaled by
    G / (G − 1) for G clusters) when the fit was given clusters, model-based otherwise.
    """

    params: np.ndarray
    cov: np.ndarray
    loglik: float
    converged: bool
    iterations: int
    separation: bool
    rank_deficient: bool
    clusters: int | None
    messages: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the fit converged, without separation, on a full-rank design: only then are its
        numbers trusted."""
        return self.converged and not self.separation and not self.rank_deficient

    @property
    def bse(self) -> np.ndarray:
        return np.sqrt(np.clip(np.diag(self.cov), 0.0, None))

    def problems(self) -> list[str]:
        """Plain-language reasons the fit is not trusted (empty when :attr:`ok`)."""
        out = [] if self.converged else [f"IRLS did not converge in {self.iterations} iterations"]
        if self.separation:
            out.append("(quasi-)separation: a fitted acceptance probability is 0 or 1")
        if self.rank_deficient:
            out.append("the design is rank-deficient (a level without observations, or collinear factors)")
        return out


def kernel_loglik(successes, trials, mu) -> float:
    """Σ [s log μ + (n − s) log(1 − μ)] (0 log 0 = 0)."""
    s, n = np.asarray(successes, dtype=float), np.asarray(trials, dtype=float)
    return float(np.sum(special.xlogy(s, mu) + special.xlogy(n - s, 1.0 - mu)))


def _non_empty(X, successes, trials, groups):
    s, n = np.asarray(successes, dtype=float), np.asarray(trials, dtype=float)
    keep = n > 0
    g = None if groups is None else np.asarray(groups)[keep]
    return np.asarray(X, dtype=float)[keep], s[keep], n[keep], g


def _separated(caught: list, mu: np.ndarray, cov: np.ndarray, s: np.ndarray, n: np.ndarray) -> bool:
    """statsmodels warns when every fitted value equals its cell's observed share; that means separation
    only when the shares are all 0 or 1 (a saturated model of aggregated cells always fits them)."""
    warned = any(issubclass(w.category, PerfectSeparationWarning) for w in caught)
    flagged = warned and bool(np.all((s == 0) | (s == n)))
    extreme = np.any((mu < SEPARATION_EPS) | (mu > 1 - SEPARATION_EPS))
    return bool(flagged or extreme or not np.all(np.isfinite(cov)))


def fit_logit(X: np.ndarray, successes, trials, groups=None, max_iter: int = MAX_ITER) -> LogitFit:
    """Fit logit P(success) = X @ params on binomial cells with statsmodels' GLM (IRLS).

    ``groups`` (one cluster id per row, e.g. the prompt) gives a cluster-robust covariance. Empty
    cells (``trials == 0``) are dropped. Warnings raised by statsmodels are kept in ``messages``.
    """
    X, s, n, g = _non_empty(X, successes, trials, groups)
    model = sm.GLM(np.column_stack([s, n - s]), X, family=sm.families.Binomial())
    cov = {} if g is None else {"cov_type": "cluster", "cov_kwds": {"groups": g, "use_correction": False}}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = model.fit(maxiter=max_iter, **cov)
    mu = np.asarray(res.mu, dtype=float)
    cov_params = np.asarray(res.cov_params(), dtype=float) * _cluster_factor(g)
    return LogitFit(
        params=np.asarray(res.params, dtype=float), cov=cov_params, loglik=kernel_loglik(s, n, mu),
        converged=bool(res.converged), iterations=int(res.fit_history["iteration"]),
        separation=_separated(caught, mu, cov_params, s, n),
        rank_deficient=bool(np.linalg.matrix_rank(X) < X.shape[1]),
        clusters=None if g is None else len(np.unique(g)),
        messages=sorted({str(w.message).splitlines()[0] for w in caught}))


def _cluster_factor(groups) -> float:
    """G / (G - 1), the small-sample factor of the CR1 sandwich over G clusters (1 without clusters).

    statsmodels' own correction also multiplies by (rows - 1) / (rows - params), which changes with
    how nodes are aggregated into rows; this factor does not.
    """
    if groups is None:
        return 1.0
    n_groups = len(np.unique(groups))
    return n_groups / (n_groups - 1) if n_groups > 1 else float("nan")


def one_hot(index: np.ndarray, n_levels: int, drop_first: bool = True) -> np.ndarray:
    """Treatment (dummy) coding of level indices 0..n_levels-1; level 0 is the reference."""
    cols = np.arange(1 if drop_first else 0, n_levels)
    return (np.asarray(index)[:, None] == cols[None, :]).astype(float)
