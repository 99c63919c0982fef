"""How a run is executed — in this process or on Ray workers — and the record of each execution session.

Execution settings are never part of a run's identity: a run started on Ray resumes without it and vice
versa (in float32 the records are the same either way). The manifest keeps one :class:`Session` per
start or resume, so it says which executor decoded the run and on how many workers. Torch- and Ray-free.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from enum import Enum
from urllib.parse import urlsplit

from specdyn.errors import SpecdynError

RAY_EXTRA = "pip install 'specdyn[ray]'"
RESTARTS_PER_WORKER = 1  # replacement workers started per configured worker when workers die


class Backend(Enum):
    """Where prompts are decoded."""

    IN_PROCESS = "in-process"
    RAY = "ray"


@dataclass(frozen=True)
class Execution:
    """Executor settings. ``address``: for Ray, ``auto`` (the cluster this machine belongs to), ``local``
    (a new single-machine Ray instance) or a cluster address (``HOST:PORT``, ``ray://HOST:PORT``).
    ``threads_per_worker``: torch threads per worker (None: torch's default in-process, 1 on Ray).
    ``gpus_per_worker``: GPUs Ray reserves for each worker (fractions share a GPU)."""

    backend: Backend = Backend.IN_PROCESS
    address: str | None = None
    workers: int = 1
    threads_per_worker: int | None = None
    gpus_per_worker: float = 0.0

    def __post_init__(self) -> None:
        _check_int("--workers", self.workers, 1)
        if self.threads_per_worker is not None:
            _check_int("--threads-per-worker", self.threads_per_worker, 1)
        if isinstance(self.gpus_per_worker, bool) or not isinstance(self.gpus_per_worker, (int, float)) \
                or not math.isfinite(self.gpus_per_worker) or self.gpus_per_worker < 0:
            raise SpecdynError(f"--gpus-per-worker must be a number >= 0 (got {self.gpus_per_worker!r})")
        if self.backend is Backend.IN_PROCESS and (self.workers != 1 or self.gpus_per_worker):
            raise SpecdynError("--workers and --gpus-per-worker need --ray (prompts are decoded in this process "
                               "otherwise)")
        if self.backend is Backend.RAY and self.address not in ("auto", "local"):
            endpoint(self.address)

    @property
    def threads(self) -> int | None:
        """Torch threads each worker sets (None: leave torch's default)."""
        return 1 if self.threads_per_worker is None and self.backend is Backend.RAY else self.threads_per_worker

    @property
    def max_restarts(self) -> int:
        """Replacement workers the Ray executor may start in all when workers die."""
        return self.workers * RESTARTS_PER_WORKER if self.backend is Backend.RAY else 0



def _check_int(flag: str, value, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise SpecdynError(f"{flag} must be an integer >= {low} (got {value!r})")


IN_PROCESS = Execution()


def endpoint(address: str | None) -> tuple[str, int]:
    """(host, port) of a Ray cluster address ``HOST:PORT`` or ``ray://HOST:PORT``."""
    parts = urlsplit(address if "://" in (address or "") else f"ray-gcs://{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if not host or not port or parts.scheme not in ("ray", "ray-gcs"):
        raise SpecdynError(f"--ray {address!r}: expected auto, local, HOST:PORT or ray://HOST:PORT")
    return host, port


def parse_gpus(text: str) -> float:
    """``--gpus-per-worker`` text as a number (validated by :class:`Execution`)."""
    try:
        return float(text)
    except ValueError:
        raise SpecdynError(f"--gpus-per-worker must be a number >= 0 (got {text!r})") from None


@dataclass
class ExecutorStats:
    """What an executor saw: the hosts its workers ran on, workers that died, prompts decoded again."""

    hosts: set[str] = field(default_factory=set)
    worker_failures: int = 0
    requeued_prompts: int = 0


@dataclass
class Session:
    """One start or resume of a run, as the manifest records it: the executor settings, the hosts the
    workers ran on, when it started, how many prompts it decoded, and how many workers died (their
    in-flight prompts were decoded again elsewhere: ``requeued_prompts``)."""

    backend: str
    workers: int
    threads_per_worker: int
    gpus_per_worker: float
    address: str | None = None
    started: str | None = None
    hosts: list[str] = field(default_factory=list)
    prompts: int = 0
    worker_failures: int = 0
    requeued_prompts: int = 0

    @classmethod
    def of(cls, execution: Execution, threads: int, started: str) -> Session:
        """A session of ``execution`` whose workers run ``threads`` torch threads each."""
        return cls(execution.backend.value, execution.workers, threads, execution.gpus_per_worker,
                   execution.address, started)

    def record(self, prompts: int, stats: ExecutorStats) -> None:
        """Count the prompts this session decoded and what its executor saw."""
        self.prompts, self.hosts = prompts, sorted(stats.hosts)
        self.worker_failures, self.requeued_prompts = stats.worker_failures, stats.requeued_prompts

    def to_json(self) -> dict:
        return asdict(self)


_SESSION_TYPES = {"backend": (str,), "workers": (int,), "threads_per_worker": (int,),
                  "gpus_per_worker": (int, float), "address": (str, type(None)), "started": (str, type(None)),
                  "hosts": (list,), "prompts": (int,), "worker_failures": (int,), "requeued_prompts": (int,)}


def parse_session(raw, where: str) -> Session:
    """A :class:`Session` from a manifest entry; SpecdynError (one line) when it is malformed."""
    if not isinstance(raw, dict):
        raise SpecdynError(f"{where}: expected an object, got {raw!r}")
    for key, value in raw.items():
        kinds = _SESSION_TYPES.get(key)
        if kinds is None or isinstance(value, bool) or not isinstance(value, kinds):
            raise SpecdynError(f"{where}: unexpected {key} = {value!r}")
    missing = [k for k in ("backend", "workers", "threads_per_worker", "gpus_per_worker") if k not in raw]
    if missing:
        raise SpecdynError(f"{where}: lacks {', '.join(missing)}")
    return Session(**raw)
