"""The speculative decoding loop: draft a tree, verify it in one target pass, accept, commit.

Several prompts can be decoded at once (``batch_size``): their trees are drafted and verified in the
same forward passes, each row with its own tree mask and cache slots. Rows that finish are replaced by
new prompts. With ``batch_size=1`` this is plain single-prompt tree speculative decoding.

At temperature > 0 every prompt draws its random numbers from its own generator, seeded from the run
seed and its prompt id, so batch composition and resumption never change what a prompt produces.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice

import torch

from specdyn.engine.proposers import CachedRows, Proposer, last_pending, pending_query
from specdyn.engine.recording import Recorder, StepTimes
from specdyn.engine.sampling import row_generator
from specdyn.engine.tree import DraftTree
from specdyn.engine.verify import Verifier, make_verifier
from specdyn.records import NodeRecord, RecordLevel, StepRecord
from specdyn.sampling_spec import Sampling


@dataclass
class PromptInput:
    """A prompt to decode: an id and the token ids fed to the models."""

    prompt_id: str
    prompt_ids: list[int]


@dataclass
class GenerationResult:
    """Everything one prompt's decoding produced."""

    prompt_id: str
    prompt_ids: list[int]
    output_ids: list[int] = field(default_factory=list)
    nodes: list[NodeRecord] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)
    seconds: float = 0.0
    text: str = ""

    @property
    def accepted(self) -> list[int]:
        """Drafted tokens accepted per step (bonus not counted)."""
        return [s.accepted for s in self.steps]

    @property
    def tokens(self) -> list[int]:
        """Committed sequence: prompt then generated tokens."""
        return self.prompt_ids + self.output_ids


class TargetScorer(CachedRows):
    """The target model's side of a step: score every tree node in one forward pass, then commit."""

    def score(self, contexts: list[list[int]], trees: list[DraftTree]) -> list[torch.Tensor]:
        """Per row, ``[n + 1, vocab]`` logits: after the last committed token, then after each node."""
        cached = self.lm.context_len()
        feed = [list(range(len(t))) for t in trees]
        logits = self.lm.forward(pending_query(contexts, cached, trees, feed))  # [b, q, vocab]
        first = last_pending(contexts, cached)
        return [logits[b, i : i + len(t) + 1] for b, (i, t) in enumerate(zip(first, trees))]


@dataclass
class _Row:
    """A prompt in flight, with the generator all its random draws come from."""

    result: GenerationResult
    started: float
    rng: torch.Generator
    done: bool = False

    @property
    def context(self) -> list[int]:
        return self.result.tokens


class SpeculativeDecoder:
    """Tree speculative decoding with a record of every node: lossless at temperature 0 (greedy
    verification), distributed exactly as sampling from the warped target otherwise.

    ``eos_token_ids``: generation of a prompt stops after emitting any of these (inclusive).
    ``max_new_tokens``: at most this many generated tokens per prompt.
    ``sampling``: temperature and top-p; the default is greedy. ``seed``: with the prompt id, seeds each
    prompt's random draws (:func:`~specdyn.engine.sampling.row_generator`).
    ``verifier``: overrides the verifier ``sampling`` implies (:func:`~specdyn.engine.verify.make_verifier`).
    ``records``: what each result records (:class:`~specdyn.records.RecordLevel`; the output is the same at
    every level). A proposer keeps the draft distributions node records need only when built with
    ``full_stats=True`` (the default).
    """

    def __init__(self, proposer: Proposer, target, eos_token_ids: Iterable[int], max_new_tokens: int = 128,
                 verifier: Verifier | None = None, sampling: Sampling = Sampling(), seed: int = 0,
                 records: RecordLevel = RecordLevel.FULL):
        self.proposer, self.target = proposer, TargetScorer(target)
        self.sampling, self.seed = sampling, seed
        self.verifier = verifier or make_verifier(sampling)
        self.recorder = Recorder(records)
        self.eos = frozenset(eos_token_ids)
        self.max_new_tokens = max_new_tokens

    def generate(self, prompt_ids: list[int], prompt_id: str = "prompt") -> GenerationResult:
        """Decode one prompt."""
        return next(self.generate_many([PromptInput(prompt_id, prompt_ids)]))

    def generate_many(self, prompts: Iterable[PromptInput], batch_size: int = 1) -> Iterator[GenerationResult]:
        """Decode prompts, up to ``batch_size`` at once; yield each result as its prompt finishes."""
        self._reset()  # rows a previous, abandoned call left behind
        queue, rows = iter(prompts), []
        while True:
            rows += self._start(list(islice(queue, batch_size - len(rows))))
            if not rows:
                return
            self.step(rows)
            finished = [r for r in rows if r.done]
            rows = self._drop_finished(rows)  # before yielding: the caller may stop iterating
            for row in finished:
                row.result.seconds = time.perf_counter() - row.started
                yield row.result

    def step(self, rows: list[_Row]) -> None:
        """One speculative step for every row: draft, verify, accept, commit, record."""
        contexts, rngs = [r.context for r in rows], [r.rng for r in rows]
        t0 = time.perf_counter()
        trees = self.proposer.propose(contexts, rngs)  # draft
        t1 = time.perf_counter()
        logits = self.target.score(contexts, trees)  # verify: one target pass, [n + 1, vocab] per row
        accepted = [self.verifier.verify(t, lg, g) for t, lg, g in zip(trees, logits, rngs)]  # accept
        paths = [a.path for a in accepted]
        self.target.commit(paths)  # commit: both caches keep only the accepted path
        self.proposer.commit(paths)
        share = StepTimes((t1 - t0) / len(rows), (time.perf_counter() - t1) / len(rows))
        for row, tree, lg, acc in zip(rows, trees, logits, accepted):
            self.recorder.record(row.result, tree, lg, acc, share)
            self._emit(row, acc.emitted(tree))

    def _emit(self, row: _Row, tokens: list[int]) -> None:
        out = row.result.output_ids
        for tok in tokens:
            out.append(tok)
            if tok in self.eos or len(out) >= self.max_new_tokens:
                row.done = True
                return

    def _start(self, prompts: list[PromptInput]) -> list[_Row]:
        if not prompts:
            return []
        contexts = [p.prompt_ids for p in prompts]
        now = time.perf_counter()  # a prompt's seconds include its own prefill
        self.target.add_rows(contexts)
        self.proposer.add_rows(contexts)
        return [_Row(GenerationResult(p.prompt_id, list(p.prompt_ids)), now, row_generator(self.seed, p.prompt_id))
                for p in prompts]

    def _reset(self) -> None:
        self.target.select_rows([])
        self.proposer.select_rows([])

    def _drop_finished(self, rows: list[_Row]) -> list[_Row]:
        keep = [i for i, r in enumerate(rows) if not r.done]
        if len(keep) < len(rows):
            self.target.select_rows(keep)
            self.proposer.select_rows(keep)
        return [rows[i] for i in keep]
