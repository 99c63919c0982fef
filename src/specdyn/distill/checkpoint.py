"""Training checkpoints: adapter weights, optimizer state, step, RNG state and the curves so far, written
atomically so a kill at any moment leaves the previous checkpoint or the new one, never half of one."""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch

CHECKPOINT_FILE = "checkpoint.pt"


@dataclass
class TrainPoint:
    step: int  # 1-based: the loss of the step that made the model of checkpoint `step`
    loss: float
    lr: float


@dataclass
class ValPoint:
    step: int  # 0 = before training
    loss: float  # mean over the held-out output tokens
    agreement: float  # share of held-out output tokens that are the draft's argmax


@dataclass
class Progress:
    """What the training loop accumulates (restored from a checkpoint on resume)."""

    step: int = 0
    train: list[TrainPoint] = field(default_factory=list)
    val: list[ValPoint] = field(default_factory=list)
    seconds: float = 0.0  # wall time of the training loop, summed over sessions
    peak_rss_mb: float = 0.0  # largest process peak RSS over sessions

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Progress:
        return cls(data["step"], [TrainPoint(**p) for p in data["train"]], [ValPoint(**p) for p in data["val"]],
                   data["seconds"], data["peak_rss_mb"])


@dataclass
class Checkpoint:
    identity: dict  # the training's identity (config, data hash, base weights id)
    progress: Progress
    adapter: dict[str, torch.Tensor]
    optimizer: dict
    rng: torch.Tensor  # torch's CPU generator state
    cuda_rng: list[torch.Tensor] = field(default_factory=list)

    def save(self, folder: Path) -> None:
        path = folder / CHECKPOINT_FILE
        tmp = folder / f".{CHECKPOINT_FILE}.tmp"
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        torch.save({**data, "progress": self.progress.to_json()}, tmp)
        os.replace(tmp, path)

    @classmethod
    def load(cls, folder: Path) -> Checkpoint | None:
        path = folder / CHECKPOINT_FILE
        if not path.is_file():
            return None
        data = torch.load(path, weights_only=True)
        return cls(**{**data, "progress": Progress.from_json(data["progress"])})


class StopRequest:
    """While active, SIGINT/SIGTERM only set ``requested``: the loop finishes the current step, saves a
    checkpoint and stops. A second signal interrupts at once (the last checkpoint stays)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested = False
        self._old: dict = {}

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is not threading.main_thread():
            return self  # signals reach the main thread only
        self._old = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, old in self._old.items():
            signal.signal(s, old)
