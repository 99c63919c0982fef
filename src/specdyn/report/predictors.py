"""Descriptive logistic regressions of node acceptance on task domain, tree depth, sibling rank and the two
entropies (all categorical: entropies in deciles over the run), per acceptance notion.

Each model is fitted with statsmodels (:mod:`specdyn.report.fits`) on binomial cells, one per combination
of the model's factor levels: for categorical factors this is exactly the node-level fit, at a cost that
does not grow with the number of nodes. For ``accept_prob`` the response is a fraction and the fit is
the fractional-response (Bernoulli quasi-likelihood) model. Every model reports its convergence,
separation and rank checks.

McFadden's R² = 1 - LL(model) / LL(intercept only) is a share of deviance explained, reported as a
description only: for a categorical factor it is never below 0 and grows with chance differences, and a
domain factor also absorbs prompt-to-prompt differences (domain is constant within a prompt). Whether
domain predicts acceptance more strongly than depth is claim (a)'s cluster-aware test.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from specdyn.report.fits import fit_logit, one_hot
from specdyn.report.notions import Entropy, Notion
from specdyn.report.prepare import Prepared
from specdyn.report.schema import ModelFit, Predictors
from specdyn.report.stats import mcfadden_r2


class Model(Enum):
    """A logistic model; its value is its metrics.json name."""

    NULL = "null"
    DOMAIN = "domain"
    DEPTH = "depth"
    RANK = "rank"
    DRAFT_ENTROPY = "draft_entropy"
    TARGET_ENTROPY = "target_entropy"
    DOMAIN_DEPTH = "domain+depth"
    ALL = "all"

    @property
    def factors(self) -> tuple[str, ...]:
        if self is Model.NULL:
            return ()
        if self is Model.DOMAIN_DEPTH:
            return ("domain", "depth")
        if self is Model.ALL:
            return ("domain", "depth", "rank", "draft_entropy", "target_entropy")
        return (self.value,)


SINGLE = (Model.DOMAIN, Model.DEPTH, Model.RANK, Model.DRAFT_ENTROPY, Model.TARGET_ENTROPY)


def _codes(prep: Prepared) -> dict[str, tuple[np.ndarray, int]]:
    """Each factor's level index per node and its number of levels."""
    bins = prep.entropy_bins
    return {"domain": (prep.node_domain, len(prep.run.domains)),
            "depth": (prep.depth.index, len(prep.depth.values)),
            "rank": (prep.rank.index, len(prep.rank.values)),
            "draft_entropy": (bins[Entropy.DRAFT].index, bins[Entropy.DRAFT].count),
            "target_entropy": (bins[Entropy.TARGET].index, bins[Entropy.TARGET].count)}


@dataclass
class Cells:
    """Nodes aggregated by every factor at once: each cell's level of each factor, node count, and the
    cell of every node. Any model's cells are groups of these (its factors' levels only)."""

    levels: dict[str, tuple[np.ndarray, int]]
    trials: np.ndarray
    of_node: np.ndarray

    @classmethod
    def of(cls, codes: dict[str, tuple[np.ndarray, int]]) -> Cells:
        key = np.zeros(len(next(iter(codes.values()))[0]), np.int64)
        for index, k in codes.values():
            key = key * k + index
        cells, inverse = np.unique(key, return_inverse=True)
        levels = {}
        for name, (_, k) in reversed(codes.items()):
            levels[name], cells = (cells % k, k), cells // k
        return cls(levels, np.bincount(inverse).astype(float), inverse)


def _fit(cells: Cells, factors: tuple[str, ...], successes: np.ndarray) -> ModelFit:
    """Fit intercept + treatment-coded factors on the cells of the factors' levels."""
    key = np.zeros(len(cells.trials), np.int64)
    for name in factors:
        index, k = cells.levels[name]
        key = key * k + index
    coarse, inverse = np.unique(key, return_inverse=True)
    columns = [np.ones((len(coarse), 1))]
    for name in reversed(factors):
        k = cells.levels[name][1]
        columns.append(one_hot(coarse % k, k))
        coarse = coarse // k
    X = np.hstack(columns)
    fit = fit_logit(X, np.bincount(inverse, weights=successes), np.bincount(inverse, weights=cells.trials))
    return ModelFit(X.shape[1], fit.loglik, float("nan"), fit.converged, fit.separation, fit.rank_deficient)


def _models(cells: Cells, y: np.ndarray) -> dict[str, ModelFit]:
    successes = np.bincount(cells.of_node, weights=y, minlength=len(cells.trials))
    fits = {m.value: _fit(cells, m.factors, successes) for m in Model}
    null = fits[Model.NULL.value].loglik
    for fit in fits.values():
        fit.mcfadden_r2 = float(mcfadden_r2(fit.loglik, null))
    return fits


def _summary(fits: dict[str, ModelFit]) -> str:
    ranked = sorted(SINGLE, key=lambda m: -np.nan_to_num(fits[m.value].mcfadden_r2))
    order = ", ".join(f"{m.value} {100 * fits[m.value].mcfadden_r2:.2f}%" for m in ranked)
    return (f"Deviance of {Notion.LOCAL.value} explained by each factor alone (McFadden R², descriptive, not a "
            f"test): {order}. Whether domain predicts acceptance more strongly than depth is claim (a)'s test.")


def predictors(prep: Prepared) -> Predictors:
    cells = Cells.of(_codes(prep))
    models = {notion: _models(cells, y) for notion, y in prep.y.items()}
    return Predictors(_summary(models[Notion.LOCAL]), models)
