"""Training data from a run folder: one domain's finished prompts (prompt_ids -> the target's output_ids, read
by the run-folder reader), a seeded train/validation split, truncation to a maximum length and a hash of the
exact tokens used."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from specdyn.distill.settings import MIN_VAL_PROMPTS, VAL_FRACTION
from specdyn.errors import SpecdynError
from specdyn.rundir.reader import PromptTokens, RunData, load_prompt_tokens


@dataclass(frozen=True)
class Example:
    """One training sequence: the tokens fed to the models and the target's output after them."""

    prompt_id: str
    prompt_ids: tuple[int, ...]
    output_ids: tuple[int, ...]

    @property
    def tokens(self) -> tuple[int, ...]:
        return self.prompt_ids + self.output_ids


@dataclass(frozen=True)
class RunInfo:
    """What distillation needs from a run folder (read by :mod:`specdyn.rundir.reader`): where it is, its
    draft and target, the target's weights id, and what the reader noted (a run still in progress)."""

    root: Path
    draft: str
    target: str
    target_weights_id: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Split:
    """A domain's examples split into the training set and the held-out validation slice."""

    train: tuple[Example, ...]
    val: tuple[Example, ...]
    truncated: int  # sequences shortened to max_length

    @property
    def data_hash(self) -> str:
        """sha256 over the exact token sequences used, in order, with their split membership."""
        rows = [[part, e.prompt_id, e.prompt_ids, e.output_ids]
                for part, examples in (("train", self.train), ("val", self.val)) for e in examples]
        return hashlib.sha256(json.dumps(rows, separators=(",", ":")).encode()).hexdigest()

    def to_json(self) -> dict:
        return {"hash": self.data_hash, "train_ids": [e.prompt_id for e in self.train],
                "val_ids": [e.prompt_id for e in self.val], "truncated": self.truncated,
                "train_output_tokens": sum(len(e.output_ids) for e in self.train),
                "train_tokens": sum(len(e.tokens) for e in self.train)}


def run_info(run: RunData) -> RunInfo:
    """What distillation needs from a run read by the run-folder reader."""
    config = run.manifest.require_config(str(run.run_dir))
    target = run.manifest.models.get("target")
    return RunInfo(run.run_dir, config.draft, config.target, target.weights_id if target else "", tuple(run.notes))


def domain_examples(prompts: list[PromptTokens], domain: str, min_prompts: int) -> list[Example]:
    """The domain's prompts, sorted by id; an error naming the run's domains, or how many are needed."""
    rows = [p for p in prompts if p.domain == domain]
    if not rows:
        have = ", ".join(sorted({p.domain for p in prompts}))
        raise SpecdynError(f"the run has no domain {domain!r}; it has: {have}")
    if len(rows) < min_prompts:
        raise SpecdynError(f"domain {domain!r} has {len(rows)} finished prompts; training needs at least "
                           f"{min_prompts} (decode more with `specdyn run --per-domain N`, or lower the bar with --min-prompts)")
    return sorted((Example(p.prompt_id, p.prompt_ids, p.output_ids) for p in rows), key=lambda e: e.prompt_id)


def truncate(example: Example, max_length: int) -> Example:
    """At most ``max_length`` tokens: drop the prompt's beginning first (keeping one prompt token), then the
    output's end. The output is what the draft learns, so it is cut last."""
    extra = len(example.tokens) - max_length
    if extra <= 0:
        return example
    cut = min(extra, len(example.prompt_ids) - 1)
    prompt = example.prompt_ids[cut:]
    return Example(example.prompt_id, prompt, example.output_ids[: max_length - len(prompt)])


def _order_key(seed: int, prompt_id: str) -> str:
    return hashlib.sha256(f"{seed}:{prompt_id}".encode()).hexdigest()


def split(examples: list[Example], seed: int, max_length: int) -> Split:
    """Hold out ``VAL_FRACTION`` of the prompts (at least two), chosen by a seeded hash of their ids (the
    same on every machine); both parts truncated to ``max_length`` and kept in id order."""
    n_val = max(MIN_VAL_PROMPTS, round(VAL_FRACTION * len(examples)))
    held = {e.prompt_id for e in sorted(examples, key=lambda e: _order_key(seed, e.prompt_id))[:n_val]}
    short = [truncate(e, max_length) for e in examples]
    truncated = sum(a != b for a, b in zip(examples, short))
    return Split(tuple(e for e in short if e.prompt_id not in held), tuple(e for e in short if e.prompt_id in held), truncated)


def load_split(run_dir: str | Path, domain: str, min_prompts: int, seed: int, max_length: int) -> Split:
    """The checked train/validation split of one domain of a run folder."""
    return split(domain_examples(load_prompt_tokens(run_dir).prompts, domain, min_prompts), seed, max_length)
