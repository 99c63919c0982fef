#!/usr/bin/env bash
# Temperature sweep per domain (issue 10): the same suite decoded greedily, at T = 0.7 and at T = 1.0 with the
# same tree, seed and batch size, then `specdyn compare` puts the runs side by side per domain (acceptance,
# accepted tokens per step, tokens/s, sampling setting). docs/run.md ("Temperature sweep") explains it.
#
#   benchmarks/temperature_sweep.sh [OUT_DIR] [more `specdyn run` options...]
#
#   OUT_DIR        where the runs go: OUT_DIR/T0, OUT_DIR/T0.7, OUT_DIR/T1.0, OUT_DIR/compare.{md,json}
#                  (default runs/sweep)
#   PER_DOMAIN     prompts per domain of the default suite (default 10: 40 prompts per run)
#   TEMPERATURES   the sweep (default "0 0.7 1.0"; 0 is greedy)
#   TOP_P          top-p of the sampled runs (default 1.0: off)
#   CHILDREN       children of the sampled runs: topk or sampled (default topk, so that only the temperature
#                  changes; greedy runs always use topk)
#   SPECDYN        the command (default "specdyn"; e.g. "python -m specdyn.cli")
#
# Re-running the script resumes interrupted runs (each run folder resumes; finished ones are skipped).
set -euo pipefail

out="${1:-runs/sweep}"
shift $(( $# > 0 ? 1 : 0 ))
read -r -a specdyn <<< "${SPECDYN:-specdyn}"
runs=()
for t in ${TEMPERATURES:-0 0.7 1.0}; do
    sampling=(--temperature "$t")
    if [[ "$t" != 0 && "$t" != 0.0 ]]; then
        sampling+=(--top-p "${TOP_P:-1.0}" --children "${CHILDREN:-topk}")
    fi
    "${specdyn[@]}" run --out "$out/T$t" --per-domain "${PER_DOMAIN:-10}" --seed 0 "${sampling[@]}" "$@"
    runs+=("$out/T$t")
done
"${specdyn[@]}" compare "${runs[@]}" --out "$out/compare.json" > /dev/null
"${specdyn[@]}" compare "${runs[@]}" --out "$out/compare.md"
