"""`specdyn run` on tiny models saved to disk: records, resume after kill -9, batching, manifest, errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pyarrow.compute as pc
import pytest

from specdyn.cli import main
from specdyn.rundir.reader import read_records
from specdyn.suites import Prompt, write_suite
from tiny import save_tiny_pair

FLOATS = ("draft_prob", "draft_entropy", "target_prob", "target_entropy", "accept_prob", "verify_prob",
          "draft_target_tv")
TIMES = ("draft_seconds", "verify_seconds", "seconds")


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return save_tiny_pair(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    words = ["alpha beta", "gamma", "delta epsilon zeta", "eta theta", "iota", "kappa lambda mu nu"]
    prompts = [
        Prompt(id=f"{dom}/{i}", domain=dom, source="test", messages=[{"role": "user", "content": f"{dom}: {w}"}])
        for dom in ("translation", "poetry") for i, w in enumerate(words)
    ]
    path = tmp_path_factory.mktemp("suite") / "suite.jsonl"
    write_suite(prompts, path)
    return str(path)


def run_args(pair, suite, out, *extra):
    return ["run", "--suite", suite, "--out", str(out), "--draft", pair["draft"], "--target", pair["target"],
            "--dtype", "float32", "--max-new-tokens", "24", "--quiet", "--no-report", *extra]


def tables(out):
    return {t: read_records(out, t).sort_by([("prompt_id", "ascending")] + ([("step", "ascending")] if t != "prompts" else [])
                                    + ([("node", "ascending")] if t == "nodes" else [])) for t in ("nodes", "steps", "prompts")}


def assert_same_records(a, b):
    for name in ("nodes", "steps", "prompts"):
        ta, tb = a[name], b[name]
        assert ta.num_rows == tb.num_rows > 0
        for col in ta.column_names:
            if col in TIMES:
                continue
            if col in FLOATS:  # NaN where a statistic does not exist (draft_target_tv of lookup nodes): in both
                nan = pc.is_nan(ta[col])
                assert nan.to_pylist() == pc.is_nan(tb[col]).to_pylist(), (name, col)
                keep = pc.invert(nan)
                diff = pc.max(pc.abs(pc.subtract(ta[col].filter(keep), tb[col].filter(keep)))).as_py()
                assert diff is None or diff < 1e-4, (name, col, diff)
            else:
                assert ta[col].to_pylist() == tb[col].to_pylist(), (name, col)


@pytest.fixture(scope="module")
def reference(pair, suite, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    assert main(run_args(pair, suite, out, "--batch-size", "1")) == 0
    return out


def test_run_writes_records_and_manifest(reference, suite):
    t = tables(reference)
    assert t["prompts"].num_rows == 12
    assert set(t["nodes"]["domain"].to_pylist()) == {"translation", "poetry"}
    assert t["nodes"].num_rows == sum(t["steps"]["tree_size"].to_pylist())
    assert sum(t["prompts"]["steps"].to_pylist()) == t["steps"].num_rows
    manifest = json.loads((reference / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["counts"] == {"prompts": 12, "steps": t["steps"].num_rows, "nodes": t["nodes"].num_rows}
    assert manifest["config"]["tree"] == "static:depth=3,branch=2" and manifest["config"]["suite"] == suite
    assert set(manifest["models"]) == {"draft", "target"} and manifest["versions"]["torch"]
    assert manifest["started"] <= manifest["finished"]


def test_batched_equals_unbatched(reference, pair, suite, tmp_path):
    out = tmp_path / "batched"
    assert main(run_args(pair, suite, out, "--batch-size", "4")) == 0
    assert_same_records(tables(reference), tables(out))


def kill_mid_run(args: list[str], out, after: int = 3) -> None:
    """Start `specdyn ARGS` in a subprocess and SIGKILL it once ``after`` prompts are flushed to ``out``."""
    proc = subprocess.Popen([sys.executable, "-m", "specdyn.cli", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        shards = list((out / "prompts").glob("shard-*.parquet")) if (out / "prompts").exists() else []
        if len(shards) >= after:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert json.loads((out / "manifest.json").read_text())["status"] == "running"


def test_resume_after_kill_9(reference, pair, suite, tmp_path):
    out = tmp_path / "killed"
    kill_mid_run(run_args(pair, suite, out, "--batch-size", "1"), out)
    assert main(run_args(pair, suite, out, "--batch-size", "1")) == 0
    assert_same_records(tables(reference), tables(out))
    ids = tables(out)["prompts"]["prompt_id"].to_pylist()
    assert len(ids) == len(set(ids)) == 12


def test_other_config_is_refused(reference, pair, suite, capsys):
    assert main(run_args(pair, suite, reference, "--batch-size", "1", "--tree", "static:depth=2,branch=2")) == 2
    assert "different config" in capsys.readouterr().err


def test_bad_inputs(pair, suite, tmp_path, capsys):
    (tmp_path / "bad.toml").write_text("no_such_key = 3\n")
    assert main(run_args(pair, suite, tmp_path / "a", "--config", str(tmp_path / "bad.toml"))) == 2
    assert "unknown config key 'no_such_key'" in capsys.readouterr().err
    (tmp_path / "bad.jsonl").write_text('{"id": "x"}\n')
    assert main(run_args(pair, str(tmp_path / "bad.jsonl"), tmp_path / "b")) == 2
    assert "missing field" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(run_args(pair, suite, blocker / "run")) == 2
    assert "cannot write run folder" in capsys.readouterr().err
    (tmp_path / "notrun").mkdir()
    (tmp_path / "notrun" / "x.txt").write_text("x")
    assert main(run_args(pair, suite, tmp_path / "notrun")) == 2
    assert "not a specdyn run folder" in capsys.readouterr().err


def test_domain_trees(pair, suite, tmp_path):
    trees = tmp_path / "trees"
    trees.mkdir()
    (trees / "poetry.json").write_text("[[0], [0, 0], [0, 0, 0], [0, 0, 0, 0]]")  # a chain of 4
    out = tmp_path / "run"
    assert main(run_args(pair, suite, out, "--domain-trees", str(trees))) == 0
    steps = tables(out)["steps"]
    sizes = {}
    for dom, size in zip(steps["domain"].to_pylist(), steps["tree_size"].to_pylist()):
        sizes.setdefault(dom, set()).add(size)
    assert sizes == {"poetry": {4}, "translation": {14}}
    assert main(run_args(pair, suite, tmp_path / "x", "--domain-trees", str(tmp_path / "nope"))) == 2
    assert not (tmp_path / "x").exists()
