"""`specdyn budget RUN_DIR...`: the drafter chosen per domain together with the tree, across runs of the base
draft, a distilled draft, prompt lookup and an early exit (synthetic runs written through the writer)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from specdyn.adapter_spec import AdapterInfo
from specdyn.budget.acceptance import domain_acceptance, pooled_vector
from specdyn.budget.choice import Search, choose
from specdyn.budget.plan import plan_domain
from specdyn.cli import main
from specdyn.rundir.reader import load_run
from test_budget import make_run, synthetic_costs

ADAPTER = AdapterInfo(Path("/adapters/code"), "cd" * 32, "d", "sha-d", "code")
TREE = "static:depth=3,branch=2"
SEARCH = Search(max_nodes=8, max_depth=4, min_observations=50, batch=1)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The base draft; a draft distilled on code (better on code, a little worse on chat); prompt lookup on a
    one-node tree (free drafting, good on chat); an early exit (no cost model)."""
    root = tmp_path_factory.mktemp("drafters")
    folders = {
        "base": make_run(root / "base", TREE, {"code": [0.6, 0.2], "chat": [0.5, 0.2]}, seed=1),
        "distilled": make_run(root / "distilled", TREE, {"code": [0.85, 0.1], "chat": [0.45, 0.2]}, seed=2,
                              models={"draft_adapter": ADAPTER}),
        "lookup": make_run(root / "lookup", "static:depth=1,branch=1", {"code": [0.6], "chat": [0.6]}, seed=3,
                           models={"drafter": "lookup"}),
        "early": make_run(root / "early", TREE, {"code": [0.9, 0.05], "chat": [0.9, 0.05]}, seed=4,
                          models={"drafter": "early-exit:layers=1"}),
    }
    synthetic_costs(batches=(1,)).save(folders["base"] / "costs.json")
    return folders


def test_each_domain_gets_the_fastest_predicted_drafter(runs):
    labels = ["base", "distilled", "lookup", "early"]
    costs = synthetic_costs(batches=(1,))
    choices = {c.domain: c for c in choose([load_run(runs[k]) for k in labels], labels, costs, SEARCH)}
    assert [o.drafter.label for o in choices["code"].options][0].startswith("distilled:code@")
    assert choices["chat"].best.drafter.label == "lookup:ngram=3"
    for c in choices.values():
        speeds = [o.best.tokens_per_second for o in c.options]
        assert speeds == sorted(speeds, reverse=True) and len(c.options) == 3
        assert c.left_out == ["early: the cost model cannot price the early-exit drafter yet"]
    base = next(o for o in choices["code"].options if o.run == "base")  # the Sequoia plan of that run's own vector
    vector = domain_acceptance(load_run(runs["base"]), "code", SEARCH.min_observations)
    assert base.best == plan_domain(vector, costs, 8, 4, 1).best
    lookup = next(o for o in choices["code"].options if o.run == "lookup")
    m = lookup.measured  # free drafting: only the target pass over the measured nodes is priced
    assert lookup.best.tokens_per_second == pytest.approx((1 + m.accepted_per_step) / costs.target_seconds(m.nodes_per_step + 1, 1))


def test_budget_command_over_several_runs(runs, tmp_path, capsys):
    out = tmp_path / "budget"
    args = ["budget", *(str(runs[k]) for k in ("base", "distilled", "lookup", "early")), "--out", str(out),
            "--max-nodes", "8", "--max-depth", "4", "--min-observations", "50"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "code: drafter choice over 3 run(s)" in text and "left out:" in text and "picks use different drafters" in text
    doc = json.loads((out / "budget.json").read_text())
    code, chat = doc["domains"]["code"], doc["domains"]["chat"]
    assert code["drafter"]["draft_adapter"]["adapter_id"] == ADAPTER.adapter_id and code["command"].endswith(" --draft-adapter /adapters/code")
    assert "--drafter" not in code["command"]
    assert code["acceptance"]["p"] and len(code["options"]) == 3 and code["options"][0]["priced_by"] == "sequoia"
    assert chat["drafter"]["drafter"] == "lookup:ngram=3" and chat["acceptance"] is None and "--drafter lookup:ngram=3" in chat["command"]
    assert json.loads((out / "chat.json").read_text()) == [[0]] and doc["runs"][0] == str(runs["base"].resolve())


def test_one_run_keeps_its_single_drafter_output(runs, tmp_path, capsys):
    assert main(["budget", str(runs["base"]), "--out", str(tmp_path / "b"), "--min-observations", "50"]) == 0
    text = capsys.readouterr().out
    assert "drafter choice" not in text and "tree file: specdyn run --tree paths:" in text and "--drafter" not in text
    assert json.loads((tmp_path / "b" / "budget.json").read_text())["domains"]["code"]["drafter"]["label"] == "base"


def test_budget_refuses_what_it_cannot_compare(runs, tmp_path, capsys):
    other = make_run(tmp_path / "other", TREE, {"code": [0.6, 0.2]}, models={"target": "another"})
    cases = [([runs["base"], other], "different target models"),
             ([runs["base"], runs["base"]], "the same run folder is given twice"),
             ([runs["early"]], "cannot price the early-exit drafter yet")]
    for folders, message in cases:
        assert main(["budget", *map(str, folders), "--out", str(tmp_path / "x"), "--min-observations", "50"]) == 2
        err = capsys.readouterr().err
        assert message in err.strip().splitlines()[-1], (folders, err)


def test_domains_sharing_a_file_name_are_refused_before_writing(tmp_path, capsys):
    run = make_run(tmp_path / "r", TREE, {"a b": [0.6, 0.2], "a_b": [0.6, 0.2]})
    synthetic_costs(batches=(1,)).save(run / "costs.json")
    assert main(["budget", str(run), "--out", str(tmp_path / "out"), "--min-observations", "50", "--batch", "1"]) == 2
    assert "map to the same file name a_b.json" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_global_and_export_over_several_runs(runs, tmp_path, capsys):
    """--global pools the first run's domains for its drafter; --export writes the draft-model picks and the
    global tree, and says which pick it left out."""
    out = tmp_path / "budget"
    assert main(["budget", *(str(runs[k]) for k in ("base", "distilled", "lookup")), "--out", str(out), "--max-nodes", "8",
                 "--max-depth", "4", "--min-observations", "50", "--global", "--export", "vllm,sglang"]) == 0
    captured = capsys.readouterr()
    doc = json.loads((out / "budget.json").read_text())
    single = doc["global"]
    assert single["acceptance"]["trials"] == pooled_vector(load_run(runs["base"]), 50).trials
    assert single["drafter"]["label"] == "base" and single["command"] == f"specdyn run --tree paths:{out / 'global.json'}"
    assert json.loads((out / "global.json").read_text()) == single["recommended"]["paths"]
    assert "all domains: p by rank" in captured.out and f"tree file: specdyn run --tree paths:{out / 'global.json'}" in captured.out
    for engine in ("vllm", "sglang"):  # chat's pick is prompt lookup: not a draft-model tree
        assert sorted(p.name for p in (out / engine).iterdir()) == ["code.json", "global.json"]
    assert "--export: chat: the pick drafts with lookup:ngram=3, not a draft model" in captured.err
    vllm = json.loads((out / "vllm" / "code.json").read_text())
    assert ast.literal_eval(vllm["speculative_token_tree"]) == [tuple(p) for p in doc["domains"]["code"]["recommended"]["paths"]]


def test_global_needs_a_searchable_first_run(runs, tmp_path, capsys):
    out = tmp_path / "budget"
    assert main(["budget", str(runs["lookup"]), str(runs["base"]), "--global", "--measure", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("specdyn: error: --global pools the first run's domains") and len(err.splitlines()) == 1
    assert "lookup drafter; list a run of the model drafter first" in err and not out.exists()
