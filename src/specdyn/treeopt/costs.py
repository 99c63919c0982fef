"""The cost model: measured forward-pass costs of the draft and the target (:class:`~specdyn.records.Timing`
records, taken by :mod:`specdyn.engine.timing`), fitted as ``seconds = a + b * tokens`` per role and batch
size, and the predicted seconds of one speculative step with a given tree shape (the formula is in
:mod:`specdyn.budget.plan`). Pure: timings in, fits and predictions out.

The draft fits belong to the run's drafter (``info["drafter"]``; timings that name no drafter are its);
draft timings of other drafters (cheaper ones ``specdyn budget --measure`` compares with) are fitted as
``alternatives``, and :meth:`CostModel.for_drafter` prices with one of them instead. A drafter without a
draft model (prompt lookup) has no draft timings and costs nothing to draft.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

from specdyn.files import read_text, write_text_atomic
from specdyn.defaults import TIMING_CONTEXT
from specdyn.errors import SpecdynError
from specdyn.records import Role, Timing
from specdyn.specs import TreeShape

COSTS_FILE = "costs.json"
FORMAT_VERSION = 1
POOR_FIT = 0.15  # relative rms error above which `specdyn budget` warns


class DraftCost(Enum):
    """What one draft pass of a drafter costs under the cost model (the key `specdyn budget` prices a
    drafter by; :mod:`specdyn.budget.drafters` maps drafter specs to it)."""

    DRAFT_MODEL = "draft model"  # the draft model's fitted passes; a merged (distilled) adapter costs the same
    NONE = "none"  # no model pass at all (prompt lookup)


@dataclass
class LinearFit:
    """``seconds(tokens) = intercept + slope * tokens``: least squares over the measured sizes with both
    coefficients constrained >= 0 (a pass never takes negative time nor gets faster with more tokens).
    ``rel_error``: root-mean-square residual over the mean time (high: noisy timings, a busy machine)."""

    intercept: float
    slope: float
    rel_error: float = 0.0

    def __call__(self, tokens: float) -> float:
        return self.intercept + self.slope * tokens


def fit_linear(tokens, seconds) -> LinearFit:
    """Non-negative least-squares line through (tokens, seconds); needs two or more distinct token counts."""
    x, y = np.asarray(tokens, dtype=float), np.asarray(seconds, dtype=float)  # [samples]
    if np.unique(x).size < 2:
        raise SpecdynError("a cost fit needs timings at two or more different token counts")
    design = np.stack([np.ones_like(x), x], axis=1)  # [samples, 2]
    (a, b), _ = nnls(design, y)
    rms = float(np.sqrt(np.mean((y - design @ (a, b)) ** 2)))
    return LinearFit(float(a), float(b), rms / float(y.mean()) if y.mean() > 0 else 0.0)


Fits = dict[int, LinearFit]  # batch size -> fit


def fit_batches(timings: list[Timing]) -> Fits:
    """One fit per batch size of these timings (one role, one model)."""
    return {b: fit_linear([t.tokens for t in timings if t.batch == b], [t.seconds for t in timings if t.batch == b])
            for b in sorted({t.batch for t in timings})}


@dataclass
class CostModel:
    """Fitted pass costs per role and batch size, plus the timings they came from. ``draft`` is the run's
    drafter's (empty for a drafter without a draft model); ``alternatives`` other drafters' (spec -> fits)."""

    draft: Fits
    target: Fits
    timings: list[Timing]
    context_tokens: int = TIMING_CONTEXT
    info: dict = field(default_factory=dict)
    alternatives: dict[str, Fits] = field(default_factory=dict)

    @classmethod
    def from_timings(cls, timings: list[Timing], context_tokens: int = TIMING_CONTEXT, info: dict | None = None) -> "CostModel":
        own = {"", (info or {}).get("drafter", "")}
        drafts = [t for t in timings if t.role == Role.DRAFT.value]
        others = sorted({t.drafter for t in drafts} - own)
        return cls(fit_batches([t for t in drafts if t.drafter in own]),
                   fit_batches([t for t in timings if t.role == Role.TARGET.value]), list(timings), context_tokens,
                   dict(info or {}), {d: fit_batches([t for t in drafts if t.drafter == d]) for d in others})

    def for_drafter(self, drafter: str) -> "CostModel":
        """The same costs with ``drafter``'s draft fits (one of ``alternatives``) in place of the run's."""
        if drafter not in self.alternatives:
            raise SpecdynError(f"the cost model has no timings of drafter {drafter!r}; re-measure with --measure")
        return replace(self, draft=self.alternatives[drafter], alternatives={}, info=self.info | {"drafter": drafter})

    def _fit(self, fits: Fits, role: Role, batch: int) -> LinearFit:
        if batch not in fits:
            raise SpecdynError(f"the cost model has no {role.value} timings for batch {batch} "
                               f"(measured: {', '.join(map(str, sorted(fits))) or 'none'}); re-measure with --measure")
        return fits[batch]

    def draft_seconds(self, tokens: int, batch: int = 1) -> float:
        """Predicted seconds of one draft pass feeding ``tokens`` query tokens per row (0 for a drafter without
        a draft model: no draft timings at all)."""
        if not self.draft and not any(t.role == Role.DRAFT.value for t in self.timings):
            return 0.0
        return self._fit(self.draft, Role.DRAFT, batch)(tokens)

    def drafter_seconds(self, cost: DraftCost, tokens: int, batch: int = 1) -> float:
        """Predicted seconds of one draft pass of a drafter of cost class ``cost``."""
        return self.draft_seconds(tokens, batch) if cost is DraftCost.DRAFT_MODEL else 0.0

    def target_seconds(self, tokens: int, batch: int = 1) -> float:
        """Predicted seconds of one target pass feeding ``tokens`` query tokens per row."""
        return self._fit(self.target, Role.TARGET, batch)(tokens)

    def poor_fits(self, batch: int, limit: float = POOR_FIT) -> list[str]:
        """Descriptions of this batch's fits whose relative error exceeds ``limit``."""
        fits = [(r, self._fit(getattr(self, r.value), r, batch)) for r in Role if getattr(self, r.value) or r is Role.TARGET]
        return [f"{r.value} batch {batch} (rms error {f.rel_error:.0%} of the mean)" for r, f in fits if f.rel_error > limit]

    @property
    def batches(self) -> list[int]:
        return sorted(set(self.draft) & set(self.target)) if self.draft else sorted(self.target)

    def to_json(self) -> dict:
        fits = {r.value: _fits_json(getattr(self, r.value)) for r in Role}
        return {"version": FORMAT_VERSION, "context_tokens": self.context_tokens, "fits": fits,
                "alternatives": {d: _fits_json(f) for d, f in self.alternatives.items()},
                "timings": [asdict(t) for t in self.timings], "info": self.info}

    @classmethod
    def from_json(cls, data: dict) -> "CostModel":
        try:
            fits = {r: _fits_from(data["fits"][r.value]) for r in Role}
            timings = [Timing(**t) for t in data.get("timings", [])]
            others = {d: _fits_from(f) for d, f in data.get("alternatives", {}).items()}
            return cls(fits[Role.DRAFT], fits[Role.TARGET], timings, int(data["context_tokens"]), data.get("info", {}),
                       others)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SpecdynError(f"malformed cost model ({type(exc).__name__}: {exc})") from None

    def save(self, path: str | Path) -> None:
        write_text_atomic(Path(path), json.dumps(self.to_json(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "CostModel":
        text = read_text(path, "cost model")
        try:
            return cls.from_json(json.loads(text))
        except json.JSONDecodeError as exc:
            raise SpecdynError(f"cost model {path} is not valid JSON: {exc}") from None


def _fits_json(fits: Fits) -> dict:
    return {str(b): asdict(f) for b, f in fits.items()}


def _fits_from(raw: dict) -> Fits:
    return {int(b): LinearFit(**f) for b, f in raw.items()}


def draft_passes(shape: TreeShape) -> list[int]:
    """Query tokens per row of each draft pass: 1 (the pending token), then the frontier of each level."""
    parents = {p[:-1] for p in shape.paths if len(p) > 1}
    return [1] + [sum(1 for p in parents if len(p) == level) for level in range(1, shape.depth)]


def step_seconds(shape: TreeShape, costs: CostModel, batch: int) -> float:
    """Predicted seconds of one speculative step with ``shape`` (draft passes + one target pass)."""
    draft = sum(costs.draft_seconds(q, batch) for q in draft_passes(shape))
    return draft + costs.target_seconds(shape.size + 1, batch)
