"""Statistics shared by the analyses (`specdyn report`, `specdyn compare`): an estimate with its percentile
bootstrap interval, and resampling of prompts (the unit every interval resamples: nodes of one prompt are
not independent). The confidence level and the default number of resamples are defined here, once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_RESAMPLES = 1000  # bootstrap resamples of every interval unless asked otherwise
LEVEL = 0.95  # confidence level of every interval (report and compare)


@dataclass
class Estimate:
    """A point estimate with a percentile bootstrap confidence interval (NaN when undefined)."""

    value: float
    ci_low: float
    ci_high: float

    def to_dict(self, key: str = "value") -> dict:
        """JSON form: ``{key: value, "ci_low": .., "ci_high": ..}`` with NaN written as null."""
        return {key: _num(self.value), "ci_low": _num(self.ci_low), "ci_high": _num(self.ci_high)}

    def shifted(self, delta: float) -> Estimate:
        return Estimate(self.value + delta, self.ci_low + delta, self.ci_high + delta)


@dataclass
class Sampled:
    """A statistic's value on the data and on each bootstrap resample (aligned across domains)."""

    point: float
    boot: np.ndarray

    def estimate(self, level: float = LEVEL) -> Estimate:
        return Estimate(float(self.point), *percentile_ci(self.boot, level))


def _num(x: float):
    return None if x is None or not np.isfinite(x) else float(x)


def percentile_ci(samples: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """Percentile interval of bootstrap samples; NaN when under half of the resamples are defined."""
    samples = np.asarray(samples, dtype=float)
    ok = samples[np.isfinite(samples)]
    if ok.size == 0 or ok.size < samples.size / 2:
        return float("nan"), float("nan")
    alpha = (1 - level) / 2
    low, high = np.quantile(ok, [alpha, 1 - alpha])
    return float(low), float(high)


def resample_counts(n_items: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(n_resamples, n_items) multiplicities of a with-replacement resample of n_items items each."""
    draws = rng.integers(0, n_items, size=(n_resamples, n_items))
    draws += (np.arange(n_resamples) * n_items)[:, None]
    return np.bincount(draws.ravel(), minlength=n_resamples * n_items).reshape(n_resamples, n_items)
