"""The run folder's one reader is strict for every command: it names a bad shard, refuses shards that
disagree with each other or with the manifest, parses hand-edited manifests into one-line errors, and
says when a run is still in progress; the writer and the typed manifest round-trip."""

from __future__ import annotations

import json
import shutil

import numpy as np

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from specdyn.cli import main
from specdyn.config import RunConfig
from specdyn.errors import SpecdynError
from specdyn.execution import Session
from specdyn.rundir.manifest import Counts, ModelRecord, RunManifest, RunStatus, parse_manifest
from specdyn.rundir.reader import load_prompt_tokens, load_run, read_suite
from specdyn.specs import PathsTree
from synthetic import DomainSpec, SyntheticSpec, write_run
from test_budget import make_run, synthetic_costs

COMMANDS = (["report", "--bootstrap", "50"], ["budget", "--min-observations", "5"], ["compare"],
            ["distill", "--domain", "code", "--min-prompts", "3", "--out", "never-written"])


@pytest.fixture
def run_dir(tmp_path):
    spec = SyntheticSpec(domains=[DomainSpec("code", prompts=6, min_steps=3, max_steps=6),
                                  DomainSpec("chat", prompts=6, min_steps=3, max_steps=6)], prompts_per_shard=4, seed=4)
    root = write_run(spec, tmp_path / "run")
    synthetic_costs(batches=(1, 4)).save(root / "costs.json")
    return root


def refused_by_every_command(run_dir, capsys, message: str) -> None:
    """`report`, `budget` and `compare` all refuse the folder with the same one-line reason."""
    for command in COMMANDS:
        code = main([command[0], str(run_dir), *command[1:]])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and err[0].startswith("specdyn: error: "), (command, err)
        assert message in err[0], (command, err[0])


def test_written_run_reads_back(run_dir):
    run = load_run(run_dir)
    assert run.status is RunStatus.COMPLETE and run.domains == ["code", "chat"] and run.notes == []
    assert run.manifest.counts == Counts(12, len(run.steps.prompt), len(run.nodes.prompt))
    assert run.manifest.config.tree.text == "static:depth=3,branch=2"
    assert (run.prompts.output_tokens == 2).all() and run.prompts.steps.sum() == len(run.steps.prompt)
    assert run.nodes.parent_reached[run.nodes.parent < 0].all()


def test_missing_nodes_shard(run_dir, capsys):
    (run_dir / "nodes" / "shard-000001.parquet").unlink()
    refused_by_every_command(run_dir, capsys, "nodes/shard-000001.parquet is missing although prompts/shard-000001.parquet")


def test_rows_of_another_shard(run_dir, capsys):
    a, b = run_dir / "steps" / "shard-000000.parquet", run_dir / "steps" / "shard-000001.parquet"
    tmp = a.with_name("swap")
    a.rename(tmp), b.rename(a), tmp.rename(b)
    refused_by_every_command(run_dir, capsys, "steps/shard-000000.parquet holds 43 row(s) of prompts missing from")


def test_counts_disagree_with_the_manifest(run_dir, capsys):
    for table in ("nodes", "steps", "prompts"):
        (run_dir / table / "shard-000002.parquet").unlink()  # a whole shard gone from a complete run
    refused_by_every_command(run_dir, capsys, "the manifest of this complete run counts")


def test_prompt_listed_twice(run_dir, capsys):
    for table in ("nodes", "steps", "prompts"):
        shutil.copy(run_dir / table / "shard-000000.parquet", run_dir / table / "shard-000007.parquet")
    refused_by_every_command(run_dir, capsys, "is listed twice (prompts/shard-000000.parquet and prompts/shard-000007.parquet)")


def test_step_rows_disagree_with_the_prompt_row(run_dir, capsys):
    shard = run_dir / "steps" / "shard-000001.parquet"
    pq.write_table(pq.read_table(shard).slice(1), shard)
    refused_by_every_command(run_dir, capsys, "and its step rows disagree")


def test_missing_parent(run_dir, capsys):
    shard = run_dir / "nodes" / "shard-000000.parquet"
    table = pq.read_table(shard)
    parents = table.column("parent").to_pylist()
    parents[5] = 99  # no node 99 in any step
    column = pa.array(parents, table.schema.field("parent").type)
    pq.write_table(table.set_column(table.schema.get_field_index("parent"), "parent", column), shard)
    refused_by_every_command(run_dir, capsys, "nodes/shard-000000.parquet: 1 node(s) name a parent absent from their step")


def test_in_progress_is_said_by_every_command(run_dir, capsys):
    manifest = json.loads((run_dir / "manifest.json").read_text())
    (run_dir / "manifest.json").write_text(json.dumps({**manifest, "status": "running", "counts": None}))
    (run_dir / "prompts" / "shard-000002.parquet").unlink()  # its nodes/steps shards are an unfinished flush
    assert main(["budget", str(run_dir), "--min-observations", "5", "--out", str(run_dir / "b")]) == 0
    err = capsys.readouterr().err
    assert "note: " in err and "still in progress" in err and "only the 8 prompts finished so far" in err
    assert "Ignored nodes/ shard(s) 2" in err
    assert main(["compare", str(run_dir)]) == 0
    assert "still in progress" in capsys.readouterr().err
    assert len(load_prompt_tokens(run_dir).prompts) == 8 and "still in progress" in load_prompt_tokens(run_dir).run.notes[0]


def test_prompt_tokens_of_finished_prompts(run_dir):
    tokens = load_prompt_tokens(run_dir)
    assert [p.prompt_id for p in tokens.prompts] == tokens.run.prompts.ids
    assert {p.domain for p in tokens.prompts} == {"code", "chat"}
    assert all(p.prompt_ids == (1, 2, 3) and p.output_ids == (4, 5) for p in tokens.prompts)
    shard = run_dir / "prompts" / "shard-000001.parquet"
    table = pq.read_table(shard)
    column = pa.array([None] * table.num_rows, table.schema.field("prompt_ids").type)
    pq.write_table(table.set_column(table.schema.get_field_index("prompt_ids"), "prompt_ids", column), shard)
    with pytest.raises(SpecdynError, match="missing \\(null\\) values in prompt_ids"):
        load_prompt_tokens(run_dir)


@pytest.mark.parametrize("edit, message", [
    (lambda m: {**m, "config": ["not", "an", "object"]}, "config must be a JSON object, got list"),
    (lambda m: {**m, "config": {**m["config"], "tree": 5}}, "tree must be str, got 5"),
    (lambda m: {**m, "config": {**m["config"], "batch_size": "4"}}, "batch_size must be int, got '4'"),
    (lambda m: {**m, "status": "done"}, "status must be one of running, complete (got 'done')"),
    (lambda m: {**m, "counts": {"prompts": "12"}}, "counts must hold integer prompts, steps and nodes"),
    (lambda m: {**m, "trees": {"tree": {"spec": "paths:/x.json", "paths": [[0], [0]]}}}, "path [0] is listed twice"),
    (lambda m: {**m, "models": {"draft": "d"}}, "models.draft: expected"),
    (lambda m: [m], "must hold a JSON object"),
    (lambda m: {**m, "sessions": {"backend": "ray"}}, "sessions must be list or null"),
    (lambda m: {**m, "sessions": [{"backend": "ray", "workers": "2"}]}, "sessions[0]: unexpected workers = '2'"),
    (lambda m: {**m, "sessions": [{"backend": "ray"}]}, "sessions[0]: lacks workers, threads_per_worker"),
])
def test_hand_edited_manifest(run_dir, capsys, edit, message):
    manifest = json.loads((run_dir / "manifest.json").read_text())
    (run_dir / "manifest.json").write_text(json.dumps(edit(manifest)))
    refused_by_every_command(run_dir, capsys, message)


def test_manifest_that_is_not_utf8(run_dir, capsys):
    (run_dir / "manifest.json").write_bytes(b'{"status": "complete", "note": "\xff\xfe"}')
    refused_by_every_command(run_dir, capsys, "manifest.json is not UTF-8 text")


def test_manifest_round_trip_and_recorded_trees(tmp_path):
    (tmp_path / "code.json").write_text("[[0], [1], [0, 0]]")
    config = RunConfig(tree=f"paths:{tmp_path / 'code.json'}", drafter="lookup", draft="d", target="t")
    session = Session("ray", 2, 1, 0.5, "auto", "then", ["node-a"], 3, 1, 2)
    manifest = RunManifest(RunStatus.RUNNING, config, "abc", {"target": ModelRecord("t", "sha")}, "then", None,
                           Counts(1, 2, 3), {"cpus": 2}, {"torch": "x"}, [session])
    data = json.dumps(manifest.to_json()).encode()
    (tmp_path / "code.json").write_text("[[0]]")  # the file changed after the run: the manifest's record wins
    again = parse_manifest(data, tmp_path / "manifest.json")
    assert again == manifest and again.config.tree.shape.paths == ((0,), (1,), (0, 0))
    (tmp_path / "code.json").unlink()
    assert parse_manifest(data, tmp_path / "manifest.json").config.tree == manifest.config.tree


def test_budget_and_compare_use_the_recorded_tree(tmp_path, capsys):
    trees = tmp_path / "trees"
    trees.mkdir()
    (trees / "code.json").write_text("[[0], [0, 0]]")
    run = make_run(tmp_path / "run", f"paths:{trees / 'code.json'}", {"code": [0.7, 0.2]}, prompts=3, steps=40)
    shutil.rmtree(trees)  # the paths file vanished after the run
    tree = load_run(run).manifest.config.tree_for("code")
    assert isinstance(tree, PathsTree) and tree.shape.paths == ((0,), (0, 0))
    synthetic_costs().save(run / "costs.json")
    assert main(["budget", str(run), "--min-observations", "10", "--max-nodes", "4"]) == 0
    assert "own tree paths:" in capsys.readouterr().out  # priced from the recorded shape
    assert main(["compare", str(run)]) == 0


def test_not_a_run(tmp_path):
    with pytest.raises(SpecdynError, match="no such directory"):
        load_run(tmp_path / "none")
    with pytest.raises(SpecdynError, match="not a specdyn run folder"):
        load_run(tmp_path)


# ---------------------------------------------------------------- optional record fields


def _rewrite(run_dir, table: str, shard: int, change) -> None:
    path = run_dir / table / f"shard-{shard:06d}.parquet"
    pq.write_table(change(pq.read_table(path)), path)


def _set(column: str, values):
    def change(table):
        index = table.schema.get_field_index(column)
        if index < 0:
            return table.append_column(column, values(table.num_rows))
        return table.set_column(index, column, values(table.num_rows))
    return change


def test_optional_fields_absent_null_or_partial(run_dir):
    full = load_run(run_dir)
    assert full.nodes.verify_prob is not None and full.nodes.draft_prob is not None
    for shard in range(3):  # as recorded before the field existed: no column at all
        _rewrite(run_dir, "nodes", shard, lambda t: t.drop_columns(["verify_prob"]))
        _rewrite(run_dir, "steps", shard, lambda t: t.drop_columns([c for c in ["output_pos"] if c in t.column_names]))
    _rewrite(run_dir, "steps", 0, _set("output_pos", lambda n: pa.array(range(n), pa.int32())))  # one shard
    run = load_run(run_dir)
    assert run.nodes.verify_prob is None and run.steps.output_pos is None
    assert "verify_prob" in run.missing_fields and "output_pos" in run.missing_fields
    assert any("`output_pos` is recorded in some shards only" in n for n in run.notes)
    for shard in range(3):  # null throughout: not recorded
        _rewrite(run_dir, "nodes", shard, _set("draft_target_tv", lambda n: pa.nulls(n, pa.float32())))
    assert load_run(run_dir).nodes.draft_target_tv is None


def test_optional_fields_are_checked_when_present(run_dir):
    for shard in range(3):
        _rewrite(run_dir, "steps", shard, _set("output_pos", lambda n: pa.array([0] * n, pa.int32())))
        _rewrite(run_dir, "nodes", shard, _set("draft_target_tv",
                                               lambda n: pa.array([float("nan")] * n, pa.float32())))
    run = load_run(run_dir)  # NaN TV: a drafter without a distribution
    assert (run.steps.output_pos == 0).all() and np.isnan(run.nodes.draft_target_tv).all()
    _rewrite(run_dir, "nodes", 1, _set("draft_target_tv", lambda n: pa.array([None] + [0.5] * (n - 1), pa.float32())))
    with pytest.raises(SpecdynError, match="missing \\(null\\) values in draft_target_tv"):
        load_run(run_dir)
    _rewrite(run_dir, "nodes", 1, _set("draft_target_tv", lambda n: pa.array([1.5] * n, pa.float32())))
    with pytest.raises(SpecdynError, match="draft_target_tv outside \\[0, 1\\]"):
        load_run(run_dir)
    _rewrite(run_dir, "nodes", 1, _set("draft_target_tv", lambda n: pa.array([0.5] * n, pa.float32())))
    _rewrite(run_dir, "steps", 2, _set("output_pos", lambda n: pa.array([-1] * n, pa.int32())))
    with pytest.raises(SpecdynError, match="negative step `output_pos`"):
        load_run(run_dir)


def test_read_suite(run_dir):
    assert read_suite(run_dir) is None
    (run_dir / "suite.jsonl").write_text(json.dumps({"id": "a", "domain": "chat", "source": "s",
                                                     "messages": [{"role": "user", "content": "hi"}],
                                                     "metadata": {"category": "writing"}}) + "\n")
    assert read_suite(run_dir)[0].metadata == {"category": "writing"}
    (run_dir / "suite.jsonl").write_text("[]\n")
    with pytest.raises(SpecdynError, match="suite.jsonl line 1"):
        read_suite(run_dir)
