"""`specdyn run --ray` and `specdyn sweep --ray` on a local Ray cluster started inside the test (2 CPUs),
with tiny models: the same records as in this process, resumable either way, nothing lost or written
twice when workers are killed mid-prompt, and one-line errors for bad settings before anything runs."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest
import ray

from specdyn.cli import main
from specdyn.errors import SpecdynError
from specdyn.executors.ray_pool import RayExecutor, check_reachable
from test_budget import synthetic_costs
from test_study import assert_same_records, pair, reference, run_args, suite, tables  # noqa: F401 - fixtures
from test_sweep import finished, index_of, sweep_file  # noqa: F401 - fixtures

RAY = ("--ray", "local")
pytestmark = pytest.mark.usefixtures("one_thread")  # the in-process runs; each Ray worker sets 1 thread itself


def manifest(out):
    return json.loads((out / "manifest.json").read_text())


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("specdyn: error: "), err
    return err


# Runs before the cluster fixture starts Ray in this process (a connected process reuses its connection).
def test_unreachable_address_fails_fast(pair, suite, tmp_path, capsys):
    assert not ray.is_initialized()
    out = tmp_path / "run"
    assert main(run_args(pair, suite, out, "--ray", "127.0.0.1:1")) == 2
    assert "cannot reach the Ray cluster at 127.0.0.1:1" in error_line(capsys)
    assert main(run_args(pair, suite, out, "--ray", "no-port-here")) == 2
    assert "expected auto, local, HOST:PORT or ray://HOST:PORT" in error_line(capsys)
    assert not out.exists() and not ray.is_initialized()
    with pytest.raises(SpecdynError, match="within 0.2 s"):
        check_reachable("ray://192.0.2.1:10001", timeout=0.2)  # TEST-NET-1: nothing answers


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


def interrupted_copy(source: Path, dest: Path, keep: int) -> Path:
    """A copy of a finished run as an interruption leaves it: prompt rows from shard ``keep`` on gone
    (their node and step shards left behind as orphans), the manifest still saying running."""
    shutil.copytree(source, dest)
    for shard in sorted((dest / "prompts").glob("shard-*.parquet"))[keep:]:
        shard.unlink()
    doc = manifest(dest) | {"status": "running", "finished": None, "counts": None}
    (dest / "manifest.json").write_text(json.dumps(doc))
    return dest


def test_ray_run_equals_in_process_and_resumes_without_ray(cluster, reference, pair, suite, tmp_path):
    out = tmp_path / "ray"
    assert main(run_args(pair, suite, out, "--batch-size", "1", *RAY, "--workers", "2")) == 0
    assert_same_records(tables(reference), tables(out))
    (session,) = manifest(out)["sessions"]
    assert (session["backend"], session["workers"], session["threads_per_worker"]) == ("ray", 2, 1)
    assert (session["prompts"], session["worker_failures"], session["requeued_prompts"]) == (12, 0, 0)
    assert manifest(out)["models"] == manifest(reference)["models"]
    half = interrupted_copy(out, tmp_path / "half", keep=5)
    assert main(run_args(pair, suite, half, "--batch-size", "1")) == 0
    assert_same_records(tables(reference), tables(half))
    assert [(s["backend"], s["prompts"]) for s in manifest(half)["sessions"]] == [("ray", 12), ("in-process", 7)]


def test_adaptive_tree_with_a_profile_on_ray_equals_in_process(cluster, reference, pair, suite, tmp_path):
    """Ray actors build the adaptive proposer from the config they receive (the profile's counts and cost
    model inside it) and sample exactly as this process does."""
    profile = tmp_path / "profile"
    shutil.copytree(reference, profile)
    synthetic_costs(batches=(1,)).save(profile / "costs.json")
    extra = ("--batch-size", "1", "--tree", "adaptive:every=2,nodes=6,depth=3", "--profile", str(profile),
             "--temperature", "0.8")
    assert main(run_args(pair, suite, tmp_path / "local", *extra)) == 0
    assert main(run_args(pair, suite, tmp_path / "ray", *extra, *RAY, "--workers", "2")) == 0
    assert_same_records(tables(tmp_path / "local"), tables(tmp_path / "ray"))
    assert manifest(tmp_path / "ray")["sessions"][0]["backend"] == "ray"
    assert manifest(tmp_path / "ray")["trees"] == manifest(tmp_path / "local")["trees"]


def kill_after_first_result(monkeypatch, every: bool) -> list[int]:
    """Make the driver ray.kill a worker right after receiving a prompt from it while it still holds
    prompts of its chunk (the first such worker, or ``every`` one); returns the prompts each held."""
    held: list[int] = []
    killed: set[int] = set()
    receive = RayExecutor._receive

    def receive_then_kill(self, slot, queue):
        for result in receive(self, slot, queue):
            if (every or not held) and id(slot) not in killed and slot.task and slot.task.prompts:
                killed.add(id(slot))  # at once: the worker is decoding the next prompt of its chunk
                held.append(len(slot.task.prompts))
                ray.kill(slot.actor)
            yield result

    monkeypatch.setattr(RayExecutor, "_receive", receive_then_kill)
    return held


def test_killed_worker_loses_nothing_while_resuming_on_ray(cluster, reference, pair, suite, tmp_path, monkeypatch):
    held = kill_after_first_result(monkeypatch, every=False)
    out = interrupted_copy(reference, tmp_path / "killed", keep=2)  # an in-process run, resumed on Ray
    assert main(run_args(pair, suite, out, "--batch-size", "1", *RAY, "--workers", "2")) == 0
    assert len(held) == 1
    first, session = manifest(out)["sessions"]
    assert (first["backend"], session["backend"], session["worker_failures"]) == ("in-process", "ray", 1)
    assert 1 <= session["requeued_prompts"] <= held[0] and session["prompts"] == 10
    ids = tables(out)["prompts"]["prompt_id"].to_pylist()
    assert len(ids) == len(set(ids)) == 12
    assert_same_records(tables(reference), tables(out))


def test_all_workers_dead_is_one_line_and_the_run_resumes(cluster, reference, pair, suite, tmp_path, monkeypatch,
                                                          capsys):
    held = kill_after_first_result(monkeypatch, every=True)
    out = tmp_path / "dead"
    assert main(run_args(pair, suite, out, "--batch-size", "1", *RAY, "--workers", "1")) == 2
    assert "all Ray workers died (2 failures)" in error_line(capsys)  # the worker and its one replacement
    assert len(held) == 2 and manifest(out)["status"] == "running"
    assert 2 <= len(list((out / "prompts").glob("shard-*.parquet"))) < 12
    monkeypatch.undo()
    assert main(run_args(pair, suite, out, "--batch-size", "1")) == 0
    assert_same_records(tables(reference), tables(out))


def test_sweep_resumes_on_ray_and_matches_in_process(cluster, finished, pair, suite, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(finished, out)
    cells = index_of(finished)["cells"]
    for c in cells[2:]:  # two cells never ran
        shutil.rmtree(out / c["folder"])
    stamps = [(out / c["folder"] / "manifest.json").stat().st_mtime_ns for c in cells[:2]]
    assert main(["sweep", str(sweep_file(tmp_path, pair, suite)), "--out", str(out), *RAY, "--quiet"]) == 0
    assert [c["status"] for c in index_of(out)["cells"]] == ["complete"] * 4
    assert [(out / c["folder"] / "manifest.json").stat().st_mtime_ns for c in cells[:2]] == stamps  # skipped
    for c in cells[2:]:
        assert manifest(out / c["folder"])["sessions"][0]["backend"] == "ray"
        assert_same_records(tables(finished / c["folder"]), tables(out / c["folder"]))
    assert json.loads((out / "report.json").read_text())["domains"].keys() == {"poetry", "translation"}


@pytest.mark.parametrize("flags, message", [
    (("--ray", "local", "--workers", "0"), "--workers must be an integer >= 1 (got 0)"),
    (("--ray", "local", "--workers", "two"), "--workers must be an integer (got 'two')"),
    (("--ray", "local", "--threads-per-worker", "0"), "--threads-per-worker must be an integer >= 1"),
    (("--ray", "local", "--gpus-per-worker", "-1"), "--gpus-per-worker must be a number >= 0"),
    (("--ray", "local", "--gpus-per-worker", "nan"), "--gpus-per-worker must be a number >= 0"),
    (("--ray", "local", "--gpus-per-worker", "one"), "--gpus-per-worker must be a number >= 0"),
    (("--workers", "2"), "--workers needs --ray"),
    (("--gpus-per-worker", "1"), "--gpus-per-worker needs --ray"),
    (("--ray", "local", "--threads-per-worker", "64"), "no Ray node can hold a worker of 64 CPU(s)"),
])
def test_bad_settings(cluster, pair, suite, tmp_path, capsys, flags, message):
    assert main(run_args(pair, suite, tmp_path / "run", *flags)) == 2
    assert message in error_line(capsys)
    assert main(["sweep", str(sweep_file(tmp_path, pair, suite)), "--out", str(tmp_path / "sweep"), *flags]) == 2
    assert message in error_line(capsys)
    assert not (tmp_path / "run").exists() and not (tmp_path / "sweep").exists()


def test_without_ray_installed(pair, suite, tmp_path, capsys, monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else find_spec(name, *a))
    assert main(run_args(pair, suite, tmp_path / "run", *RAY)) == 2
    assert "pip install 'specdyn[ray]'" in error_line(capsys)
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails
    monkeypatch.delitem(sys.modules, "specdyn.executors.ray_pool")
    with pytest.raises(SpecdynError, match=r"pip install 'specdyn\[ray\]'"):
        importlib.import_module("specdyn.executors.ray_pool")
    assert not (tmp_path / "run").exists()
