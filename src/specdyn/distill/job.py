"""A distillation job end to end: every check before any model loads (`prepare`), then loading, training,
resuming and writing the output folder (`distill`)."""

from __future__ import annotations

import json
import os
import platform
import shutil
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from enum import Enum
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch

from specdyn.adapter_spec import ADAPTER_FILES, DISTILL_FILE, adapter_id
from specdyn.distill.checkpoint import CHECKPOINT_FILE, Checkpoint, Progress
from specdyn.distill.data import RunInfo, Split, domain_examples, run_info, split
from specdyn.distill.settings import DistillConfig, TokenLevel, validate
from specdyn.distill.train import build_trainer, restore, train
from specdyn.errors import SpecdynError
from specdyn.rundir.reader import load_prompt_tokens

ADAPTER_TMP = ".adapter.tmp"


class FolderState(Enum):
    NEW = "new"  # absent or empty: train from scratch
    RESUME = "resume"  # an unfinished training of this very job: continue from its checkpoint
    COMPLETE = "complete"  # this very job already finished: nothing to do


@dataclass(frozen=True)
class DistillJob:
    """A checked distillation job: the settings, the data and where it goes."""

    config: DistillConfig
    run: RunInfo
    split: Split
    out: Path
    base_weights_id: str
    state: FolderState

    @property
    def identity(self) -> dict:
        """What makes two trainings the same training (an output folder holds one)."""
        return {"config": self.config.to_json(), "data_hash": self.split.data_hash, "base_weights_id": self.base_weights_id}


@dataclass(frozen=True)
class DistillResult:
    out: Path
    adapter_id: str
    progress: Progress
    state: FolderState  # what the folder held when the job started


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def read_record(out: Path) -> dict | None:
    """``OUT/distill.json``, or None when there is none."""
    try:
        return json.loads((out / DISTILL_FILE).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise SpecdynError(f"{out / DISTILL_FILE} is unreadable ({exc}); delete {out} or use another --out") from None


def _identity_of(record: dict) -> dict:
    return {"config": record.get("config"), "data_hash": record.get("data", {}).get("hash"),
            "base_weights_id": record.get("base", {}).get("weights_id")}


def _difference(old: dict, new: dict) -> str:
    keys = [f"config.{k}" for k in sorted(set(old["config"] or {}) | set(new["config"]))
            if (old["config"] or {}).get(k) != new["config"].get(k)]
    keys += [k for k in ("data_hash", "base_weights_id") if old[k] != new[k]]
    return ", ".join(keys)


def _check_writable(out: Path) -> None:
    probe = next(p for p in (out, *out.parents) if p.exists())
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise SpecdynError(f"cannot write --out {out}: {probe} is not a writable folder")


def folder_state(out: Path, identity: dict) -> FolderState:
    """What ``out`` holds; a folder of another training, or any other non-empty folder, is refused."""
    _check_writable(out)
    record = read_record(out) if out.is_dir() else None
    if record is None:
        if out.is_dir() and any(out.iterdir()):
            raise SpecdynError(f"{out} is not empty and holds no {DISTILL_FILE}; use an empty or new folder for --out")
        return FolderState.NEW
    if _identity_of(record) != identity:
        raise SpecdynError(f"{out} holds a distillation with a different config ({_difference(_identity_of(record), identity)}); "
                           "use another --out or delete it")
    return FolderState.COMPLETE if record.get("status") == "complete" else FolderState.RESUME


def _check_models(config: DistillConfig) -> str:
    """Model names that resolve (nothing loads); the base draft's weights id."""
    from specdyn.models import classify, peek_weights_id

    if config.token_level is not TokenLevel.NONE:
        classify(config.target)
    return peek_weights_id(config.draft)


def prepare(config: DistillConfig, run_dir: str | Path, out: str | Path) -> DistillJob:
    """Check everything a training needs, loading no model: settings, run folder, domain, prompt count,
    model names, output folder. ``config.draft`` empty = the run's draft; the target is always the run's."""
    validate(config)
    tokens = load_prompt_tokens(run_dir)
    run = run_info(tokens.run)
    config = replace(config, draft=config.draft or run.draft, target=run.target)
    data = split(domain_examples(tokens.prompts, config.domain, config.min_prompts), config.seed, config.max_length)
    base_id = _check_models(config)
    job = DistillJob(config, run, data, Path(out), base_id, FolderState.NEW)
    return replace(job, state=folder_state(job.out, json.loads(json.dumps(job.identity))))


def _versions() -> dict[str, str]:
    found = {}
    for pkg in ("specdyn", "torch", "transformers", "peft"):
        try:
            found[pkg] = version(pkg)
        except PackageNotFoundError:
            found[pkg] = "not installed"
    return found


def _record(job: DistillJob, status: str, started: str, **extra) -> dict:
    c = job.config
    target = {"name": c.target, "weights_id": job.run.target_weights_id}
    return {"status": status, "config": c.to_json(), "data": job.split.to_json(),
            "base": {"name": c.draft, "weights_id": job.base_weights_id}, "target": target,
            "run": str(job.run.root.resolve()), "started": started, "versions": _versions(),
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()},
            **extra}


def _write_record(out: Path, record: dict) -> None:
    tmp = out / f".{DISTILL_FILE}.tmp"
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, out / DISTILL_FILE)


def _load_models(job: DistillJob):
    """(draft model, target model or None) for training, checked against the job."""
    from specdyn.models import check_same_tokenizer, load_model

    c = job.config
    draft = load_model(c.draft, c.dtype, c.device)
    if draft.weights_id != job.base_weights_id:
        raise SpecdynError(f"the draft {c.draft!r} changed while loading (weights id {draft.weights_id}); rerun")
    if c.token_level is TokenLevel.NONE:
        return draft.model, None
    target = load_model(c.target, c.dtype, c.device)
    check_same_tokenizer(draft, target)
    return draft.model, target.model


def _save_adapter(model, out: Path) -> str:
    """peft's adapter files into ``out`` (through a temporary folder; peft's model card is left out)."""
    tmp = out / ADAPTER_TMP
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    for name in ADAPTER_FILES:
        os.replace(tmp / name, out / name)
    shutil.rmtree(tmp)
    return adapter_id(out)


def _summary(progress: Progress) -> dict:
    steps = max(1, len(progress.train))
    return {"progress": progress.to_json(), "seconds": progress.seconds, "seconds_per_step": progress.seconds / steps,
            "peak_memory_mb": progress.peak_rss_mb, "peak_memory_measure": "getrusage ru_maxrss of the process (CUDA: max_memory_allocated)"}


def _resume(trainer, out: Path, identity: dict) -> None:
    """Restore the folder's checkpoint into ``trainer``, if there is one."""
    checkpoint = Checkpoint.load(out)
    if checkpoint is None:
        return
    if checkpoint.identity != identity:
        raise SpecdynError(f"{out / CHECKPOINT_FILE} belongs to another training; delete it or use another --out")
    restore(trainer, checkpoint)


def _completed(job: DistillJob) -> DistillResult:
    record = read_record(job.out)
    return DistillResult(job.out, record["adapter_id"], Progress.from_json(record["progress"]), job.state)


def distill(job: DistillJob, quiet: bool = False) -> DistillResult:
    """Train (or resume, or find already trained) the job's adapter and write ``job.out``."""
    if job.state is FolderState.COMPLETE:
        return _completed(job)
    old = read_record(job.out) or {}
    started = old.get("started", _now())
    draft, target = _load_models(job)
    job.out.mkdir(parents=True, exist_ok=True)
    _write_record(job.out, _record(job, "running", started))
    trainer = build_trainer(job.config, job.split, draft, target)
    identity = json.loads(json.dumps(job.identity))
    _resume(trainer, job.out, identity)
    progress = train(trainer, identity, job.out, quiet)
    ident = _save_adapter(trainer.model, job.out)
    _write_record(job.out, _record(job, "complete", started, finished=_now(), adapter_id=ident, **_summary(progress)))
    (job.out / CHECKPOINT_FILE).unlink(missing_ok=True)
    return DistillResult(job.out, ident, progress, job.state)
