"""`specdyn compare` on synthetic run folders: ranking, predictions from budget.json, honest verdicts."""

from __future__ import annotations

import json

import pytest

from specdyn.budget.compare import TreeRole, compare_runs
from specdyn.budget.sequoia import expected_accepted
from specdyn.cli import main
from specdyn.defaults import DEFAULT_TREE
from specdyn.rundir.reader import load_run
from specdyn.specs import parse_tree
from test_budget import make_run, synthetic_costs

P = {"code": [0.7, 0.15], "chat": [0.35, 0.2]}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A default-tree run with budget advice, then runs with code's recommended tree: fast and slow."""
    base = tmp_path_factory.mktemp("compare")
    default = make_run(base / "default", DEFAULT_TREE, P, step_seconds=0.05)
    synthetic_costs().save(default / "costs.json")
    assert main(["budget", str(default), "--max-nodes", "12", "--max-depth", "5", "--min-observations", "100"]) == 0
    tree = f"paths:{default / 'budget' / 'code.json'}"
    fast = make_run(base / "fast", tree, P, step_seconds=0.03, seed=1)
    slow = make_run(base / "slow", tree, P, step_seconds=0.09, seed=2)
    return {"default": default, "fast": fast, "slow": slow, "tree": tree}


def test_ranking_roles_and_predictions(runs):
    comps = {c.domain: c for c in compare_runs([load_run(runs[k]) for k in ("slow", "default", "fast")],
                                                ["slow", "default", "fast"])}
    code, chat = comps["code"], comps["chat"]
    assert [e.label for e in code.entries][0] == "fast" and [e.label for e in code.entries][-1] == "slow"
    assert all(a.stats.tokens_per_second >= b.stats.tokens_per_second for a, b in zip(code.entries, code.entries[1:]))
    roles = {e.label: e.role for e in code.entries}
    assert roles == {"fast": TreeRole.RECOMMENDED, "slow": TreeRole.RECOMMENDED, "default": TreeRole.DEFAULT}
    assert {e.label: e.role for e in chat.entries}["fast"] is TreeRole.RECOMMENDED_ELSEWHERE
    budget = json.loads((runs["default"] / "budget" / "budget.json").read_text())
    fast = next(e for e in code.entries if e.label == "fast")
    shape = parse_tree(runs["tree"]).shape
    assert fast.predicted_accepted == pytest.approx(expected_accepted(shape, budget["domains"]["code"]["acceptance"]["p"]))
    assert fast.predicted_accepted == pytest.approx(fast.stats.accepted_per_step, abs=0.15)  # simulated with that p
    assert fast.stats.nodes_per_step == shape.size and fast.stats.steps == 8 * 40


def test_verdicts_are_honest(runs):
    won = {c.domain: c for c in compare_runs([load_run(runs["default"]), load_run(runs["fast"])], ["default", "fast"])}
    assert won["code"].verdict[0].startswith("Fastest on code: fast")
    assert "BEAT the default" in won["code"].verdict[1] and won["code"].recommended_vs_default.low > 0
    assert won["code"].recommended_vs_default.paired and won["code"].recommended_vs_default.prompts == 8
    assert "No run here used the tree recommended for chat" in won["chat"].verdict[1]
    lost = {c.domain: c for c in compare_runs([load_run(runs["default"]), load_run(runs["slow"])], ["default", "slow"])}
    assert lost["code"].verdict[0].startswith("Fastest on code: default")
    assert "did NOT beat the default" in lost["code"].verdict[1] and lost["code"].recommended_vs_default.high < 0


def test_compare_command_outputs(runs, tmp_path, capsys):
    out = tmp_path / "cmp.json"
    assert main(["compare", str(runs["default"]), str(runs["fast"]), "--out", str(out)]) == 0
    md = capsys.readouterr().out
    assert "## code" in md and "| 1 | " + str(runs["fast"]) in md and "acc/step +bonus" in md
    doc = json.loads(out.read_text())
    code = next(d for d in doc["domains"] if d["domain"] == "code")
    top = code["runs"][0]
    assert top["label"] == str(runs["fast"]) and top["role"] == "recommended"
    assert top["accepted_per_step_with_bonus"] == pytest.approx(top["stats"]["accepted_per_step"] + 1)
    assert main(["compare", str(runs["default"]), "--out", str(tmp_path / "cmp.md")]) == 0
    assert (tmp_path / "cmp.md").read_text().startswith("# specdyn compare")
    assert main(["compare", str(tmp_path)]) == 2
    assert "not a specdyn run folder" in capsys.readouterr().err
