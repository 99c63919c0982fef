"""Ray against one process on the same prompts: 2 Ray workers x 1 thread vs 1 process x 2 threads, and
Ray's overhead (a 1-worker Ray run vs the same in this process, per prompt; a no-op actor round trip).

Each configuration goes through the executors `specdyn run` uses (specdyn.executors): start (load the
models; for Ray, start the actors), then decode every prompt (the decode phase is what is compared; run
folders are not written). All configurations run in this process, one after another, so they share the
machine's load; timings taken while other work runs are not meaningful.

    python benchmarks/bench_ray.py [--prompts N] [--max-new-tokens N] [--dtype D] [--batch-size B]
                                   [--draft NAME --target NAME] [--suite FILE] [--repeats R]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import dataclass

import ray

from specdyn.config import RunConfig
from specdyn.execution import Backend, Execution
from specdyn.executors import open_executor
from specdyn.executors.worker import Work
from specdyn.pipeline import resolve_models
from specdyn.study import interleave, load_prompts

PINGS = 200


@dataclass
class Timing:
    name: str
    start: float  # seconds to load models / start workers
    decode: float  # seconds to decode every prompt
    tokens: int
    outputs: dict


def measure(name: str, execution: Execution, config: RunConfig, prompts, repeats: int) -> Timing:
    """Median decode time over ``repeats`` fresh executors (startup included once per repeat)."""
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        with open_executor(execution, config, [config.tree]) as executor:
            t1 = time.perf_counter()
            inputs = executor.encode(prompts)
            work = [Work(0, [inputs[p.id] for p in prompts])]
            t2 = time.perf_counter()
            results = list(executor.decode(work))
            runs.append((t1 - t0, time.perf_counter() - t2, results))
    start, decode = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
    results = runs[-1][2]
    timing = Timing(name, start, decode, sum(len(r.output_ids) for r in results),
                    {r.prompt_id: r.output_ids for r in results})
    print(f"{name}: start {start:.1f} s, decode {decode:.2f} s, {timing.tokens / decode:.2f} tokens/s", flush=True)
    return timing


def round_trip(config: RunConfig) -> float:
    """Seconds per no-op call to a ready worker actor (median of batches of calls)."""
    with open_executor(Execution(Backend.RAY, "local"), config, [config.tree]) as executor:
        actor = executor.pool.idle()[0].actor
        ray.get(actor.ping.remote())
        times = []
        for _ in range(PINGS):
            t0 = time.perf_counter()
            ray.get(actor.ping.remote())
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--draft", default=RunConfig().draft)
    ap.add_argument("--target", default=RunConfig().target)
    ap.add_argument("--suite", default="default")
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    config = resolve_models(RunConfig(draft=args.draft, target=args.target, suite=args.suite, dtype=args.dtype,
                                      max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, device="cpu"))
    prompts = interleave(load_prompts(config))[: args.prompts]
    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
             logging_level="ERROR")
    local2 = measure("1 process x 2 threads", Execution(threads_per_worker=2), config, prompts, args.repeats)
    ray2 = measure("Ray 2 workers x 1 thread", Execution(Backend.RAY, "local", 2, 1), config, prompts, args.repeats)
    ray1 = measure("Ray 1 worker x 2 threads", Execution(Backend.RAY, "local", 1, 2), config, prompts, args.repeats)
    ping = round_trip(config)
    ray.shutdown()
    report(config, prompts, local2, ray2, ray1, ping)


def report(config: RunConfig, prompts, local2: Timing, ray2: Timing, ray1: Timing, ping: float) -> None:
    same = [sum(t.outputs[k] == local2.outputs[k] for k in local2.outputs) for t in (ray2, ray1)]
    print(f"\n{len(prompts)} prompts, max_new_tokens {config.max_new_tokens}, dtype {config.dtype}, batch "
          f"{config.batch_size}, {os.cpu_count()} CPUs; identical outputs vs 1 process: {same[0]}/{len(prompts)} "
          f"(2 workers), {same[1]}/{len(prompts)} (1 worker)")
    print(f"2 Ray workers x 1 thread vs 1 process x 2 threads: decode tokens/s x{_rate(ray2) / _rate(local2):.2f}, "
          f"startup x{ray2.start / local2.start:.2f}")
    extra = (ray1.decode - local2.decode) / len(prompts)
    print(f"Ray 1 worker x 2 threads vs 1 process x 2 threads: decode tokens/s x{_rate(ray1) / _rate(local2):.2f}, "
          f"{extra * 1e3:+.1f} ms per prompt; startup {ray1.start:.1f} s vs {local2.start:.1f} s")
    print(f"no-op actor round trip: {ping * 1e3:.2f} ms (median of {PINGS})")


def _rate(t: Timing) -> float:
    return t.tokens / t.decode


if __name__ == "__main__":
    main()
