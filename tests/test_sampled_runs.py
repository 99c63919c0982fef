"""`specdyn run` at temperature > 0 on tiny models: the manifest records the sampling setting, records do not
depend on the batch size or on a kill -9 and resume, resume refuses another setting, and the budget's
acceptance vector (reached nodes' acceptance) estimates Sequoia's vector at temperature > 0. Then budget and
compare on sampled runs, and the temperature sweep script end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from specdyn.budget.acceptance import acceptance_vectors
from specdyn.budget.compare import compare_runs
from specdyn.cli import main
from specdyn.defaults import DEFAULT_TREE
from specdyn.rundir.reader import load_run, read_records
from test_budget import make_run, synthetic_costs
from test_study import assert_same_records, kill_mid_run, pair, run_args, suite, tables  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parents[1]
SRC, SWEEP = ROOT / "src", ROOT / "benchmarks" / "temperature_sweep.sh"

pytestmark = pytest.mark.usefixtures("one_thread")

SAMPLED = ("--temperature", "1.0", "--top-p", "0.95", "--children", "sampled", "--seed", "7")


@pytest.fixture(scope="module")
def sampled(pair, suite, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("sampled") / "run"
    assert main(run_args(pair, suite, out, "--batch-size", "1", *SAMPLED)) == 0
    return out


def test_manifest_records_the_sampling_setting(sampled):
    config = json.loads((sampled / "manifest.json").read_text())["config"]
    assert {k: config[k] for k in ("temperature", "top_p", "children", "seed")} == \
        {"temperature": 1.0, "top_p": 0.95, "children": "sampled", "seed": 7}
    assert load_run(sampled).manifest.config.sampling.temperature == 1.0


def test_sampled_records_differ_from_greedy_and_are_batch_free(sampled, pair, suite, tmp_path):  # noqa: F811
    greedy = tmp_path / "greedy"
    assert main(run_args(pair, suite, greedy, "--batch-size", "3")) == 0
    assert tables(greedy)["prompts"]["output_ids"].to_pylist() != tables(sampled)["prompts"]["output_ids"].to_pylist()
    batched = tmp_path / "batched"
    assert main(run_args(pair, suite, batched, "--batch-size", "3", *SAMPLED)) == 0
    assert_same_records(tables(sampled), tables(batched))


def test_sampled_resume_after_kill_9(sampled, pair, suite, tmp_path):  # noqa: F811
    out = tmp_path / "killed"
    kill_mid_run(run_args(pair, suite, out, "--batch-size", "1", *SAMPLED), out)
    assert main(run_args(pair, suite, out, "--batch-size", "1", *SAMPLED)) == 0
    assert_same_records(tables(sampled), tables(out))


@pytest.mark.parametrize("change, key", [(("--temperature", "0.7"), "temperature"), (("--top-p", "1"), "top_p"),
                                         (("--children", "topk"), "children"), (("--seed", "8"), "seed")])
def test_resume_refuses_another_sampling_setting(sampled, pair, suite, capsys, change, key):  # noqa: F811
    args = dict(zip(SAMPLED[::2], SAMPLED[1::2])) | dict([change])
    assert main(run_args(pair, suite, sampled, "--batch-size", "1", *[x for kv in args.items() for x in kv])) == 2
    assert f"different config ({key} differ)" in capsys.readouterr().err


# ------------------------------------------------------------------ budget's acceptance vector at T > 0


def _chance_accepted(nodes: dict) -> np.ndarray:
    """Per node, the probability that its parent position accepts it: its earlier siblings rejected, then
    itself accepted (prod (1 - verify_prob) over earlier siblings, times its own verify_prob)."""
    group = list(zip(nodes["prompt_id"], nodes["step"], nodes["parent"]))
    chance, survive, current = np.zeros(len(group)), 1.0, None
    for i in sorted(range(len(group)), key=lambda i: (group[i], nodes["rank"][i])):  # siblings in the order tried
        if group[i] != current:
            survive, current = 1.0, group[i]
        chance[i] = survive * nodes["verify_prob"][i]
        survive *= 1.0 - nodes["verify_prob"][i]
    return chance


def test_reached_nodes_estimate_sequoias_vector_at_temperature_above_zero(pair, suite, tmp_path):  # noqa: F811
    out = tmp_path / "wide"
    assert main(run_args(pair, suite, out, "--batch-size", "4", "--max-new-tokens", "96", "--temperature", "1.0",
                         "--children", "sampled", "--tree", "static:depth=2,branch=3")) == 0
    run = load_run(out)
    table = read_records(out, "nodes").to_pydict()
    assert table["prompt_id"] == [run.prompts.ids[i] for i in run.nodes.prompt]  # the same rows, same order
    nodes = {k: np.array(v) for k, v in table.items()}
    reached = run.nodes.parent_reached
    assert (run.nodes.accepted_path[reached] == run.nodes.accepted_local[reached]).all()
    chance = _chance_accepted(nodes)
    for name, vec in acceptance_vectors(run, min_observations=1).items():
        in_domain = reached & (run.node_domain() == run.domains.index(name))
        for k in range(3):
            sel = in_domain & (run.nodes.rank == k)
            z = (vec.accepted[k] - chance[sel].sum()) / np.sqrt((chance[sel] * (1 - chance[sel])).sum())
            assert vec.trials[k] == sel.sum() >= 150 and abs(z) < 4, (name, k, vec.trials[k], z)
            if k:  # a rank's chance once tried (verify_prob) is not its share of trials: the test tells them apart
                once_tried = nodes["verify_prob"][sel]
                assert (once_tried.sum() - vec.accepted[k]) / np.sqrt((once_tried * (1 - once_tried)).sum()) > 4


# ------------------------------------------------------------------ budget and compare on sampled runs


P = {"code": [0.7, 0.15]}
HOT = {"temperature": 0.7, "top_p": 0.9}


def advised_run(root, **settings):
    """A synthetic default-tree run on which `specdyn budget` has written its advice (RUN_DIR/budget)."""
    run = make_run(root, DEFAULT_TREE, P, **settings)
    synthetic_costs().save(run / "costs.json")
    assert main(["budget", str(run), "--max-nodes", "8", "--max-depth", "4", "--min-observations", "50"]) == 0
    return run


def test_budget_of_a_sampled_run_names_its_setting(tmp_path, capsys):
    run = advised_run(tmp_path / "hot", models=HOT | {"children": "sampled"})
    captured = capsys.readouterr()
    assert "the run sampled (T 0.7, top-p 0.9, sampled children)" in captured.err
    assert f"--tree paths:{run / 'budget' / 'code.json'} --temperature 0.7 --top-p 0.9 --children sampled" in captured.out
    doc = json.loads((run / "budget" / "budget.json").read_text())
    assert doc["sampling"] == {"temperature": 0.7, "top_p": 0.9, "children": "sampled", "seed": 0}
    advised_run(tmp_path / "greedy")
    captured = capsys.readouterr()
    assert "the run sampled" not in captured.err and "code.json --" not in captured.out


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A greedy default-tree run with budget advice, a hot default-tree run, and the recommended tree run hot."""
    base = tmp_path_factory.mktemp("sweep")
    greedy = advised_run(base / "greedy", step_seconds=0.05)
    hot = make_run(base / "hot", DEFAULT_TREE, P, step_seconds=0.06, seed=1, models=HOT)
    rec = make_run(base / "rec-hot", f"paths:{greedy / 'budget' / 'code.json'}", P, step_seconds=0.03, seed=2, models=HOT)
    return {"greedy": greedy, "hot": hot, "rec-hot": rec}


def test_compare_shows_the_setting_and_pairs_within_it(sweep, tmp_path, capsys):
    runs = [load_run(sweep[k]) for k in ("greedy", "rec-hot")]
    (code,) = compare_runs(runs, ["greedy", "rec-hot"])
    assert code.recommended_vs_default is None  # the only default-tree run is greedy: not comparable
    assert "with the same sampling setting" in code.verdict[1]
    (code,) = compare_runs(runs + [load_run(sweep["hot"])], ["greedy", "rec-hot", "hot"])
    assert (code.recommended_vs_default.a, code.recommended_vs_default.b) == ("rec-hot", "hot")
    assert code.verdict[0].startswith("Fastest on code: rec-hot (") and "T 0.7, top-p 0.9) at" in code.verdict[0]
    out = tmp_path / "cmp.json"
    assert main(["compare", *(str(sweep[k]) for k in ("greedy", "hot")), "--out", str(out)]) == 0
    md = capsys.readouterr().out
    assert "| sampling |" in md and "| greedy | default |" in md and "| T 0.7, top-p 0.9 | default |" in md
    entries = {Path(r["label"]).name: r for r in json.loads(out.read_text())["domains"][0]["runs"]}
    assert entries["hot"]["sampling"] == {"temperature": 0.7, "top_p": 0.9} and entries["hot"]["children"] == "topk"
    assert entries["greedy"]["sampling"] == {"temperature": 0.0, "top_p": 1.0}


def test_temperature_sweep_script(pair, suite, tmp_path):  # noqa: F811
    env = os.environ | {"SPECDYN": f"{sys.executable} -m specdyn.cli", "TEMPERATURES": "0 1.0", "CHILDREN": "sampled",
                        "OMP_NUM_THREADS": "1",
                        "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    args = [str(SWEEP), str(tmp_path / "sweep"), "--suite", suite, "--draft", pair["draft"], "--target", pair["target"],
            "--dtype", "float32", "--max-new-tokens", "6", "--quiet", "--no-report"]
    subprocess.run(args, env=env, check=True, capture_output=True)
    md = (tmp_path / "sweep" / "compare.md").read_text()
    for domain in ("translation", "poetry"):
        assert f"## {domain}" in md
    assert md.count("| greedy | default |") == 2 and md.count("| T 1, top-p 1, drawn children | default |") == 2
    manifest = json.loads((tmp_path / "sweep" / "T1.0" / "manifest.json").read_text())
    assert manifest["config"]["temperature"] == 1.0 and manifest["config"]["children"] == "sampled"
    assert json.loads((tmp_path / "sweep" / "compare.json").read_text())["domains"]
