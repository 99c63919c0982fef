"""The report's statistics: per-prompt sufficient sums, their prompt-level bootstrap, correlations and
closed-form log-likelihoods (model fits are in :mod:`specdyn.report.fits`). Estimates, intervals and
resampling shared with `specdyn compare` live in :mod:`specdyn.stats`.

The bootstrap never touches nodes. Every report statistic is a function of *sums over nodes* (counts,
sums of y, of x*y, per depth, ...). Those sums are computed once per prompt (a prompts x columns matrix
``S``); a bootstrap resample of prompts is a vector of multiplicities ``w`` (how often each prompt was
drawn), and the resampled sums are ``w @ S``. So B resamples cost one (B x prompts) @ (prompts x columns)
matrix product, whatever the number of nodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
from scipy import special, stats

from specdyn.stats import Estimate, Sampled, resample_counts

T = TypeVar("T")

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
    return correlation(n * sxy - sx * sy, n * sxx - sx**2, n * syy - sy**2, n * sxx, n * syy)


def correlation(cov, vx, vy, x_scale, y_scale):
    """cov / sqrt(vx vy), NaN where a variance is not positive or is lost to cancellation (below 1e-10
    of the raw sum of squares it was computed from, ``x_scale`` / ``y_scale``)."""
    cov, vx, vy = (np.asarray(a, dtype=float) for a in (cov, vx, vy))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = cov / np.sqrt(vx * vy)
    defined = (vx > 1e-10 * np.abs(x_scale)) & (vy > 1e-10 * np.abs(y_scale)) & (vx > 0) & (vy > 0)
    return np.where(defined, np.clip(r, -1.0, 1.0), np.nan)


MOMENTS = 9  # columns of :func:`moment_sums` per cell


class Moments:
    """Per-prompt sums for Pearson correlations of one x with any number of y's over rows, split by
    ``cell`` (0..width-1) when given. :meth:`with_y` gives, per prompt and cell, n, Σx, Σy, Σx², Σy², Σxy
    and the prompt-mean terms ΣxΣy/n, (Σx)²/n, (Σy)²/n that split the correlation into within- and
    between-prompt parts (:func:`pearson_parts`): shape (prompts, width * MOMENTS). x is centred first
    (no cancellation; correlations are shift-invariant); its own sums are computed once."""

    def __init__(self, prompt: np.ndarray, n_prompts: int, x: np.ndarray, cell: np.ndarray | None = None,
                 width: int = 1):
        self.key = prompt * width + (0 if cell is None else cell)
        self.shape, self.size = (n_prompts, width * MOMENTS), n_prompts * width
        self.xc = np.asarray(x, dtype=float) - (np.mean(x) if len(x) else 0.0)
        self.n, self.sx, self.sxx = self._total(), self._total(self.xc), self._total(self.xc**2)

    def _total(self, weights=None) -> np.ndarray:
        return np.bincount(self.key, weights=weights, minlength=self.size)

    def with_y(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=float)
        sy = self._total(y)
        safe_n = np.where(self.n > 0, self.n, 1.0)
        mean_terms = [a * b / safe_n for a, b in ((self.sx, sy), (self.sx, self.sx), (sy, sy))]
        cols = [self.n, self.sx, sy, self.sxx, self._total(y**2), self._total(self.xc * y), *mean_terms]
        return np.stack(cols, axis=-1).reshape(self.shape)


def moment_sums(prompt: np.ndarray, n_prompts: int, x: np.ndarray, y: np.ndarray,
                cell: np.ndarray | None = None, width: int = 1) -> np.ndarray:
    """:meth:`Moments.with_y` for a single pair (x, y)."""
    return Moments(prompt, n_prompts, x, cell, width).with_y(y)


@dataclass
class PearsonParts(Generic[T]):
    """A Pearson correlation over rows and its two parts: within prompts (rows' deviations from their
    prompt's means) and between prompts (prompt means, weighted by rows). ``T``: arrays of values, or
    :class:`~specdyn.stats.Sampled` values."""

    total: T
    within: T
    between: T


def pearson_parts(s: np.ndarray) -> PearsonParts:
    """The correlations of :func:`moment_sums` columns summed over a group (last axis: MOMENTS)."""
    n, sx, sy, sxx, syy, sxy, cxy, cxx, cyy = np.moveaxis(np.asarray(s, dtype=float), -1, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        gx, gy = sx**2 / n, sy**2 / n
        return PearsonParts(pearson_from_sums(n, sx, sy, sxx, syy, sxy),
                            correlation(sxy - cxy, sxx - cxx, syy - cyy, sxx, syy),
                            correlation(cxy - sx * sy / n, cxx - gx, cyy - gy, cxx, cyy))


PARTS = ("total", "within", "between")


def correlation_samples(sums: Resampled, name: str) -> list[PearsonParts[Sampled]]:
    """The correlations of a :func:`moment_sums` block, one per cell, on the data and every resample."""
    full, boot = sums.get(name)
    cells = full.shape[-1] // MOMENTS
    point = pearson_parts(full.reshape(cells, MOMENTS))
    again = pearson_parts(boot.reshape(len(boot), cells, MOMENTS))
    return [PearsonParts(*(Sampled(float(getattr(point, p)[c]), getattr(again, p)[:, c]) for p in PARTS))
            for c in range(cells)]


def midranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank (the ranks Spearman's rho uses)."""
    return stats.rankdata(x, method="average")


class SumsLayout:
    """Named column blocks of the per-prompt sums matrix (prompts x columns)."""

    def __init__(self, n_prompts: int):
        self.n_prompts = n_prompts
        self.slices: dict[str, slice] = {}
        self._blocks: dict[str, np.ndarray] = {}
        self._width = 0

    def add(self, name: str, values: np.ndarray) -> None:
        """Register per-prompt sums: shape (prompts,) for one column or (prompts, m) for m columns."""
        values = np.asarray(values, dtype=float)
        values = values[:, None] if values.ndim == 1 else values
        if values.shape[0] != self.n_prompts or name in self.slices:
            raise ValueError(f"bad or duplicate block {name!r}")
        self.slices[name] = slice(self._width, self._width + values.shape[1])
        self._blocks[name] = values
        self._width += values.shape[1]

    def block(self, name: str) -> np.ndarray:
        """The per-prompt sums registered as ``name``: shape (prompts, m)."""
        return self._blocks[name]

    def matrix(self) -> np.ndarray:
        blocks = list(self._blocks.values())
        return np.hstack(blocks) if blocks else np.zeros((self.n_prompts, 0))


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


@dataclass
class Group:
    """One group of prompts (a domain, all prompts, a source...): its resampled sums, its prompt indices
    and whether it can have intervals (a single prompt cannot: its resamples all equal the data)."""

    sums: Resampled
    members: np.ndarray
    has_ci: bool

    def keep(self, s: Sampled) -> Sampled:
        """``s``, its resamples replaced by NaN when the group has no intervals."""
        return s if self.has_ci else Sampled(s.point, np.full_like(s.boot, np.nan))

    def sample(self, fn) -> Sampled:
        """:meth:`Resampled.sample` under the group's interval rule."""
        return self.keep(self.sums.sample(fn))

    def estimate(self, fn) -> Estimate:
        return self.sample(fn).estimate()

    def columns(self, fn) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`Resampled.columns` under the group's interval rule."""
        point, boot = self.sums.columns(fn)
        return point, (boot if self.has_ci else np.full_like(boot, np.nan))

    def total(self, name: str) -> np.ndarray:
        """A block's sums over the group's prompts (the data, no resampling)."""
        return self.sums.get(name)[0]


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
# Log-likelihoods of categorical models


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


@dataclass
class Resampler:
    """Bootstraps any set of prompts from the per-prompt sums (``sums``: ``layout.matrix()``); a set of
    fewer than ``min_prompts`` prompts gets no intervals."""

    layout: SumsLayout
    sums: np.ndarray
    n_boot: int
    min_prompts: int = 2

    def group(self, members: np.ndarray, rng: np.random.Generator) -> Group:
        resampled = resample_group(self.layout, self.sums, members, self.n_boot, rng)
        return Group(resampled, members, len(members) >= self.min_prompts)
