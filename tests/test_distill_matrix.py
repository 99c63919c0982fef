"""benchmarks/distill_matrix.py end to end on tiny models: adapters per domain, an evaluation suite without
their training prompts, one run per draft, the compare matrix and the budget's drafter choice (the proof
pipeline at toy size)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from specdyn.adapter_spec import read_adapter, training_prompt_ids
from specdyn.suites import Prompt, load_suite, write_suite
from test_distill import WORDS, pair, run_dir  # noqa: F401 (fixtures)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import distill_matrix  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
DISTILL = "--steps 8 --min-prompts 3 --micro-batch 4 --eval-every 4 --checkpoint-every 4 --quiet"


@pytest.fixture(scope="module")
def eval_suite(tmp_path_factory):
    """New prompts of both domains plus every prompt of the training run (the filter must drop the trained ones)."""
    new = [(f"{d}/new{i}", d, f"{d} {WORDS[20 + i % 4]} {WORDS[(5 * i + 2) % 20]}") for d in ("greek", "latin") for i in range(4)]
    old = [(f"{d}/{i:02d}", d, f"{d} {WORDS[i]} {WORDS[(7 * i) % 20]}") for d, n in (("greek", 20), ("latin", 5)) for i in range(n)]
    prompts = [Prompt(pid, d, "test", [{"role": "user", "content": text}]) for pid, d, text in new + old]
    path = tmp_path_factory.mktemp("eval") / "suite.jsonl"
    write_suite(prompts, path)
    return path


def test_the_pipeline_runs_end_to_end(run_dir, eval_suite, tmp_path, capsys):
    out = tmp_path / "matrix"
    argv = [str(run_dir), "--out", str(out), "--eval-suite", str(eval_suite), "--distill-args", DISTILL,
            "--run-args", "--quiet --max-new-tokens 16", "--budget",
            "--budget-args=--measure --repeats 1 --min-observations 5 --max-nodes 6 --max-depth 3"]
    assert distill_matrix.run_all(argv) == 0
    printed = capsys.readouterr().out
    assert printed.count("$ specdyn distill") == 2 and printed.count("$ specdyn run") == 3 and "--draft-adapter" in printed
    trained = {i for d in ("greek", "latin") for i in training_prompt_ids(out / "adapters" / d)}
    kept = [p.id for p in load_suite(out / "eval.jsonl")]
    assert len(trained) == 16 + 3 and not set(kept) & trained and {f"greek/new{i}" for i in range(4)} <= set(kept)
    doc = json.loads((out / "matrix.json").read_text())["matrix"]
    assert doc["domains"] == ["greek", "latin"] and doc["base"] == "base"
    labels = [r["label"] for r in doc["rows"]]
    assert labels == ["base"] + [read_adapter(out / "adapters" / d).label for d in ("greek", "latin")]
    cell = doc["rows"][1]["cells"]["greek"]
    assert cell["paired"] and cell["shared_prompts"] == cell["prompts"] == sum(k.startswith("greek/") for k in kept)
    assert "## Draft × domain matrix" in (out / "matrix.md").read_text()
    budget = json.loads((out / "budget" / "budget.json").read_text())
    for domain, block in budget["domains"].items():  # the pick is the fastest predicted of the three drafts
        speeds = [o["tokens_per_second"] for o in block["options"]]
        assert len(speeds) == 3 and speeds == sorted(speeds, reverse=True) and block["drafter"]["label"] in labels
        assert (out / "budget" / block["paths_file"]).is_file()


def test_dry_run_prints_the_plan(run_dir, tmp_path, capsys):
    assert distill_matrix.run_all([str(run_dir), "--out", str(tmp_path / "m"), "--domains", "greek", "--lookup", "--budget",
                                   "--budget-args=--measure", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[2] for line in lines] == ["distill", "suite", "suite", "run", "run", "run", "compare", "compare", "budget"]
    assert "--seed 1" in lines[1] and lines[5].endswith("--drafter lookup") and str(tmp_path / "m" / "runs" / "lookup") in lines[-1]
    assert lines[-1].endswith("--measure") and not (tmp_path / "m").exists()
