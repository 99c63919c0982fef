"""Training data from a run folder: one domain's finished prompts (prompt_ids -> the target's output_ids),
a seeded train/validation split, truncation to a maximum length and a hash of the exact tokens used."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from specdyn.distill.settings import MIN_VAL_PROMPTS, VAL_FRACTION
from specdyn.errors import SpecdynError

PROMPT_COLUMNS = ["prompt_id", "domain", "prompt_ids", "output_ids"]


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
    """What distillation needs from a run folder's manifest."""

    root: Path
    draft: str
    target: str
    target_weights_id: str


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


def read_run_info(run_dir: str | Path) -> RunInfo:
    """The run's draft and target names from ``manifest.json``; an error for a folder that is not a run."""
    root = Path(run_dir)
    try:
        manifest = json.loads((root / "manifest.json").read_text())
        config, models = manifest["config"], manifest.get("models", {})
        return RunInfo(root, config["draft"], config["target"], str(models.get("target", {}).get("weights_id", "")))
    except FileNotFoundError:
        raise SpecdynError(f"{root} is not a specdyn run folder (no manifest.json); pass a folder written by `specdyn run`") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SpecdynError(f"{root}/manifest.json is unreadable or incomplete ({type(exc).__name__}: {exc})") from None


def read_prompts(run_dir: str | Path) -> pa.Table:
    """The run's finished prompts (``prompt_id, domain, prompt_ids, output_ids``), all shards in order.

    The only place distillation reads the prompts table; a shard being written has a temporary name
    (``.shard-*``) and is not matched."""
    files = sorted((Path(run_dir) / "prompts").glob("shard-*.parquet"))
    try:
        tables = [pq.read_table(f, columns=PROMPT_COLUMNS) for f in files]
    except (OSError, pa.ArrowInvalid, KeyError) as exc:
        raise SpecdynError(f"cannot read the prompts of {run_dir}: {exc}") from None
    if not tables:
        raise SpecdynError(f"{run_dir} has no finished prompts yet (no prompts/shard-*.parquet)")
    return pa.concat_tables(tables)


def domain_examples(table: pa.Table, domain: str, min_prompts: int) -> list[Example]:
    """The domain's prompts, sorted by id; an error naming the run's domains, or how many are needed."""
    rows = [r for r in table.to_pylist() if r["domain"] == domain]
    if not rows:
        have = ", ".join(sorted(set(table.column("domain").to_pylist())))
        raise SpecdynError(f"the run has no domain {domain!r}; it has: {have}")
    if len(rows) < min_prompts:
        raise SpecdynError(f"domain {domain!r} has {len(rows)} finished prompts; training needs at least "
                           f"{min_prompts} (decode more with `specdyn run --per-domain N`, or lower the bar with --min-prompts)")
    examples = [Example(r["prompt_id"], tuple(r["prompt_ids"]), tuple(r["output_ids"])) for r in rows]
    return sorted(examples, key=lambda e: e.prompt_id)


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
    return split(domain_examples(read_prompts(run_dir), domain, min_prompts), seed, max_length)
