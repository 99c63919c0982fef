"""Time `build_report` on a synthetic run of about 1,000,000 nodes.

    python benchmarks/bench_report.py [--nodes 1000000] [--bootstrap 1000] [--keep DIR]

Generates the run with the test fixture tests/synthetic.py through the run-folder writer (4 domains, trees
of depth 3 and branch 2 = 14 nodes per step, prompt-level random effects), then times loading, the
statistics, the claims (cluster-robust fits and permutation tests) and the whole report (load + statistics
+ claims + figures + writing), and prints the seconds for each phase.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from specdyn.report import build_report
from specdyn.report.claims import evaluate_claims
from specdyn.report.compute import compute
from specdyn.report.figures import FIGURES
from specdyn.rundir.reader import load_run

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from synthetic import DomainSpec, SyntheticSpec, write_run  # noqa: E402  (the test fixture, written through the real writer)

NODES_PER_STEP = 14
STEPS_PER_PROMPT = (40, 100)


def make_spec(nodes: int) -> SyntheticSpec:
    mean_steps = sum(STEPS_PER_PROMPT) / 2
    per_domain = max(2, round(nodes / NODES_PER_STEP / mean_steps / 4))
    shares = {"code": 0.35, "math": 0.45, "logic": 0.5, "chat": 0.65}
    return SyntheticSpec(
        domains=[DomainSpec(name, prompts=per_domain, min_steps=STEPS_PER_PROMPT[0],
                            max_steps=STEPS_PER_PROMPT[1], easy_share=share, concentration=20.0,
                            depth_slope=-0.3) for name, share in shares.items()],
        prompts_per_shard=64, seed=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1_000_000)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--keep", type=Path, default=None, help="write the run here instead of a temp dir")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.keep or Path(tmp) / "run"
        t0 = time.perf_counter()
        write_run(make_spec(args.nodes), run_dir)
        t1 = time.perf_counter()
        run = load_run(run_dir)
        t2 = time.perf_counter()
        computed = compute(run, n_boot=args.bootstrap)
        t3 = time.perf_counter()
        evaluate_claims(computed)
        t4 = time.perf_counter()
        result = build_report(run_dir, Path(tmp) / "out", n_boot=args.bootstrap)
        t5 = time.perf_counter()
        overall = result.metrics.overall.acceptance
        print(f"synthetic run: {overall.nodes:,} nodes, {overall.steps:,} steps, "
              f"{overall.prompts:,} prompts (generated in {t1 - t0:.1f} s)")
        print(f"load_run:      {t2 - t1:6.2f} s")
        print(f"compute:       {t3 - t2:6.2f} s  ({args.bootstrap} bootstrap resamples)")
        print(f"claims:        {t4 - t3:6.2f} s  (claim (a) fits and permutation tests, verdicts)")
        print(f"build_report:  {t5 - t4:6.2f} s  (load + compute + claims + {len(FIGURES)} plots + write)")


if __name__ == "__main__":
    main()
