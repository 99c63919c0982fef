"""`specdyn distill`: fine-tune the draft toward the target on one domain of a run, as a LoRA adapter."""

from __future__ import annotations

import sys

from specdyn.commands.common import print_notes
from specdyn.distill import DistillConfig, FolderState, TokenLevel, distill, prepare
from specdyn.distill import settings as s


def add_parser(sub) -> None:
    p = sub.add_parser(
        "distill", help="train a LoRA adapter that moves the draft toward the target on one domain of a run",
        description="Sequence-level distillation (DistillSpec style): fine-tune the draft with a LoRA adapter on one "
        "domain's recorded prompts and target outputs from RUN_DIR (loss on the output tokens only), holding out "
        f"{s.VAL_FRACTION:.0%} of the prompts for a validation loss. Writes the adapter, distill.json and checkpoints to "
        "--out; rerunning the same command after an interruption resumes from the last checkpoint.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by `specdyn run`")
    p.add_argument("--domain", required=True, help="the domain to train on (one of the run's domains)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (new, empty, or an unfinished training of the same config)")
    p.add_argument("--steps", type=int, default=s.DEFAULT_STEPS, metavar="N", help=f"optimizer steps (default {s.DEFAULT_STEPS})")
    p.add_argument("--rank", type=int, default=s.DEFAULT_RANK, metavar="R",
                   help=f"LoRA rank on every attention and MLP projection; alpha = 2R (default {s.DEFAULT_RANK})")
    p.add_argument("--lr", type=float, default=s.DEFAULT_LR, help=f"peak learning rate of AdamW: 10%% warmup, then cosine decay (default {s.DEFAULT_LR:g})")
    p.add_argument("--batch-size", type=int, default=s.DEFAULT_BATCH_SIZE, metavar="B", help=f"prompts per optimizer step (default {s.DEFAULT_BATCH_SIZE})")
    p.add_argument("--micro-batch", type=int, default=s.DEFAULT_MICRO_BATCH, metavar="M",
                   help=f"prompts per forward pass; gradients accumulate over the step (default {s.DEFAULT_MICRO_BATCH}: "
                   "on a CPU it costs the same per token and needs the least memory; raise it on a GPU)")
    p.add_argument("--max-length", type=int, default=s.DEFAULT_MAX_LENGTH, metavar="L",
                   help=f"tokens per sequence at most; longer ones lose the prompt's start, then the output's end (default {s.DEFAULT_MAX_LENGTH})")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the split, the adapter init and the data order (default 0)")
    p.add_argument("--min-prompts", type=int, default=s.DEFAULT_MIN_PROMPTS, metavar="M",
                   help=f"finished prompts the domain needs (default {s.DEFAULT_MIN_PROMPTS}; at least {s.SMALLEST_MIN_PROMPTS})")
    p.add_argument("--eval-every", type=int, default=s.DEFAULT_EVAL_EVERY, metavar="K",
                   help=f"validation loss every K steps, besides the start and the end (default {s.DEFAULT_EVAL_EVERY})")
    p.add_argument("--checkpoint-every", type=int, default=s.DEFAULT_CHECKPOINT_EVERY, metavar="K",
                   help=f"checkpoint every K steps, and on Ctrl-C (default {s.DEFAULT_CHECKPOINT_EVERY})")
    p.add_argument("--token-level", nargs="?", const="kl", choices=[m.value for m in TokenLevel if m is not TokenLevel.NONE],
                   help="token-level distillation: match the target's next-token distributions (kl: forward KL, the default "
                   "when the flag is given alone; tvd: total variation) instead of its tokens; loads the run's target too")
    p.add_argument("--draft", help="base draft to fine-tune: registry name, hub id or folder (default: the run's draft)")
    p.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32", help="dtype of the frozen model weights (default float32)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default auto: CUDA when present)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def config_from_args(args) -> DistillConfig:
    return DistillConfig(
        domain=args.domain, draft=args.draft or "", target="", steps=args.steps, rank=args.rank, lr=args.lr,
        batch_size=args.batch_size, micro_batch=args.micro_batch, max_length=args.max_length, seed=args.seed, min_prompts=args.min_prompts,
        eval_every=args.eval_every, checkpoint_every=args.checkpoint_every,
        token_level=TokenLevel(args.token_level or "none"), dtype=args.dtype, device=args.device)


def run(args) -> int:
    job = prepare(config_from_args(args), args.run_dir, args.out)
    print_notes(args.run_dir, job.run)
    if job.state is FolderState.RESUME:
        print(f"specdyn: resuming the unfinished training in {job.out}", file=sys.stderr)
    result = distill(job, quiet=args.quiet)
    first, last = result.progress.val[0], result.progress.val[-1]
    done = "already trained" if result.state is FolderState.COMPLETE else f"trained in {result.progress.seconds / 60:.1f} min"
    print(f"{job.config.domain}: {done}; validation loss {first.loss:.3f} -> {last.loss:.3f}, "
          f"draft/target agreement {first.agreement:.3f} -> {last.agreement:.3f}")
    print(f"adapter {result.adapter_id[:16]} in {result.out}", file=sys.stderr)
    return 0
