"""Training settings of `specdyn distill`, their defaults (measured, see docs/distill.md) and their checks."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from specdyn.errors import SpecdynError

# Defaults chosen from a probe of the default draft on a 2-core CPU (docs/distill.md, "Measured cost"): a
# default-suite domain has 40 training prompts; 30 steps of 4 prompts are three passes over them, about 15
# minutes for the longest domain (logic) on an idle machine. One prompt per forward pass costs the same
# per token on this CPU as four and needs a third of the memory (4.6 GB instead of 14 GB).
DEFAULT_STEPS = 30
DEFAULT_RANK = 8
DEFAULT_LR = 1e-3
DEFAULT_BATCH_SIZE = 4
DEFAULT_MICRO_BATCH = 1
DEFAULT_MAX_LENGTH = 640  # the longest default-suite prompt (434 tokens) + 160 output tokens fits whole
DEFAULT_EVAL_EVERY = 10
DEFAULT_CHECKPOINT_EVERY = 5
# 20 prompts = 16 to train on + 4 held out. Fewer, and the adapter memorizes a handful of answers while a
# validation loss over 2-3 prompts says little; the default suite has 50 per domain.
DEFAULT_MIN_PROMPTS = 20
SMALLEST_MIN_PROMPTS = 3  # two held out and one to train on
VAL_FRACTION = 0.2
MIN_VAL_PROMPTS = 2
MIN_MAX_LENGTH = 8
LORA_DROPOUT = 0.0
WARMUP_FRACTION = 0.1


class TokenLevel(Enum):
    """The loss: cross-entropy on the target's output tokens (sequence-level), or a divergence from the
    target's next-token distributions at those positions (token-level; the target model loads too)."""

    NONE = "none"  # cross-entropy on the recorded output tokens
    KL = "kl"  # forward KL(target || draft)
    TVD = "tvd"  # total variation distance: 1 - TVD is the speculative-sampling acceptance rate


@dataclass(frozen=True)
class DistillConfig:
    """Everything that determines a training: two trainings with equal configs and data give equal adapters."""

    domain: str
    draft: str  # registry name, hub id or folder of the base draft
    target: str  # the run's target (loaded only for token-level distillation)
    steps: int = DEFAULT_STEPS
    rank: int = DEFAULT_RANK
    lr: float = DEFAULT_LR
    batch_size: int = DEFAULT_BATCH_SIZE  # prompts per optimizer step
    micro_batch: int = DEFAULT_MICRO_BATCH  # prompts per forward pass (gradients accumulate over a step)
    max_length: int = DEFAULT_MAX_LENGTH
    seed: int = 0
    min_prompts: int = DEFAULT_MIN_PROMPTS
    eval_every: int = DEFAULT_EVAL_EVERY
    checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY
    token_level: TokenLevel = TokenLevel.NONE
    dtype: str = "float32"
    device: str = "auto"

    @property
    def lora_alpha(self) -> int:
        return 2 * self.rank

    def to_json(self) -> dict:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        return {**out, "token_level": self.token_level.value, "lora_alpha": self.lora_alpha,
                "lora_dropout": LORA_DROPOUT, "val_fraction": VAL_FRACTION, "warmup_fraction": WARMUP_FRACTION}


def _at_least(flag: str, value, low) -> None:
    if value < low:
        raise SpecdynError(f"{flag} must be >= {low} (got {value})")


def validate(config: DistillConfig) -> None:
    """Reject settings no training could use (before anything is read or loaded)."""
    for flag, value in (("--steps", config.steps), ("--rank", config.rank), ("--batch-size", config.batch_size),
                        ("--micro-batch", config.micro_batch),
                        ("--eval-every", config.eval_every), ("--checkpoint-every", config.checkpoint_every)):
        _at_least(flag, value, 1)
    _at_least("--min-prompts", config.min_prompts, SMALLEST_MIN_PROMPTS)
    _at_least("--max-length", config.max_length, MIN_MAX_LENGTH)
    if not config.lr > 0:
        raise SpecdynError(f"--lr must be > 0 (got {config.lr})")
    if config.dtype not in ("float32", "bfloat16"):
        raise SpecdynError(f"--dtype must be float32 or bfloat16 for training (got {config.dtype!r})")
