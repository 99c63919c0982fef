"""The Ray executor: workers are Ray actors, each holding one :class:`~.worker.Worker` (the model pair
loaded once); this process hands out chunks of prompts, receives each finished prompt as it streams
back, and stays the run folder's only writer.

A worker that dies (actor killed, node lost, out of memory) loses nothing: the prompts of its chunk that
had not come back are queued again, at the front, for the other workers, and a replacement worker is
started while the restart budget lasts (:attr:`~specdyn.execution.Execution.max_restarts`). A prompt is
accepted only from the worker it is in flight on, so none is written twice.
"""

from __future__ import annotations

import socket
import sys
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from specdyn import __version__
from specdyn.config import RunConfig
from specdyn.engine import GenerationResult, PromptInput
from specdyn.errors import SpecdynError
from specdyn.execution import RAY_EXTRA, Execution, ExecutorStats, endpoint
from specdyn.executors.worker import Work, Worker, WorkerInfo
from specdyn.pipeline import check_limits
from specdyn.safetext import one_line
from specdyn.specs import TreeSpec
from specdyn.suites import Prompt

try:
    import ray
    from ray.exceptions import RayActorError, RayTaskError
except ImportError:  # pragma: no cover - exercised by the no-Ray test in a subprocess
    raise SpecdynError(f"--ray needs Ray, which is not installed: {RAY_EXTRA}") from None

CONNECT_TIMEOUT = 10.0  # seconds to reach a cluster address before giving up
CHUNK_BATCHES = 2  # prompts per task: this many batches (a dead worker's unfinished chunk is re-queued)


class WorkerActor:
    """A :class:`Worker` inside a Ray actor. A failure to start (a model missing on this node) is kept
    and raised by :meth:`info`, so the driver gets the error itself rather than a dead actor."""

    def __init__(self, config: RunConfig, trees: list[TreeSpec], threads: int | None):
        self.error: BaseException | None = None
        try:
            self.worker = Worker(config, trees, threads)
        except Exception as exc:  # noqa: BLE001 - handed to the driver by info()
            self.error = exc

    def info(self) -> WorkerInfo:
        if self.error is not None:
            raise self.error
        return self.worker.info()

    def encode(self, prompts: list[Prompt]) -> dict[str, PromptInput]:
        return self.worker.encode(prompts)

    def decode(self, group: int, prompts: list[PromptInput]) -> Iterator[GenerationResult]:
        yield from self.worker.decode(group, prompts)  # a Ray streaming generator: one object per prompt

    def ping(self) -> None:
        """A no-op round trip (benchmarks/bench_ray.py measures Ray's overhead with it)."""


RemoteWorker = ray.remote(max_restarts=0, max_task_retries=0)(WorkerActor)


# --------------------------------------------------------------------------------------------------
# Connecting


def connect(execution: Execution) -> bool:
    """Connect this process to Ray as ``execution.address`` says; True when this call connected (so the
    caller disconnects). A process already connected (``ray.init`` called before) keeps its connection."""
    if ray.is_initialized():
        return False
    address = execution.address
    if address not in ("auto", "local"):
        check_reachable(address)
    try:
        ray.init(address=address, include_dashboard=False if address == "local" else None,
                 log_to_driver=False, logging_level="ERROR")
    except (ConnectionError, RuntimeError, ValueError) as exc:
        hint = "; start a cluster with `ray start --head`, or use --ray local" if address == "auto" else ""
        raise SpecdynError(f"cannot connect to Ray at {address!r}: {_first_line(exc)}{hint}") from None
    return True


@contextmanager
def connected(execution: Execution):
    """Connected to Ray for the block (disconnecting at the end if this connected)."""
    owns = connect(execution)
    try:
        yield
    finally:
        if owns:
            ray.shutdown()


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Fail fast, in one line, when nothing listens at ``HOST:PORT`` (or ``ray://HOST:PORT``)."""
    try:
        socket.create_connection(endpoint(address), timeout=timeout).close()
    except OSError as exc:
        raise SpecdynError(f"cannot reach the Ray cluster at {address} within {timeout:g} s "
                           f"({exc.strerror or exc}); start it with `ray start --head` or check the address") from None


def _first_line(exc: BaseException) -> str:
    return one_line(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)


def check_resources(execution: Execution) -> None:
    """A worker size no live node can hold: an error on a local instance (it would wait forever); a note
    on a cluster, whose autoscaler may still add such a node (workers wait for it)."""
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    need = {"CPU": execution.threads, "GPU": execution.gpus_per_worker}
    if any(all(res.get(k, 0) >= v for k, v in need.items()) for res in nodes):
        return
    best = max(nodes, key=lambda r: (r.get("CPU", 0), r.get("GPU", 0)), default={})
    message = (f"no Ray node can hold a worker of {need['CPU']} CPU(s) (--threads-per-worker) and {need['GPU']:g} "
               f"GPU(s) (--gpus-per-worker); the largest node has {best.get('CPU', 0):g} CPU(s) and "
               f"{best.get('GPU', 0):g} GPU(s)")
    if execution.address == "local":
        raise SpecdynError(message)
    print(f"specdyn: note: {message}; waiting for the cluster to add one (Ctrl-C stops)", file=sys.stderr)


def free_worker_slots(execution: Execution) -> int:
    """How many workers of this size the cluster's total resources hold at once (at least 1)."""
    total = ray.cluster_resources()
    fits = [total.get("CPU", 0) // execution.threads]
    if execution.gpus_per_worker:
        fits.append(total.get("GPU", 0) // execution.gpus_per_worker)
    return max(1, int(min(fits)))


# --------------------------------------------------------------------------------------------------
# The pool


@dataclass
class Slot:
    """One worker actor: starting (``ready`` pending), idle, or busy with ``task`` (its prompts not yet
    received) streaming back through ``stream``."""

    actor: object
    ready: object | None
    task: Work | None = None
    stream: object | None = None
    info: WorkerInfo | None = None


@dataclass
class Pool:
    """The workers of one run and the bookkeeping of what each holds."""

    execution: Execution
    args: tuple
    slots: list[Slot] = field(default_factory=list)
    stats: ExecutorStats = field(default_factory=ExecutorStats)
    restarts: int = 0
    first: WorkerInfo | None = None

    def start(self) -> None:
        options = {"num_cpus": self.execution.threads, "num_gpus": self.execution.gpus_per_worker}
        actor = RemoteWorker.options(**options).remote(*self.args)
        self.slots.append(Slot(actor, actor.info.remote()))

    def live(self) -> list[Slot]:
        return [s for s in self.slots if s.actor is not None]

    def idle(self) -> list[Slot]:
        return [s for s in self.live() if s.info is not None and s.task is None]

    def waitables(self) -> dict:
        """What to wait on: starting workers' info calls and busy workers' streams, each with its slot."""
        return {(s.ready if s.info is None else s.stream): s for s in self.live() if s.info is None or s.task}

    def joined(self, slot: Slot) -> None:
        """A starting worker answered: it is idle now (or its start failed: raise the failure)."""
        try:
            info = ray.get(slot.ready)
        except RayTaskError as exc:
            raise _task_error(exc) from None
        except RayActorError:
            self.lost(slot, None)
            return
        self._check_same(info)
        slot.info, slot.ready = info, None
        self.stats.hosts.add(info.host)

    def _check_same(self, info: WorkerInfo) -> None:
        if info.version != __version__:
            raise SpecdynError(f"the Ray worker on {info.host} runs specdyn {info.version}, this process "
                               f"{__version__}; install the same specdyn on every node")
        self.first = self.first or info
        if info.models != self.first.models:
            raise SpecdynError(f"the Ray worker on {info.host} loaded other weights ({_weights(info)}) than the "
                               f"one on {self.first.host} ({_weights(self.first)}); every node needs the same models")

    def lost(self, slot: Slot, queue: deque | None) -> None:
        """``slot``'s worker died: queue its unfinished prompts again, start a replacement if allowed."""
        self.stats.worker_failures += 1
        if slot.task and slot.task.prompts and queue is not None:
            queue.appendleft(slot.task)
            self.stats.requeued_prompts += len(slot.task.prompts)
        _kill(slot.actor)
        slot.actor = slot.task = slot.stream = None
        if self.restarts < self.execution.max_restarts:
            self.restarts += 1
            self.start()

    def close(self) -> None:
        for slot in self.live():
            _kill(slot.actor)
            slot.actor = None


def _weights(info: WorkerInfo) -> str:
    return ", ".join(f"{role} {m.weights_id}" for role, m in sorted(info.models.items()))


def _kill(actor) -> None:
    try:
        ray.kill(actor)
    except Exception:  # noqa: BLE001 - an actor that is gone already is what we want
        pass


def _task_error(exc: RayTaskError) -> BaseException:
    """What a worker raised: a SpecdynError as itself, anything else as one line naming it."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, SpecdynError):
        return cause
    return SpecdynError(f"a Ray worker failed: {_first_line(cause or exc)}")


def chunks(work: list[Work], size: int) -> deque[Work]:
    """Each group's prompts in pieces of at most ``size``, in decoding order."""
    return deque(Work(w.group, w.prompts[i:i + size]) for w in work for i in range(0, len(w.prompts), size))


# --------------------------------------------------------------------------------------------------
# The executor


class RayExecutor:
    """Starts ``execution.workers`` Ray actors for ``config`` and waits until one is ready."""

    def __init__(self, execution: Execution, config: RunConfig, trees: list[TreeSpec]):
        check_limits(config, trees)  # before connecting or starting anything
        self.owns_connection = connect(execution)
        try:
            check_resources(execution)
            device = "cpu" if config.device == "auto" and not execution.gpus_per_worker else config.device
            self.pool = Pool(execution, (replace(config, device=device), trees, execution.threads))
            for _ in range(execution.workers):
                self.pool.start()
            self.info = self._first_ready()
        except BaseException:
            self.close()
            raise
        self.stats = self.pool.stats
        self.chunk = CHUNK_BATCHES * config.batch_size

    def _first_ready(self) -> WorkerInfo:
        while not self.pool.idle():
            self._wait_starting()
        return self.pool.idle()[0].info

    def _wait_starting(self) -> None:
        starting = {s.ready: s for s in self.pool.live() if s.info is None}
        if not starting:
            raise SpecdynError("every Ray worker died while starting; see the Ray logs (/tmp/ray/session_latest/logs)")
        ready, _ = ray.wait(list(starting), num_returns=1)
        self.pool.joined(starting[ready[0]])

    def encode(self, prompts: list[Prompt]) -> dict[str, PromptInput]:
        """Encode the suite on one ready worker (it holds the tokenizer and the context limits)."""
        slot = self.pool.idle()[0]
        try:
            return ray.get(slot.actor.encode.remote(prompts))
        except RayTaskError as exc:
            raise _task_error(exc) from None
        except RayActorError:
            raise SpecdynError("a Ray worker died while encoding the prompts; run the command again") from None

    def decode(self, work: list[Work]) -> Iterator[GenerationResult]:
        queue = chunks(work, self.chunk)
        while queue or any(s.task for s in self.pool.live()):
            self._assign(queue)
            waiting = self.pool.waitables()
            if not waiting:
                raise SpecdynError(f"all Ray workers died ({self.stats.worker_failures} failures); the finished "
                                   "prompts are saved: run the same command again to resume")
            ready, _ = ray.wait(list(waiting), num_returns=1)
            slot = waiting[ready[0]]
            if slot.info is None:
                self.pool.joined(slot)
            else:
                yield from self._receive(slot, queue)

    def _assign(self, queue: deque) -> None:
        for slot in self.pool.idle():
            if not queue:
                return
            slot.task = queue.popleft()
            slot.stream = slot.actor.decode.remote(slot.task.group, slot.task.prompts)

    def _receive(self, slot: Slot, queue: deque) -> Iterator[GenerationResult]:
        """The next prompt streamed back by a busy worker, if it is one the worker holds."""
        try:
            result = ray.get(next(slot.stream))
        except StopIteration:
            if slot.task.prompts:  # the stream ended without them: decode them elsewhere
                queue.appendleft(slot.task)
            slot.task = slot.stream = None
            return
        except RayTaskError as exc:
            raise _task_error(exc) from None
        except RayActorError:
            self.pool.lost(slot, queue)
            return
        held = {p.prompt_id for p in slot.task.prompts}
        if result.prompt_id in held:
            slot.task.prompts = [p for p in slot.task.prompts if p.prompt_id != result.prompt_id]
            yield result

    def close(self) -> None:
        pool = getattr(self, "pool", None)
        if pool is not None:
            pool.close()
        if self.owns_connection and ray.is_initialized():
            ray.shutdown()
