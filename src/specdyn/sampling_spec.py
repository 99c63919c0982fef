"""The sampling setting, how children are chosen, and per-prompt seeds: plain values, no torch (the
engine imports them; so can the command line without loading the engine).

Parsed once at the boundary (the CLI or a config file) and passed inside as objects.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from enum import Enum

from specdyn.errors import SpecdynError


@dataclass(frozen=True)
class Sampling:
    """How the target's next token is chosen.

    ``temperature == 0`` is greedy decoding (``top_p`` is then irrelevant: it never removes the argmax).
    Otherwise logits are divided by the temperature, then top-p keeps the smallest set of most likely
    tokens holding at least ``top_p`` of the mass (the semantics of transformers' ``TopPLogitsWarper``),
    and the token is drawn from what is left.
    """

    temperature: float = 0.0
    top_p: float = 1.0

    def __post_init__(self):
        t, p = self.temperature, self.top_p
        if not _real(t) or not math.isfinite(t) or t < 0:
            raise SpecdynError(f"temperature must be a finite number >= 0 (0 = greedy), got {t!r}")
        if not _real(p) or not 0 < p <= 1:
            raise SpecdynError(f"top-p must be in (0, 1] (1 = no top-p filtering), got {p!r}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    @property
    def label(self) -> str:
        """Short text for tables and messages: ``greedy`` or ``T 0.7, top-p 0.95``."""
        return "greedy" if self.greedy else f"T {self.temperature:g}, top-p {self.top_p:g}"


def _real(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and not math.isnan(x)


class Children(Enum):
    """How a static or paths tree's children are chosen at temperature > 0.

    ``TOPK``: the draft's most likely tokens in rank order (deterministic; today's trees).
    ``SAMPLED``: drawn from the draft's warped distribution without replacement (Sequoia); at
    temperature 0 they fall back to ``TOPK``. Dynamic trees and prompt lookup are always deterministic.
    """

    TOPK = "topk"
    SAMPLED = "sampled"

    @property
    def text(self) -> str:
        """The canonical text (``--children``, TOML, manifest)."""
        return self.value


def setting_label(sampling: Sampling, children: Children) -> str:
    """What a run's acceptance depends on besides its models and tree, for tables and notes: ``greedy``, or
    e.g. ``T 0.7, top-p 0.95`` (plus ``, drawn children`` for sampled children)."""
    return sampling.label + (", drawn children" if children is Children.SAMPLED else "")


def parse_children(text: str) -> Children:
    """``topk`` or ``sampled`` (``--children``)."""
    try:
        return Children(text.strip())
    except ValueError:
        known = " or ".join(c.value for c in Children)
        raise SpecdynError(f"--children must be {known}, got {text!r}") from None


def row_seed(seed: int, prompt_id: str) -> int:
    """A stable 63-bit seed for one prompt's random draws, from the run seed and the prompt id.

    Uses SHA-256 (not Python's salted ``hash``), so it is the same in every process: a prompt's draws do
    not depend on the batch it is decoded in, nor on whether the run was resumed.
    """
    digest = hashlib.sha256(f"{int(seed)}\x00{prompt_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1
