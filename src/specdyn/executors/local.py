"""The in-process executor: one :class:`~.worker.Worker` in this process."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from specdyn.config import RunConfig
from specdyn.engine import GenerationResult, PromptInput
from specdyn.execution import Execution, ExecutorStats
from specdyn.executors.worker import Work, Worker
from specdyn.specs import TreeSpec
from specdyn.suites import Prompt


class LocalExecutor:
    """Loads the models here and decodes each tree's prompts in turn, continuously batched."""

    def __init__(self, execution: Execution, config: RunConfig, trees: list[TreeSpec]):
        self._threads = torch.get_num_threads()
        self.worker = Worker(config, trees, execution.threads)
        self.info = self.worker.info()
        self.stats = ExecutorStats(hosts={self.info.host})

    def encode(self, prompts: list[Prompt]) -> dict[str, PromptInput]:
        return self.worker.encode(prompts)

    def decode(self, work: list[Work]) -> Iterator[GenerationResult]:
        for item in work:
            yield from self.worker.decode(item.group, item.prompts)

    def close(self) -> None:
        torch.set_num_threads(self._threads)
