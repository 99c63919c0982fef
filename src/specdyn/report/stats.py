"""The report's statistics: per-prompt sufficient sums, their prompt-level bootstrap, correlations, logistic
fits. Estimates, intervals and resampling shared with `specdyn compare` live in :mod:`specdyn.stats`.

The bootstrap never touches nodes. Every report statistic is a function of *sums over nodes* (counts,
sums of y, of x*y, per depth, ...). Those sums are computed once per prompt (a prompts x columns matrix
``S``); a bootstrap resample of prompts is a vector of multiplicities ``w`` (how often each prompt was
drawn), and the resampled sums are ``w @ S``. So B resamples cost one (B x prompts) @ (prompts x columns)
matrix product, whatever the number of nodes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from specdyn.stats import Sampled, resample_counts

def ratio(num, den):
    """num / den elementwise, NaN where den == 0."""
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def pearson_from_sums(n, sx, sy, sxx, syy, sxy):
    """Pearson correlation from the six sums n, Σx, Σy, Σx², Σy², Σxy (elementwise; NaN if undefined).

    Centre x and y before summing (Pearson is shift-invariant) to avoid cancellation.
    """
    n, sx, sy, sxx, syy, sxy = (np.asarray(a, dtype=float) for a in (n, sx, sy, sxx, syy, sxy))
    vx, vy = n * sxx - sx**2, n * syy - sy**2
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (n * sxy - sx * sy) / np.sqrt(vx * vy)
    defined = (vx > 1e-10 * np.abs(n * sxx)) & (vy > 1e-10 * np.abs(n * syy)) & (vx > 0) & (vy > 0)
    return np.where(defined, np.clip(r, -1.0, 1.0), np.nan)


def midranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank (the ranks Spearman's rho uses)."""
    return stats.rankdata(x, method="average")


class SumsLayout:
    """Named column blocks of the per-prompt sums matrix (prompts x columns)."""

    def __init__(self, n_prompts: int):
        self.n_prompts = n_prompts
        self.slices: dict[str, slice] = {}
        self._blocks: list[np.ndarray] = []
        self._width = 0

    def add(self, name: str, values: np.ndarray) -> None:
        """Register per-prompt sums: shape (prompts,) for one column or (prompts, m) for m columns."""
        values = np.asarray(values, dtype=float)
        values = values[:, None] if values.ndim == 1 else values
        if values.shape[0] != self.n_prompts or name in self.slices:
            raise ValueError(f"bad or duplicate block {name!r}")
        self.slices[name] = slice(self._width, self._width + values.shape[1])
        self._blocks.append(values)
        self._width += values.shape[1]

    def matrix(self) -> np.ndarray:
        return np.hstack(self._blocks) if self._blocks else np.zeros((self.n_prompts, 0))


class Resampled:
    """Sums of one group of prompts on the data (``full``, shape (K,)) and on B resamples ((B, K))."""

    def __init__(self, layout: SumsLayout, full: np.ndarray, boot: np.ndarray):
        self.layout, self.full, self.boot = layout, full, boot

    def __add__(self, other: Resampled) -> Resampled:
        """Pool two groups resampled independently: a stratified resample of their union."""
        return Resampled(self.layout, self.full + other.full, self.boot + other.boot)

    def get(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """A block's sums: (shape (m,), shape (B, m))."""
        cols = self.layout.slices[name]
        return self.full[cols], self.boot[:, cols]

    def sample(self, fn) -> Sampled:
        """Apply ``fn(get)`` to the data and to every resample; ``get(name)`` returns a block's sums
        with a trailing column axis (shape (m,) on the data, (B, m) on the resamples)."""
        point = fn(lambda name: self.full[self.layout.slices[name]])
        boot = fn(lambda name: self.boot[:, self.layout.slices[name]])
        return Sampled(float(np.asarray(point).reshape(())), np.asarray(boot, dtype=float).reshape(-1))

    def columns(self, fn) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`sample` for a statistic with one value per column: ((m,), (B, m))."""
        return (np.asarray(fn(lambda name: self.full[self.layout.slices[name]]), dtype=float),
                np.asarray(fn(lambda name: self.boot[:, self.layout.slices[name]]), dtype=float))


def resample_group(layout: SumsLayout, sums: np.ndarray, members: np.ndarray, n_resamples: int,
                   rng: np.random.Generator, chunk: int = 256) -> Resampled:
    """Bootstrap the prompts ``members`` (rows of ``sums``): resampled column sums, B x K."""
    sub = sums[members]
    boot = np.empty((n_resamples, sums.shape[1]))
    for start in range(0, n_resamples, chunk):
        stop = min(start + chunk, n_resamples)
        boot[start:stop] = resample_counts(len(members), stop - start, rng) @ sub
    return Resampled(layout, sub.sum(axis=0), boot)


# ----------------------------------------------------------------------------------------------------
# Logistic regression


@dataclass
class LogitFit:
    """A fitted logistic regression: coefficients, maximized (quasi-)log-likelihood, convergence."""

    coef: np.ndarray
    loglik: float
    iterations: int
    converged: bool


def bernoulli_loglik(y, eta, weights=None) -> float:
    """Σ w [y log p + (1-y) log(1-p)] with p = sigmoid(eta), computed stably as Σ w [y eta - log(1+e^eta)];
    y may be fractional (quasi-likelihood)."""
    terms = y * eta - (np.maximum(eta, 0.0) + np.log1p(np.exp(-np.abs(eta))))
    return float(np.sum(terms) if weights is None else np.dot(weights, terms))


CHUNK_ROWS = 1 << 18  # rows per chunk in fit_logistic (bounds the size of temporaries)


def _newton_terms(X, y, w, beta) -> tuple[float, np.ndarray, np.ndarray]:
    """Log-likelihood, gradient and Hessian (negated) at ``beta``, in one chunked pass over the rows."""
    k = X.shape[1]
    ll, grad, hess = 0.0, np.zeros(k), np.zeros((k, k))
    for start in range(0, len(y), CHUNK_ROWS):
        rows = slice(start, start + CHUNK_ROWS)
        Xc, yc, wc = X[rows], y[rows], w[rows]
        eta = Xc @ beta
        p = special.expit(eta)
        ll += bernoulli_loglik(yc, eta, wc)
        grad += Xc.T @ (wc * (yc - p))
        hess += (Xc * (wc * p * (1 - p))[:, None]).T @ Xc
    return ll, grad, hess


def fit_logistic(X: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None,
                 max_iter: int = 50, tol: float = 1e-10) -> LogitFit:
    """Maximum-likelihood logistic regression of y (0/1 or a fraction in [0, 1]) on X by Newton/IRLS.

    ``weights`` are case weights (e.g. binomial trial counts when rows are cells with y = successes/n).
    The first column of X should be the intercept. A step that lowers the log-likelihood is halved.
    """
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    y = np.asarray(y, dtype=float)
    beta = np.zeros(X.shape[1])
    mean = np.clip(np.sum(w * y) / np.sum(w), 1e-6, 1 - 1e-6)
    beta[0] = np.log(mean / (1 - mean))
    ll, grad, hess = _newton_terms(X, y, w, beta)
    step = np.linalg.solve(hess + 1e-9 * np.eye(len(beta)), grad)
    for it in range(1, max_iter + 1):
        new_ll, new_grad, new_hess = _newton_terms(X, y, w, beta + step)
        if new_ll < ll - 1e-12 * abs(ll) and np.max(np.abs(step)) > 1e-12:
            step /= 2  # overshoot: retry half the step
            continue
        beta, gain = beta + step, new_ll - ll
        ll, grad, hess = new_ll, new_grad, new_hess
        if abs(gain) <= tol * (abs(ll) + 1):
            return LogitFit(beta, ll, it, True)
        step = np.linalg.solve(hess + 1e-9 * np.eye(len(beta)), grad)
    return LogitFit(beta, ll, max_iter, False)


def saturated_loglik(successes, trials):
    """Maximized log-likelihood of a logistic model with one parameter per cell (closed form).

    ``successes`` and ``trials`` have cells on the last axis; any leading axes (e.g. resamples) are
    kept. Equals the IRLS fit of the cell dummies; empty cells contribute 0.
    """
    s, n = np.asarray(successes, dtype=float), np.asarray(trials, dtype=float)
    p = ratio(s, n)
    p = np.where(np.isnan(p), 0.5, p)
    return np.sum(special.xlogy(s, p) + special.xlogy(n - s, 1 - p), axis=-1)


def mcfadden_r2(loglik, null_loglik):
    """McFadden's pseudo-R²: 1 - LL_model / LL_null (share of the null deviance explained)."""
    ll, ll0 = np.asarray(loglik, dtype=float), np.asarray(null_loglik, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ll0 < 0, 1.0 - ll / np.where(ll0 < 0, ll0, -1.0), np.nan)


def lr_test(loglik_full: float, loglik_reduced: float, df: int) -> tuple[float, float]:
    """Likelihood-ratio test of nested models: (chi² statistic, p-value with ``df`` degrees of freedom)."""
    chi2 = max(0.0, 2.0 * (loglik_full - loglik_reduced))
    return chi2, float(stats.chi2.sf(chi2, df)) if df > 0 else float("nan")
