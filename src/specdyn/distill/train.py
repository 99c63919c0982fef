"""The training loop: a LoRA adapter on the draft, AdamW with warmup and cosine decay, validation on the
held-out slice, checkpoints every few steps and on Ctrl-C, a progress bar with the loss."""

from __future__ import annotations

import math
import resource
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from specdyn.distill.batches import Batch, chunks, collate, step_indices
from specdyn.distill.checkpoint import Checkpoint, Progress, StopRequest, TrainPoint, ValPoint
from specdyn.distill.data import Split
from specdyn.distill.losses import agreement, position_losses, predicted_logits
from specdyn.distill.settings import LORA_DROPOUT, WARMUP_FRACTION, DistillConfig

GRAD_CLIP = 1.0


@dataclass
class Trainer:
    """A draft with a trainable adapter, its optimizer, the data, and the progress so far."""

    config: DistillConfig
    split: Split
    model: torch.nn.Module  # a peft PeftModel around the draft
    optimizer: torch.optim.Optimizer
    device: torch.device
    target: torch.nn.Module | None = None  # token-level distillation only
    progress: Progress = field(default_factory=Progress)


def add_lora(model: torch.nn.Module, config: DistillConfig):
    """Wrap ``model`` with a rank-``config.rank`` LoRA adapter on every linear projection of its attention
    and MLP blocks (peft's ``all-linear``: the LM head is left alone). Seeded: the same init every time."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(config.seed)
    lora = LoraConfig(r=config.rank, lora_alpha=config.lora_alpha, lora_dropout=LORA_DROPOUT,
                      target_modules="all-linear", task_type="CAUSAL_LM")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # peft calls a transformers API deprecated for v6
        return get_peft_model(model, lora)


def build_trainer(config: DistillConfig, split: Split, draft: torch.nn.Module, target: torch.nn.Module | None = None) -> Trainer:
    """A trainer for ``draft`` (a plain causal LM, changed in place) on ``split``."""
    model = add_lora(draft, config)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)
    device = next(model.parameters()).device
    return Trainer(config, split, model, optimizer, device, target.eval() if target is not None else None)


def lr_at(step: int, steps: int, base: float) -> float:
    """Learning rate of 0-based ``step``: linear warmup over the first 10% of steps, then cosine decay."""
    warm = max(1, round(WARMUP_FRACTION * steps))
    if step < warm:
        return base * (step + 1) / warm
    return base * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, steps - warm)))


def _losses(trainer: Trainer, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """(per-position losses, draft logits) of one batch."""
    logits = predicted_logits(trainer.model.get_base_model(), batch)
    target = None
    if trainer.target is not None:
        with torch.no_grad():
            target = predicted_logits(trainer.target, batch)
    return position_losses(logits, batch, trainer.config.token_level, target), logits


def _accumulate(trainer: Trainer, examples: list) -> float:
    """Gradients of the mean loss over every output token of ``examples``, ``micro_batch`` prompts per
    forward pass; returns that mean."""
    total, loss_sum = sum(len(e.output_ids) for e in examples), 0.0
    for part in chunks(tuple(examples), trainer.config.micro_batch):
        losses = _losses(trainer, collate(part, device=trainer.device))[0]
        (losses.sum() / total).backward()
        loss_sum += float(losses.detach().sum())
    return loss_sum / total


def train_step(trainer: Trainer) -> TrainPoint:
    """One optimizer step on the prompts of the current step."""
    c, p = trainer.config, trainer.progress
    picks = step_indices(len(trainer.split.train), c.batch_size, c.seed, p.step)
    lr = lr_at(p.step, c.steps, c.lr)
    for group in trainer.optimizer.param_groups:
        group["lr"] = lr
    trainer.optimizer.zero_grad(set_to_none=True)
    loss = _accumulate(trainer, [trainer.split.train[i] for i in picks])
    torch.nn.utils.clip_grad_norm_([q for g in trainer.optimizer.param_groups for q in g["params"]], GRAD_CLIP)
    trainer.optimizer.step()
    return TrainPoint(p.step + 1, loss, lr)


@torch.no_grad()
def evaluate(trainer: Trainer) -> ValPoint:
    """Mean loss and draft/target agreement over every held-out output token (dropout off)."""
    trainer.model.eval()
    total, agree, count = 0.0, 0, 0
    for examples in chunks(trainer.split.val, trainer.config.micro_batch):
        batch = collate(examples, device=trainer.device)
        losses, logits = _losses(trainer, batch)
        total, agree, count = total + float(losses.sum()), agree + agreement(logits, batch), count + batch.n_predicted
    trainer.model.train()
    return ValPoint(trainer.progress.step, total / max(1, count), agree / max(1, count))


def peak_memory_mb(device: torch.device) -> float:
    """Peak resident memory of this process (``ru_maxrss``), or peak CUDA memory allocated on a GPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def make_checkpoint(trainer: Trainer, identity: dict) -> Checkpoint:
    from peft import get_peft_model_state_dict

    p = trainer.progress
    p.peak_rss_mb = max(p.peak_rss_mb, peak_memory_mb(trainer.device))
    cuda = torch.cuda.get_rng_state_all() if trainer.device.type == "cuda" else []
    adapter = {k: v.detach().clone() for k, v in get_peft_model_state_dict(trainer.model).items()}
    return Checkpoint(identity, p, adapter, trainer.optimizer.state_dict(), torch.get_rng_state(), cuda)


def restore(trainer: Trainer, checkpoint: Checkpoint) -> None:
    """Continue exactly where ``checkpoint`` stopped: weights, optimizer moments, RNG, curves."""
    from peft import set_peft_model_state_dict

    set_peft_model_state_dict(trainer.model, checkpoint.adapter)
    trainer.optimizer.load_state_dict(checkpoint.optimizer)
    torch.set_rng_state(checkpoint.rng)
    if checkpoint.cuda_rng:
        torch.cuda.set_rng_state_all(checkpoint.cuda_rng)
    trainer.progress = checkpoint.progress


def _timed(trainer: Trainer, work):
    start = time.perf_counter()
    result = work(trainer)
    trainer.progress.seconds += time.perf_counter() - start
    return result


def _advance(trainer: Trainer) -> None:
    """One step, plus a validation pass when it is due."""
    c, p = trainer.config, trainer.progress
    p.train.append(_timed(trainer, train_step))
    p.step += 1
    if p.step % c.eval_every == 0 or p.step == c.steps:
        p.val.append(_timed(trainer, evaluate))


def _postfix(p: Progress) -> dict:
    return {"loss": f"{p.train[-1].loss:.3f}", "val": f"{p.val[-1].loss:.3f}"}


def train(trainer: Trainer, identity: dict, folder: Path, quiet: bool = False) -> Progress:
    """Run the remaining steps, checkpointing into ``folder``; Ctrl-C saves a checkpoint, then stops."""
    c, p = trainer.config, trainer.progress
    if not p.val:
        p.val.append(_timed(trainer, evaluate))
    with StopRequest() as stop, tqdm(total=c.steps, initial=p.step, desc=f"distill {c.domain}", unit="step",
                                     file=sys.stderr, disable=quiet) as bar:
        while p.step < c.steps:
            _advance(trainer)
            bar.update(1)
            bar.set_postfix(_postfix(p))
            if p.step % c.checkpoint_every == 0 or p.step == c.steps or stop.requested:
                make_checkpoint(trainer, identity).save(folder)
            if stop.requested:
                print(f"specdyn: stopped after step {p.step}; the same command resumes from there", file=sys.stderr)
                raise KeyboardInterrupt
    p.peak_rss_mb = max(p.peak_rss_mb, peak_memory_mb(trainer.device))
    return p
