"""Measuring forward-pass costs of a draft and a target on this machine (``specdyn budget --measure``).

One *pass* feeds ``tokens`` new query tokens per row (a chain of tree nodes) to a model whose cache
already holds ``context`` committed tokens per row, for ``batch`` rows at once. The cache is restored
between repeats with ``commit([[]] * batch)``, which drops the tree slots. The result is a list of
:class:`~specdyn.records.Timing` records; fitting and pricing them is :mod:`specdyn.budget.costs`' job.

Besides the run's own draft model (none for prompt lookup), other draft models may be timed in the same
interleaved repeats (``alternatives``: cheaper drafters the budget compares with), each timing naming its
drafter spec.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from specdyn.defaults import TIMING_CONTEXT
from specdyn.engine.cache import CachedModel, Query
from specdyn.engine.proposers import pending_query, prefill
from specdyn.engine.tree import DraftTree
from specdyn.errors import SpecdynError
from specdyn.records import Role, Timing

DEFAULT_SIZES = (1, 2, 4, 8, 16, 32)
DEFAULT_BATCHES = (1, 4)


@dataclass
class Measurement:
    """Timings of both models, the context they were taken at, and how (repeats, threads, when)."""

    timings: list[Timing]
    context_tokens: int
    info: dict = field(default_factory=dict)


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
    drafter: str = ""

    def time_once(self, tokens: int) -> float:
        start = time.perf_counter()
        self.lm.forward(self.queries[tokens])
        seconds = time.perf_counter() - start
        self.lm.commit([[] for _ in range(self.batch)])  # drop the tree slots: the cache is as before
        return seconds


def _bench(role: Role, model, batch: int, sizes, context: int, gen: torch.Generator, drafter: str = "") -> _Bench:
    vocab = int(model.config.vocab_size)
    ctx = [torch.randint(vocab, (context,), generator=gen).tolist() for _ in range(batch)]
    lm = prefill(model, [c + [0] for c in ctx])  # caches exactly the `context` tokens of each row
    queries = {}
    for n in sizes:
        trees = [_chain(torch.randint(vocab, (n,), generator=gen).tolist()) for _ in range(batch)]
        queries[n] = pending_query(ctx, [context] * batch, trees, [list(range(n))] * batch)  # [batch, n] tree tokens
    return _Bench(role, batch, lm, queries, drafter)


def time_benches(benches: list[_Bench], sizes, repeats: int) -> list[Timing]:
    """Median seconds per (bench, size). Repeats are interleaved across models, batches and sizes, so a
    burst of load on the machine spreads over all of them instead of skewing one; one warm-up pass each."""
    samples = {(i, n): [] for i in range(len(benches)) for n in sizes}
    for r in range(repeats + 1):
        for (i, n), got in samples.items():
            seconds = benches[i].time_once(n)
            if r:
                got.append(seconds)
    return [Timing(benches[i].role.value, benches[i].batch, n, float(np.median(got)), got, benches[i].drafter)
            for (i, n), got in samples.items()]


def measure_timings(draft_model, target_model, sizes=DEFAULT_SIZES, batches=DEFAULT_BATCHES, repeats: int = 5,
                    context: int = TIMING_CONTEXT, info: dict | None = None, drafter: str = "",
                    alternatives: dict | None = None) -> Measurement:
    """Time the models at every (batch, size): ``draft_model`` (the drafter ``drafter``'s model; None for a
    drafter without one), each model of ``alternatives`` (drafter spec -> model) and the target."""
    if repeats < 1 or context < 1 or min(sizes) < 1 or min(batches) < 1:
        raise SpecdynError("repeats, context, sizes and batches must all be >= 1")
    gen = torch.Generator().manual_seed(0)
    drafts = ({drafter: draft_model} if draft_model is not None else {}) | dict(alternatives or {})
    timed = [(Role.DRAFT, spec, model) for spec, model in drafts.items()] + [(Role.TARGET, "", target_model)]
    benches = [_bench(role, model, b, sizes, context, gen, spec) for role, spec, model in timed for b in batches]
    timings = time_benches(benches, sizes, repeats)
    meta = {"repeats": repeats, "torch_threads": torch.get_num_threads(), "measured": time.strftime("%Y-%m-%dT%H:%M:%S"), **(info or {})}
    return Measurement(timings, context, meta)
