"""A worker: the model pair loaded once, a decoder per tree, prompt encoding and decoding. The in-process
executor holds one; each Ray actor holds one."""

from __future__ import annotations

import platform
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import torch

from specdyn import __version__
from specdyn.config import RunConfig
from specdyn.engine import GenerationResult, PromptInput
from specdyn.execution import ExecutorStats
from specdyn.pipeline import build_decoder, check_fits, context_limit, encode_messages, load_models
from specdyn.rundir.manifest import ModelRecord
from specdyn.specs import TreeSpec
from specdyn.suites import Prompt


@dataclass
class Work:
    """Prompts to decode with tree number ``group`` (an index into the worker's ``trees``)."""

    group: int
    prompts: list[PromptInput]


@dataclass
class WorkerInfo:
    """What a ready worker reports: the weights it loaded, where it runs, its specdyn version."""

    models: dict[str, ModelRecord]
    host: str
    version: str
    threads: int


class Executor(Protocol):
    """Decodes a run's prompts: ``info`` of its (first) ready worker, ``encode`` the suite once before
    anything is written, then ``decode`` yields every prompt's result exactly once, in any order."""

    info: WorkerInfo
    stats: ExecutorStats

    def encode(self, prompts: list[Prompt]) -> dict[str, PromptInput]: ...

    def decode(self, work: list[Work]) -> Iterator[GenerationResult]: ...

    def close(self) -> None: ...


@dataclass
class Worker:
    """Models and decoders for ``config``, one decoder per tree of ``trees``; ``threads`` sets torch's
    thread count first (None leaves it)."""

    config: RunConfig
    trees: list[TreeSpec]
    threads: int | None = None
    decoders: list = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        self.draft, self.target = load_models(self.config, self.trees)
        self.decoders = [build_decoder(self.config, self.draft, self.target, t) for t in self.trees]

    def info(self) -> WorkerInfo:
        loaded = zip(("draft", "target"), (self.draft, self.target))
        models = {role: ModelRecord(m.name, m.weights_id) for role, m in loaded if m is not None}
        return WorkerInfo(models, platform.node(), __version__, torch.get_num_threads())

    def encode(self, prompts: list[Prompt]) -> dict[str, PromptInput]:
        """Token ids of every prompt (target chat template), each checked against the context length."""
        context = context_limit(self.draft, self.target)
        depth = max(t.max_depth for t in self.trees)
        inputs = {}
        for p in prompts:
            ids = encode_messages(self.target.tokenizer, p.messages, p.id)
            check_fits(ids, self.config.max_new_tokens, context, p.id, tree_depth=depth)
            inputs[p.id] = PromptInput(p.id, ids)
        return inputs

    def decode(self, group: int, prompts: Iterable[PromptInput]) -> Iterator[GenerationResult]:
        """Decode ``prompts`` with tree ``group``, ``batch_size`` at a time; yield each result (its text
        decoded) as its prompt finishes."""
        tok = self.target.tokenizer
        for result in self.decoders[group].generate_many(prompts, batch_size=self.config.batch_size):
            result.text = tok.decode(result.output_ids, skip_special_tokens=True)
            yield result
