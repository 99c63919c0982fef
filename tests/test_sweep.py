"""`specdyn sweep` in this process: a 2x2 grid into one run folder per cell with an index and a report,
resumed cell by cell after kill -9, and sweep files checked strictly (the key, the line, nothing written)."""

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
from test_study import assert_same_records, pair, suite, tables  # noqa: F401 - module fixtures

# The sweep file's [base] fills lines 1-8, so [grid] starts on line 9.
GRID = '[grid]\ntree = ["static:depth=3,branch=2", "static:depth=2,branch=1"]\ndrafter = ["model", "lookup"]\n'


def sweep_file(folder, pair, suite, grid=GRID, base="", name="sweep.toml"):
    text = (f'[base]\nsuite = "{suite}"\ndraft = "{pair["draft"]}"\ntarget = "{pair["target"]}"\n'
            f'max_new_tokens = 32\ndtype = "float32"\nbatch_size = 2\n{base}\n{grid}')
    path = folder / name
    path.write_text(text)
    return path


def sweep_args(path, out, *extra):
    return ["sweep", str(path), "--out", str(out), "--threads-per-worker", "1", "--quiet", *extra]


def index_of(out):
    return json.loads((out / "index.json").read_text())


@pytest.fixture(scope="module")
def finished(pair, suite, tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep")
    out = folder / "out"
    assert main(sweep_args(sweep_file(folder, pair, suite), out)) == 0
    return out


def test_grid_runs_every_cell_into_its_folder(finished):
    index = index_of(finished)
    assert index["dimensions"] == ["tree", "drafter"]
    cells = index["cells"]
    trees, drafters = ("static:depth=3,branch=2", "static:depth=2,branch=1"), ("model", "lookup")
    assert [c["values"] for c in cells] == [{"tree": t, "drafter": d} for t in trees for d in drafters]
    assert {c["status"] for c in cells} == {"complete"} and len({c["folder"] for c in cells}) == 4
    for c in cells:
        manifest = json.loads((finished / c["folder"] / "manifest.json").read_text())
        assert manifest["status"] == "complete" and manifest["config"] == c["config"]
        assert manifest["config"]["tree"] == c["values"]["tree"]  # canonical text: lookup is lookup:ngram=3
        assert manifest["config"]["drafter"].split(":")[0] == c["values"]["drafter"]
        assert manifest["sessions"][0]["backend"] == "in-process" and manifest["sessions"][0]["prompts"] == 12


def test_report_puts_cells_side_by_side_per_domain(finished):
    report = json.loads((finished / "report.json").read_text())
    assert sorted(report["domains"]) == ["poetry", "translation"]
    for domain, entries in report["domains"].items():
        assert [e["cell"] for e in entries] == [0, 1, 2, 3]
        for e in entries:  # the numbers, recomputed straight from the records
            steps = read_records(finished / e["folder"], "steps").filter(pc.field("domain") == domain)
            accepted = steps["accepted"].to_pylist()
            assert e["accepted_per_step"] == pytest.approx(sum(accepted) / len(accepted))
            assert e["nodes_per_step"] == pytest.approx(sum(steps["tree_size"].to_pylist()) / len(accepted))
    html = (finished / "report.html").read_text()
    assert "static:depth=2,branch=1" in html and "<h2>poetry</h2>" in html


def test_resume_after_kill_9_cell_by_cell(finished, pair, suite, tmp_path):
    path = sweep_file(tmp_path, pair, suite)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "specdyn.cli", *sweep_args(path, out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        if _one_done_one_started(out):
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the sweep finished before it could be killed"
    before = {c["folder"]: c["status"] for c in index_of(out)["cells"]}
    done = [f for f, s in before.items() if s == "complete"]
    stamps = {f: (out / f / "manifest.json").stat().st_mtime_ns for f in done}
    assert main(sweep_args(path, out)) == 0
    after = index_of(out)["cells"]
    assert {c["status"] for c in after} == {"complete"}
    assert all((out / f / "manifest.json").stat().st_mtime_ns == stamps[f] for f in done)  # skipped, untouched
    for c in after:
        sessions = json.loads((out / c["folder"] / "manifest.json").read_text())["sessions"]
        assert len(sessions) == {"complete": 1, "running": 2, "pending": 1}[before[c["folder"]]], c
        assert_same_records(tables(finished / c["folder"]), tables(out / c["folder"]))
        ids = tables(out / c["folder"])["prompts"]["prompt_id"].to_pylist()
        assert len(ids) == len(set(ids)) == 12


def _one_done_one_started(out) -> bool:
    try:
        cells = index_of(out)["cells"]
    except (OSError, ValueError):
        return False
    running = [out / c["folder"] / "prompts" for c in cells if c["status"] == "running"]
    started = any(folder.is_dir() and list(folder.glob("shard-*.parquet")) for folder in running)
    return started and any(c["status"] == "complete" for c in cells)


BAD = [
    ('[grid\ntree = ["static:depth=3,branch=2"]\n', "line 9, column 6"),
    ('[grid]\n', "[grid] is empty"),
    ('[grid]\ntree = []\n', "line 10: tree must be a non-empty list"),
    ('[grid]\ntreee = ["static:depth=3,branch=2"]\n', "line 10: unknown config key 'treee'"),
    ('[grid]\ntree = ["static:depth=3,branch=2",\n  "static:depth=x"]\n', "line 10: tree = 'static:depth=x'"),
    ('[grid]\nmax_new_tokens = ["16"]\n', "line 10: [grid]: max_new_tokens must be int"),
    ('[grid]\ntree = ["static:depth=3,branch=2", "static:branch=2,depth=3"]\n', "are the same run"),
    ('[grid]\ndtype = ["float32"]\n', "line 10: dtype is set twice (in [base] and [grid] dtype)"),
    ('[grids]\ntree = ["static:depth=3,branch=2"]\n', "line 9: unknown table or key 'grids'"),
    ('[grid]\ntree = ["dynamic:nodes=4,depth=2,topk=2"]\ndrafter = ["model", "lookup"]\n', "lines 10, 11: cell tree="),
    ('[grid]\n[[grid.pair]]\ndraft = "a"\n[[grid.pair]]\nseed = 3\n', "line 12: every [[grid.pair]] must set the same keys"),
]


@pytest.mark.parametrize("grid, message", BAD)
def test_malformed_sweep_files(pair, suite, tmp_path, capsys, grid, message):
    path = sweep_file(tmp_path, pair, suite, grid=grid)
    assert main(sweep_args(path, tmp_path / "out")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("specdyn: error: ") and message in err, err
    assert not (tmp_path / "out").exists()


def test_bad_base_and_folder(pair, suite, tmp_path, capsys):
    path = sweep_file(tmp_path, pair, suite, base="max_new_tokens_x = 3")
    assert main(sweep_args(path, tmp_path / "out")) == 2
    assert "line 8: [base]: unknown config key 'max_new_tokens_x'" in capsys.readouterr().err
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x.txt").write_text("x")
    assert main(sweep_args(sweep_file(tmp_path, pair, suite), tmp_path / "busy")) == 2
    assert "not a specdyn sweep folder" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "busy").iterdir()) == ["x.txt"]
