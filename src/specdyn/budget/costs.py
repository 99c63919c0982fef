"""Measured forward-pass costs of the draft and the target, fitted as ``seconds = a + b * tokens``.

One *pass* feeds ``tokens`` new query tokens per row (a chain of tree nodes) to a model whose cache
already holds ``context_tokens`` committed tokens per row, for ``batch`` rows at once. The cache is
restored between repeats with ``commit([[]] * batch)``, which drops the tree slots. For each role and
batch size the median time of every size is fitted by least squares.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import nnls

from specdyn.engine.cache import CachedModel, Query
from specdyn.errors import SpecdynError
from specdyn.engine.proposers import pending_query, prefill
from specdyn.rundir.writer import write_atomic
from specdyn.engine.tree import DraftTree

COSTS_FILE = "costs.json"
DEFAULT_SIZES = (1, 2, 4, 8, 16, 32)
DEFAULT_BATCHES = (1, 4)
DEFAULT_CONTEXT = 100
FORMAT_VERSION = 1
POOR_FIT = 0.15  # relative rms error above which `specdyn budget` warns


class Role(Enum):
    """Which model of the pair a timing belongs to."""

    DRAFT = "draft"
    TARGET = "target"


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


@dataclass
class Timing:
    """Median wall seconds (``seconds``, of the timed ``samples``) of one forward pass of ``role`` feeding
    ``tokens`` query tokens to each of ``batch`` rows."""

    role: str
    batch: int
    tokens: int
    seconds: float
    samples: list[float] = field(default_factory=list)


def fit_linear(tokens, seconds) -> LinearFit:
    """Non-negative least-squares line through (tokens, seconds); needs two or more distinct token counts."""
    x, y = np.asarray(tokens, dtype=float), np.asarray(seconds, dtype=float)  # [samples]
    if np.unique(x).size < 2:
        raise SpecdynError("a cost fit needs timings at two or more different token counts")
    design = np.stack([np.ones_like(x), x], axis=1)  # [samples, 2]
    (a, b), _ = nnls(design, y)
    rms = float(np.sqrt(np.mean((y - design @ (a, b)) ** 2)))
    return LinearFit(float(a), float(b), rms / float(y.mean()) if y.mean() > 0 else 0.0)


@dataclass
class CostModel:
    """Fitted pass costs per role and batch size, plus the timings they came from."""

    draft: dict[int, LinearFit]
    target: dict[int, LinearFit]
    timings: list[Timing]
    context_tokens: int = DEFAULT_CONTEXT
    info: dict = field(default_factory=dict)

    @classmethod
    def from_timings(cls, timings: list[Timing], context_tokens: int = DEFAULT_CONTEXT, info: dict | None = None) -> "CostModel":
        fits = {role: {} for role in Role}
        for role in Role:
            for b in sorted({t.batch for t in timings if t.role == role.value}):
                rows = [t for t in timings if t.role == role.value and t.batch == b]
                fits[role][b] = fit_linear([t.tokens for t in rows], [t.seconds for t in rows])
        return cls(fits[Role.DRAFT], fits[Role.TARGET], list(timings), context_tokens, dict(info or {}))

    def _fit(self, fits: dict[int, LinearFit], role: Role, batch: int) -> LinearFit:
        if batch not in fits:
            raise SpecdynError(f"the cost model has no {role.value} timings for batch {batch} "
                               f"(measured: {', '.join(map(str, sorted(fits))) or 'none'}); re-measure with --measure")
        return fits[batch]

    def draft_seconds(self, tokens: int, batch: int = 1) -> float:
        """Predicted seconds of one draft pass feeding ``tokens`` query tokens per row."""
        return self._fit(self.draft, Role.DRAFT, batch)(tokens)

    def target_seconds(self, tokens: int, batch: int = 1) -> float:
        """Predicted seconds of one target pass feeding ``tokens`` query tokens per row."""
        return self._fit(self.target, Role.TARGET, batch)(tokens)

    def poor_fits(self, batch: int, limit: float = POOR_FIT) -> list[str]:
        """Descriptions of this batch's fits whose relative error exceeds ``limit``."""
        fits = ((r, self._fit(getattr(self, r.value), r, batch)) for r in Role)
        return [f"{r.value} batch {batch} (rms error {f.rel_error:.0%} of the mean)" for r, f in fits if f.rel_error > limit]

    @property
    def batches(self) -> list[int]:
        return sorted(set(self.draft) & set(self.target))

    def to_json(self) -> dict:
        fits = {r.value: {str(b): asdict(f) for b, f in getattr(self, r.value).items()} for r in Role}
        return {"version": FORMAT_VERSION, "context_tokens": self.context_tokens, "fits": fits,
                "timings": [asdict(t) for t in self.timings], "info": self.info}

    @classmethod
    def from_json(cls, data: dict) -> "CostModel":
        try:
            fits = {r: {int(b): LinearFit(**f) for b, f in data["fits"][r.value].items()} for r in Role}
            timings = [Timing(**t) for t in data.get("timings", [])]
            return cls(fits[Role.DRAFT], fits[Role.TARGET], timings, int(data["context_tokens"]), data.get("info", {}))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SpecdynError(f"malformed cost model ({type(exc).__name__}: {exc})") from None

    def save(self, path: str | Path) -> None:
        write_atomic(Path(path), lambda p: p.write_text(json.dumps(self.to_json(), indent=2) + "\n"))

    @classmethod
    def load(cls, path: str | Path) -> "CostModel":
        try:
            return cls.from_json(json.loads(Path(path).read_text()))
        except OSError as exc:
            raise SpecdynError(f"cannot read cost model {path}: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise SpecdynError(f"cost model {path} is not valid JSON: {exc}") from None


def _chain(tokens: list[int]) -> DraftTree:
    """A chain of tree nodes carrying ``tokens`` (node i is the parent of node i + 1)."""
    n = len(tokens)
    return DraftTree(list(tokens), list(range(-1, n - 1)), [0] * n, [1.0] * n, [0.0] * n)


@dataclass
class _Bench:
    """One model at one batch size: a cache holding ``context`` tokens per row and a query per size."""

    role: Role
    batch: int
    lm: CachedModel
    queries: dict[int, Query]

    def time_once(self, tokens: int) -> float:
        start = time.perf_counter()
        self.lm.forward(self.queries[tokens])
        seconds = time.perf_counter() - start
        self.lm.commit([[] for _ in range(self.batch)])  # drop the tree slots: the cache is as before
        return seconds


def _bench(role: Role, model, batch: int, sizes, context: int, gen: torch.Generator) -> _Bench:
    vocab = int(model.config.vocab_size)
    ctx = [torch.randint(vocab, (context,), generator=gen).tolist() for _ in range(batch)]
    lm = prefill(model, [c + [0] for c in ctx])  # caches exactly the `context` tokens of each row
    queries = {}
    for n in sizes:
        trees = [_chain(torch.randint(vocab, (n,), generator=gen).tolist()) for _ in range(batch)]
        queries[n] = pending_query(ctx, [context] * batch, trees, [list(range(n))] * batch)  # [batch, n] tree tokens
    return _Bench(role, batch, lm, queries)


def time_benches(benches: list[_Bench], sizes, repeats: int) -> list[Timing]:
    """Median seconds per (bench, size). Repeats are interleaved across models, batches and sizes, so a
    burst of load on the machine spreads over all of them instead of skewing one; one warm-up pass each."""
    samples = {(i, n): [] for i in range(len(benches)) for n in sizes}
    for r in range(repeats + 1):
        for (i, n), got in samples.items():
            seconds = benches[i].time_once(n)
            if r:
                got.append(seconds)
    return [Timing(benches[i].role.value, benches[i].batch, n, float(np.median(got)), got) for (i, n), got in samples.items()]


def measure_costs(draft_model, target_model, sizes=DEFAULT_SIZES, batches=DEFAULT_BATCHES, repeats: int = 5,
                  context: int = DEFAULT_CONTEXT, info: dict | None = None) -> CostModel:
    """Time both models at every (batch, size) and fit ``seconds = a + b * tokens`` per role and batch."""
    if repeats < 1 or context < 1 or min(sizes) < 1 or min(batches) < 1:
        raise SpecdynError("repeats, context, sizes and batches must all be >= 1")
    gen = torch.Generator().manual_seed(0)
    benches = [_bench(role, model, b, sizes, context, gen)
               for role, model in ((Role.DRAFT, draft_model), (Role.TARGET, target_model)) for b in batches]
    timings = time_benches(benches, sizes, repeats)
    meta = {"repeats": repeats, "torch_threads": torch.get_num_threads(), "measured": time.strftime("%Y-%m-%dT%H:%M:%S"), **(info or {})}
    return CostModel.from_timings(timings, context, meta)
