#!/usr/bin/env bash
# Issue 12's proof: adaptive trees (no domain label) against the default tree, the single best global tree
# and the per-domain trees (which need the label), on held-out prompts, in measured tokens/s with
# paired-bootstrap intervals per domain (`specdyn compare`). See docs/budget.md, section 9.
#
#   benchmarks/adaptive_proof.sh                 # the default pair; run on an otherwise idle machine
#   TINY=1 benchmarks/adaptive_proof.sh          # tiny random models and suites: proves the commands (~minutes)
#
# Settings (environment): OUT (runs/adaptive-proof), FIT_PER_DOMAIN (30), EVAL_PER_DOMAIN (20; the chat pool
# holds 50 prompts, so FIT + EVAL <= 50), MAX_NEW (128), ADAPTIVE (adaptive:every=8), MIN_OBS (200),
# MODELS (extra model flags, e.g. "--dtype float32"), SPECDYN (the command, default `specdyn`).
set -euo pipefail

SPECDYN=${SPECDYN:-specdyn}
OUT=${OUT:-runs/adaptive-proof}
FIT_PER_DOMAIN=${FIT_PER_DOMAIN:-30}
EVAL_PER_DOMAIN=${EVAL_PER_DOMAIN:-20}
MAX_NEW=${MAX_NEW:-128}
ADAPTIVE=${ADAPTIVE:-adaptive:every=8}
MIN_OBS=${MIN_OBS:-200}
MODELS=${MODELS:-}
mkdir -p "$OUT"

if [ -n "${TINY:-}" ]; then  # tiny random Qwen2 pair and short synthetic suites (tests/tiny.py)
    python "$(dirname "$0")/adaptive_proof_tiny.py" "$OUT"
    MODELS="--draft $OUT/models/draft --target $OUT/models/target --dtype float32"
    MAX_NEW=${TINY_MAX_NEW:-24}
    MIN_OBS=10
else  # held-out draws: the evaluation prompts are drawn among those the fit run did not see
    $SPECDYN suite export --per-domain "$FIT_PER_DOMAIN" --seed 0 --out "$OUT/fit.jsonl"
    $SPECDYN suite export --per-domain "$EVAL_PER_DOMAIN" --seed 1 --exclude "$OUT/fit.jsonl" --out "$OUT/eval.jsonl"
fi

# One request at a time (batch size 1): adaptive trees are per request, and batch-1 timings are per prompt.
# Runs without --domain-trees decode the suite round robin over domains (code, math, logic, chat, code, ...):
# the mixed stream. The per-domain run needs the label and decodes domain by domain; at batch size 1 no state
# crosses requests, so the order changes no prompt's tokens or steps.
COMMON="$MODELS --max-new-tokens $MAX_NEW --batch-size 1 --no-report"

# 1. Fit: record acceptance with the default tree, time the models, choose trees (per domain and global).
$SPECDYN run --suite "$OUT/fit.jsonl" --out "$OUT/fit" $COMMON
$SPECDYN budget "$OUT/fit" --measure --batch 1 --global --export vllm,sglang --min-observations "$MIN_OBS"

# 2. Evaluate on the held-out prompts.
$SPECDYN run --suite "$OUT/eval.jsonl" --out "$OUT/eval-default" $COMMON
$SPECDYN run --suite "$OUT/eval.jsonl" --out "$OUT/eval-global" --tree "paths:$OUT/fit/budget/global.json" $COMMON
$SPECDYN run --suite "$OUT/eval.jsonl" --out "$OUT/eval-domain" --domain-trees "$OUT/fit/budget" $COMMON
$SPECDYN run --suite "$OUT/eval.jsonl" --out "$OUT/eval-adaptive" --tree "$ADAPTIVE" --profile "$OUT/fit" $COMMON

# 3. Compare: per domain, adaptive vs default, vs global and vs per-domain, with paired-bootstrap intervals.
RUNS=("$OUT/eval-default" "$OUT/eval-global" "$OUT/eval-domain" "$OUT/eval-adaptive")
$SPECDYN compare "${RUNS[@]}" --out "$OUT/compare.json" > /dev/null
$SPECDYN compare "${RUNS[@]}" --out "$OUT/compare.md"
