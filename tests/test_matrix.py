"""The draft x domain matrix of `specdyn compare --matrix` on synthetic runs: α and the other cells from the
records (against the closed-form truth), calibrated paired changes under a known null, power under a
real difference, rows labelled by their adapter, and the command's markdown and JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from specdyn.adapter_spec import AdapterInfo
from specdyn.budget.matrix import Metric, build_matrix
from specdyn.cli import main
from specdyn.config import RunConfig
from specdyn.rundir.manifest import RunManifest, RunStatus
from specdyn.rundir.reader import load_run, run_from_tables
from specdyn.specs import StaticTree
from synthetic import DomainSpec, SyntheticSpec, simulate
from test_budget import make_run

ADAPTER = AdapterInfo(Path("/adapters/code"), "ab" * 32, "d", "sha-d", "code")


def run_data(domains: list[DomainSpec], seed: int, adapter: AdapterInfo | None = None):
    spec = SyntheticSpec(domains=domains, seed=seed)
    nodes, steps, prompts = simulate(spec)
    config = RunConfig(tree=StaticTree(spec.depth, spec.branch), draft_adapter=adapter)
    return run_from_tables(RunManifest(RunStatus.COMPLETE, config), [prompts], [nodes], [steps])


def true_alpha(d: DomainSpec, later_rank_share: float = 0.5) -> float:
    """P(one of a position's two children is accepted), positions independent (concentration inf)."""
    f = [s + (1 - s) * later_rank_share for s in (1 / (1 + math.exp(-x)) for x in (d.easy_logit, d.hard_logit))]
    return d.easy_share * f[0] + (1 - d.easy_share) * f[1]


def test_cells_follow_the_records_and_the_truth():
    code, chat = DomainSpec("code", prompts=60, easy_share=0.7), DomainSpec("chat", prompts=60, easy_share=0.3)
    run = run_data([code, chat], seed=3)
    matrix = build_matrix([run], ["r"], resamples=400)
    for d in (code, chat):
        cell = matrix.rows[0].cells[d.name]
        a = cell.values[Metric.ALPHA]
        assert a.ci_low < true_alpha(d) < a.ci_high and a.ci_high - a.ci_low < 0.05, (d.name, a)
        prompts = run.prompts.domain == run.domains.index(d.name)
        steps = np.isin(run.steps.prompt, np.flatnonzero(prompts))
        assert cell.values[Metric.ACCEPTED].value == pytest.approx(run.steps.accepted[steps].mean())
        assert cell.values[Metric.SPEED].value == pytest.approx(run.prompts.output_tokens[prompts].sum() / run.prompts.seconds[prompts].sum())
        assert sorted(cell.alpha_by_depth) == [1, 2, 3] and cell.prompts == 60
    assert matrix.base == "base" and matrix.rows[0].cells["code"].change is None  # the base row has no change


def alpha_change(seed: int, **other_draft):
    """The α change of a second run over a base run, both on 25 prompts with prompt-level variation."""
    shape = {"prompts": 25, "min_steps": 8, "max_steps": 16, "concentration": 4.0}
    base = run_data([DomainSpec("code", **shape)], seed)
    other = run_data([DomainSpec("code", **shape, **other_draft)], seed + 10_000, ADAPTER)
    return build_matrix([base, other], ["base", "other"], resamples=400, seed=seed).rows[1].cells["code"].change[Metric.ALPHA]


def test_paired_change_is_calibrated_under_the_null():
    """Two runs of the same drafter quality: the 95% interval of the α change excludes 0 about 5% of the time."""
    changes = [alpha_change(seed) for seed in range(200)]
    false_positive = np.mean([c.ci_low > 0 or c.ci_high < 0 for c in changes])
    assert 0.01 <= false_positive <= 0.10, false_positive
    assert abs(np.mean([c.value for c in changes])) < 0.01


def test_paired_change_finds_a_better_draft():
    changes = [alpha_change(seed, hard_logit=0.5) for seed in range(40)]  # α about +0.10
    assert np.mean([c.ci_low > 0 for c in changes]) >= 0.9


def test_rows_are_labelled_by_their_draft():
    doms = [DomainSpec("code", prompts=10), DomainSpec("chat", prompts=10)]
    runs = [run_data(doms, 0, ADAPTER), run_data(doms, 1), run_data(doms, 2)]
    matrix = build_matrix(runs, ["a", "b", "c"], resamples=100)
    assert [r.label for r in matrix.rows] == ["distilled:code@" + "ab" * 6, "base (b)", "base (c)"]
    assert matrix.base == "base (b)" and matrix.rows[0].trained_on("code") and not matrix.rows[0].trained_on("chat")
    cell = matrix.rows[0].cells["chat"]
    assert cell.paired and cell.shared == 10 and set(cell.change) == set(Metric)
    assert matrix.rows[2].cells["code"].change is not None and matrix.rows[1].cells["code"].change is None


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    base = tmp_path_factory.mktemp("matrix")
    p = {"code": [0.7, 0.15], "chat": [0.35, 0.2]}
    better = {"code": [0.85, 0.1], "chat": [0.35, 0.2]}
    return [make_run(base / "base", "static:depth=3,branch=2", p, prompts=10, seed=1),
            make_run(base / "code", "static:depth=3,branch=2", better, prompts=10, seed=2, models={"draft_adapter": ADAPTER})]


def test_compare_matrix_command(folders, tmp_path, capsys):
    out = tmp_path / "m.json"
    assert main(["compare", *map(str, folders), "--matrix", "--out", str(out)]) == 0
    md = capsys.readouterr().out
    assert "## Draft × domain matrix" in md and "model+distilled:code@" in md and "\\*" in md
    assert "distilled:code@abababababab on code (its training domain): raised α" in md
    doc = json.loads(out.read_text())
    rows = {r["label"]: r for r in doc["matrix"]["rows"]}
    code = rows["distilled:code@abababababab"]
    assert code["drafter"]["draft_adapter"]["domain"] == "code" and code["cells"]["code"]["change"]["alpha"]["value"] > 0
    assert doc["matrix"]["base"] == "base" and rows["base"]["cells"]["chat"]["change"] is None
    assert {d["domain"] for d in doc["domains"]} == {"code", "chat"}  # the per-domain comparison is still there
    assert load_run(folders[1]).manifest.config.draft_adapter == ADAPTER
