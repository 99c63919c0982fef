"""Rates within bins of a quantity (entropy, the draft's probability, the position in the output, the
draft-target TV distance), with prompt-bootstrap intervals.

Rows (nodes or trials) are assigned to bins; per prompt and bin the sums of 1, x and every outcome are
registered in the report's sums layout, so each bin's rate is resampled with the prompts like every
other statistic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specdyn.report.notions import Measure
from specdyn.report.prepare import Bins
from specdyn.report.schema import Bin, Binned
from specdyn.report.stats import Group, SumsLayout, ratio
from specdyn.stats import Sampled


@dataclass
class BinnedRows:
    """Rows to bin: each row's prompt, its bin (``bins.index``, -1 = left out), the binned quantity
    ``x`` and the outcomes whose rates are reported (0/1, or fractions)."""

    name: str  # the sums block prefix; unique per analysis
    prompt: np.ndarray
    bins: Bins
    x: np.ndarray
    outcomes: dict[Measure, np.ndarray]


def _cells(layout: SumsLayout, rows: BinnedRows, weights=None) -> np.ndarray:
    keep = rows.bins.index >= 0
    k = rows.bins.count
    key = rows.prompt[keep] * k + rows.bins.index[keep]
    w = None if weights is None else np.asarray(weights, dtype=float)[keep]
    return np.bincount(key, weights=w, minlength=layout.n_prompts * k).reshape(layout.n_prompts, k)


def add_binned(layout: SumsLayout, rows: BinnedRows) -> None:
    """Register per-prompt, per-bin sums of 1, x and each outcome."""
    layout.add(f"{rows.name}:n", _cells(layout, rows))
    layout.add(f"{rows.name}:x", _cells(layout, rows, np.nan_to_num(rows.x)))
    for measure, y in rows.outcomes.items():
        layout.add(f"{rows.name}:{measure.value}", _cells(layout, rows, y))


def read_binned(group: Group, rows: BinnedRows, x: str, unit: str) -> Binned:
    """Each non-empty bin of the group: edges, mean x, count and the rate of every outcome."""
    n, xsum = group.total(f"{rows.name}:n"), group.total(f"{rows.name}:x")
    rates = {m: group.columns(lambda g, m=m: ratio(g(f"{rows.name}:{m.value}"), g(f"{rows.name}:n")))
             for m in rows.outcomes}
    edges = rows.bins.edges
    return Binned(x, unit, None, [
        Bin(float(edges[j]), float(edges[j + 1]), float(xsum[j] / n[j]), int(n[j]),
            {m: Sampled(point[j], boot[:, j]).estimate() for m, (point, boot) in rates.items()})
        for j in range(rows.bins.count) if n[j] > 0])


def unavailable(x: str, unit: str, field: str, why: str | None = None) -> Binned:
    """An analysis this run cannot have; ``why`` defaults to the field being absent from the records."""
    return Binned(x, unit, why or f"unavailable for this run (recorded before field `{field}` existed)")
