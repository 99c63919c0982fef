"""The input boundary: every bad input is one line `specdyn: error: ...`, exit code 2, before any model
weights load, and leaves nothing behind that blocks the corrected command."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from specdyn import models
from specdyn.cli import main
from specdyn.config import DecodeConfig
from specdyn.errors import SpecdynError
from specdyn.pipeline import encode_raw
from specdyn.suites import Prompt, write_suite
from test_budget import make_run, synthetic_costs
from tiny import save_tiny_pair, tiny_tokenizer


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return save_tiny_pair(tmp_path_factory.mktemp("models"))


@pytest.fixture
def no_weights(monkeypatch):
    """Fail the test if any model's weights (or tokenizer) are loaded."""
    def refuse(name, *args, **kwargs):
        raise AssertionError(f"model {name} was loaded")

    monkeypatch.setattr(models, "_from_pretrained", refuse)


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    prompts = [Prompt(id=f"{d}/0", domain=d, source="test", messages=[{"role": "user", "content": f"{d} words"}])
               for d in ("code", "chat")]
    path = tmp_path_factory.mktemp("suite") / "suite.jsonl"
    write_suite(prompts, path)
    return str(path)


def error_line(capsys, code: int) -> str:
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert lines[-1].startswith("specdyn: error: ") and "Traceback" not in err, err
    return lines[-1]


def decode(pair, *extra):
    return main(["decode", "hi", "--draft", pair["draft"], "--target", pair["target"], "--dtype", "float32", *extra])


def run_args(pair, suite, out, *extra):
    return ["run", "--suite", suite, "--out", str(out), "--draft", pair["draft"], "--target", pair["target"],
            "--dtype", "float32", "--max-new-tokens", "6", "--quiet", "--no-report", *extra]


# ------------------------------------------------------------------ sizes, drafters, limits: before any load


@pytest.mark.parametrize("extra, message", [
    (["--tree", "static:depth=100,branch=100"], "more than 1024 nodes"),
    (["--tree", "dynamic:nodes=99999999999999999999,depth=2,topk=2"], "needs nodes <= 1024"),
    (["--tree", "dynamic:nodes=8,depth=1000,topk=200"], "candidates per step"),
    (["--tree", "static:depth=3,depth=4,branch=2"], "key 'depth' is given twice"),
    (["--drafter", "lookup:ngram=2,ngram=3"], "key 'ngram' is given twice"),
    (["--drafter", "lookup", "--tree", "dynamic:nodes=4,depth=2,topk=2"], "not a dynamic one"),
    (["--drafter", "early-exit:layers=999"], "fewer layers than the target's 2"),
    (["--drafter", "early-exit:layers=2"], "fewer layers than the target's 2"),
    (["--max-new-tokens", "100000"], "exceed the model context of 512"),
    (["--max-new-tokens", "508", "--tree", "static:depth=4,branch=1"], "exceed the model context of 512"),
])
def test_decode_rejects_before_loading(pair, capsys, no_weights, extra, message):
    assert message in error_line(capsys, decode(pair, *extra))


def test_paths_file_problems(pair, capsys, no_weights, tmp_path):
    f = tmp_path / "paths.json"
    for content, message in ((b"[[0], [1], [0]]", "path [0] is listed twice"), (b"\xff\xfe[[0]]", "not UTF-8 text"),
                             (json.dumps([[0]] + [[0] * d for d in range(2, 1100)]).encode(), "at most 1024 nodes")):
        f.write_bytes(content)
        assert message in error_line(capsys, decode(pair, "--tree", f"paths:{f}"))


def test_budget_search_bounds(tmp_path, capsys):
    run = make_run(tmp_path / "run", "static:depth=2,branch=2", {"code": [0.7, 0.2]}, prompts=2, steps=5)
    assert "--max-nodes must be at most 1024" in error_line(capsys, main(["budget", str(run), "--max-nodes", "100000"]))
    assert "--max-depth must be at most 16" in error_line(capsys, main(["budget", str(run), "--max-depth", "500"]))


# ------------------------------------------------------------------ model paths


def test_model_paths_rule(tmp_path, monkeypatch, capsys, no_weights):
    monkeypatch.chdir(tmp_path)
    for name in ("./missing", "../missing", "~/no-such-specdyn-model", str(tmp_path / "missing"), "a/b/c"):
        assert f"no such model folder {name!r}" in error_line(capsys, main(["decode", "hi", "--target", name]))
    (tmp_path / "file").write_text("x")
    assert "is not a folder" in error_line(capsys, main(["decode", "hi", "--target", "./file"]))
    assert models.classify("Qwen/Qwen2.5-0.5B") is models.Source.HUB  # org/name, not on disk: a hub id
    (tmp_path / "Qwen" / "Qwen2.5-0.5B").mkdir(parents=True)
    assert models.classify("Qwen/Qwen2.5-0.5B") is models.Source.FOLDER  # on disk: the local folder wins
    assert models.resolve_name("Qwen/Qwen2.5-0.5B") == str(tmp_path / "Qwen" / "Qwen2.5-0.5B")


def test_run_records_resolved_model_paths_and_trees(pair, suite, tmp_path, monkeypatch):
    monkeypatch.chdir(os.path.dirname(pair["draft"]))
    trees = tmp_path / "trees"
    trees.mkdir()
    (trees / "code.json").write_text("[[0], [0, 0]]")
    out = tmp_path / "run"
    assert main(["run", "--suite", suite, "--out", str(out), "--draft", "./draft", "--target", "target", "--dtype",
                 "float32", "--max-new-tokens", "6", "--quiet", "--no-report", "--domain-trees", str(trees)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["draft"] == pair["draft"] and manifest["config"]["target"] == pair["target"]
    assert manifest["config"]["domain_trees"] == str(trees.resolve())
    assert manifest["trees"]["tree"] == {"spec": "static:depth=3,branch=2",
                                         "paths": [[0], [1], [0, 0], [0, 1], [1, 0], [1, 1]] + [[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)]}
    assert manifest["trees"]["domain_trees"] == {"code.json": {"spec": f"paths:{trees.resolve() / 'code.json'}",
                                                               "paths": [[0], [0, 0]]}}


# ------------------------------------------------------------------ run: nothing left that blocks the corrected command


def test_run_errors_leave_nothing_behind(pair, suite, tmp_path, capsys, no_weights):
    out = tmp_path / "run"
    for extra in (["--drafter", "early-exit:layers=999"], ["--max-new-tokens", "100000"],
                  ["--drafter", "lookup", "--tree", "dynamic:nodes=4,depth=2,topk=2"], ["--tree", "static:depth=0,branch=1"]):
        error_line(capsys, main(run_args(pair, suite, out, *extra)))
        assert not out.exists()
    f = tmp_path / "file.json"
    f.write_text("[[0]]")
    assert "is not a folder" in error_line(capsys, main(run_args(pair, suite, out, "--domain-trees", str(f))))
    assert "no such folder" in error_line(capsys, main(run_args(pair, suite, out, "--domain-trees", str(tmp_path / "no"))))
    assert not out.exists()


def test_a_failed_start_never_blocks_the_corrected_command(pair, suite, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    stale = {"status": "running", "config": {"tree": "static:depth=1,branch=1", "drafter": "early-exit:layers=999"}}
    (out / "manifest.json").write_text(json.dumps(stale))  # another config, no finished prompt
    assert main(run_args(pair, suite, out)) == 0
    assert "with no finished prompt; starting over" in capsys.readouterr().err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["config"]["drafter"] == "model"
    assert main(run_args(pair, suite, out, "--tree", "static:depth=1,branch=1")) == 2  # finished prompts: refused
    assert "different config (tree differ)" in capsys.readouterr().err
    shutil.rmtree(out / "prompts")
    (out / "manifest.json").write_bytes(b"\xff{broken")  # no finished prompt, unreadable manifest: replaced too
    assert main(run_args(pair, suite, out)) == 0


# ------------------------------------------------------------------ configs


def test_decode_config_ignores_run_only_keys(pair, tmp_path, capsys, no_weights):
    cfg = tmp_path / "run.toml"
    cfg.write_text('suite = "default"\nper_domain = 3\nmax_new_tokens = 100000\n')
    code = decode(pair, "--config", str(cfg))
    err = capsys.readouterr().err
    assert code == 2 and "note: " in err and "ignoring run-only setting(s) per_domain, suite" in err
    assert "exceed the model context" in err.strip().splitlines()[-1]  # the file's max_new_tokens was used
    cfg.write_text("no_such_key = 1\n")
    assert "unknown config key 'no_such_key'" in error_line(capsys, decode(pair, "--config", str(cfg)))
    cfg.write_bytes(b'tree = "static:depth=1,branch=1"\n# \xff\xfe\n')
    assert "is not UTF-8 text" in error_line(capsys, decode(pair, "--config", str(cfg)))


def test_config_objects_hold_specs():
    config = DecodeConfig(tree="static:branch=2,depth=2", drafter="lookup")
    assert config.to_json()["tree"] == "static:depth=2,branch=2" and config.to_json()["drafter"] == "lookup:ngram=3"
    assert config.tree.max_nodes == 6 and not config.drafter.uses_draft_model
    with pytest.raises(SpecdynError, match="not a dynamic one"):
        DecodeConfig(tree="dynamic:nodes=3,depth=2,topk=2", drafter="lookup")


# ------------------------------------------------------------------ output paths


@pytest.mark.parametrize("command", ["report", "budget", "compare", "run"])
def test_empty_out_is_rejected_alike(command, tmp_path, capsys):
    args = [command] + ([] if command == "run" else [str(tmp_path)]) + ["--out", ""]
    assert error_line(capsys, main(args)) == "specdyn: error: --out must not be empty (leave it out for the default)"


def test_budget_out_read_only(tmp_path, capsys):
    run = make_run(tmp_path / "run", "static:depth=2,branch=2", {"code": [0.7, 0.2]}, prompts=2, steps=60)
    synthetic_costs().save(run / "costs.json")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    if os.access(locked, os.W_OK):  # root ignores permission bits; sysfs refuses new files even to root
        locked = Path("/sys")
    try:
        line = error_line(capsys, main(["budget", str(run), "--out", str(locked), "--min-observations", "10"]))
    finally:
        (tmp_path / "locked").chmod(stat.S_IRWXU)
    assert line.startswith(f"specdyn: error: cannot write {locked}/") and "ermission denied" in line


def test_budget_out_under_a_file(tmp_path, capsys):
    run = make_run(tmp_path / "run", "static:depth=2,branch=2", {"code": [0.7, 0.2]}, prompts=2, steps=60)
    synthetic_costs().save(run / "costs.json")
    (tmp_path / "file").write_text("x")
    line = error_line(capsys, main(["budget", str(run), "--out", str(tmp_path / "file" / "x"), "--min-observations", "10"]))
    assert "cannot write budget folder" in line


def test_compare_the_same_run_twice(tmp_path, capsys, monkeypatch):
    run = make_run(tmp_path / "A", "static:depth=2,branch=2", {"code": [0.7, 0.2]}, prompts=2, steps=5)
    monkeypatch.chdir(tmp_path)
    assert "the same run folder is given twice (A and ./A)" in error_line(capsys, main(["compare", "A", "./A"]))
    assert "given twice" in error_line(capsys, main(["compare", str(run), "A/"]))


# ------------------------------------------------------------------ prompts


def test_prompt_that_tokenizes_to_nothing():
    from tokenizers import normalizers

    tok = tiny_tokenizer()  # a real tokenizer whose normalizer deletes "x"
    tok.backend_tokenizer.normalizer = normalizers.Replace("x", "")
    assert tok("xxx", add_special_tokens=False)["input_ids"] == []
    with pytest.raises(SpecdynError, match="the prompt tokenizes to zero tokens"):
        encode_raw(tok, "xxx")
