"""Batches of training sequences: padding, the positions that predict output tokens, and a data order that
is a pure function of (seed, step), so a resumed training sees the same batches as an uninterrupted one."""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache

import torch

from specdyn.distill.data import Example


@dataclass
class Batch:
    """Right-padded sequences; ``predict[b, t]`` marks positions whose next token is an output token,
    ``labels`` are those next tokens in row-major order."""

    input_ids: torch.Tensor  # [B, T]
    attention_mask: torch.Tensor  # [B, T]
    predict: torch.Tensor  # [B, T] bool
    labels: torch.Tensor  # [n]

    @property
    def n_predicted(self) -> int:
        return int(self.labels.numel())


def collate(examples: list[Example], pad_id: int = 0, device: torch.device | str = "cpu") -> Batch:
    """Pad ``examples`` to the longest; loss positions cover exactly the output tokens. Pads come after each
    sequence and are masked, so no real position sees them and ``pad_id`` does not matter."""
    width = max(len(e.tokens) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    predict = torch.zeros((len(examples), width), dtype=torch.bool)
    for row, e in enumerate(examples):
        ids[row, : len(e.tokens)] = torch.tensor(e.tokens)
        mask[row, : len(e.tokens)] = 1
        predict[row, len(e.prompt_ids) - 1 : len(e.tokens) - 1] = True
    labels = ids[:, 1:][predict[:, :-1]]
    return Batch(ids.to(device), mask.to(device), predict.to(device), labels.to(device))


@lru_cache(maxsize=8)
def _epoch_order(n: int, seed: int, epoch: int) -> tuple[int, ...]:
    order = list(range(n))
    random.Random(f"{seed}:{epoch}").shuffle(order)  # str seeds hash with sha512: the same everywhere
    return tuple(order)


def step_indices(n: int, batch_size: int, seed: int, step: int) -> list[int]:
    """Training examples of 0-based ``step``: consecutive slices of a fresh seeded shuffle per epoch."""
    start = step * batch_size
    return [_epoch_order(n, seed, (start + i) // n)[(start + i) % n] for i in range(batch_size)]


def chunks(examples: tuple[Example, ...], size: int) -> list[list[Example]]:
    """``examples`` in order, ``size`` at a time (validation batches)."""
    return [list(examples[i : i + size]) for i in range(0, len(examples), size)]
