"""Executors: who decodes a run's prompts. The study runner has one decoding loop (``specdyn.study``)
that writes whatever an executor yields; the executors differ only in where the :class:`.worker.Worker`
lives — in this process (:mod:`.local`) or in Ray actors (:mod:`.ray_pool`, imported only when asked
for, so specdyn works without Ray installed)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

from specdyn.execution import Backend, Execution

if TYPE_CHECKING:
    from specdyn.config import RunConfig
    from specdyn.specs import TreeSpec


@contextmanager
def open_executor(execution: Execution, config: RunConfig, trees: list[TreeSpec]):
    """The executor ``execution`` asks for, its workers ready (models loaded, decoders built); closed
    (Ray actors killed) on exit."""
    if execution.backend is Backend.RAY:
        from specdyn.executors.ray_pool import RayExecutor as make
    else:
        from specdyn.executors.local import LocalExecutor as make
    executor = make(execution, config, trees)
    try:
        yield executor
    finally:
        executor.close()
