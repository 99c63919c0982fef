"""Bad input to `specdyn decode` gets one clear line on stderr and exit code 2; good input works."""

from __future__ import annotations

import json

import pytest

from specdyn.cli import main
from tiny import save_tiny_pair


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return save_tiny_pair(tmp_path_factory.mktemp("models"))


def decode(pair, prompt, *extra):
    return main(["decode", prompt, "--draft", pair["draft"], "--target", pair["target"], "--dtype", "float32", *extra])


def error_of(capsys, code):
    err = capsys.readouterr().err
    assert code == 2, err
    last = err.strip().splitlines()[-1]  # earlier lines may be model-loading progress bars
    assert last.startswith("specdyn: error: ") and "Traceback" not in err
    return last


@pytest.mark.parametrize(
    "tree, message",
    [
        ("static:depth=0,branch=2", "depth >= 1"),
        ("static:depth=3,branch=0", "branch >= 1"),
        ("static:depth=3", "expected exactly"),
        ("static:depth=x,branch=2", "key=integer"),
        ("paths:/no/such/file.json", "cannot read tree paths file"),
        ("dynamic:nodes=0,depth=2,topk=2", ">= 1"),
        ("banana", "malformed --tree"),
    ],
)
def test_malformed_tree(pair, capsys, tree, message):
    assert message in error_of(capsys, decode(pair, "hi", "--tree", tree))


@pytest.mark.parametrize(
    "content, message",
    [("not json", "not valid JSON"), ("[]", "non-empty JSON list"), ("[[0], [1, 0]]", "prefix [1]"), ("[[0, -1]]", "ranks in [0, 255)")],
)
def test_invalid_paths_file(pair, capsys, tmp_path, content, message):
    f = tmp_path / "paths.json"
    f.write_text(content)
    assert message in error_of(capsys, decode(pair, "hi", "--tree", f"paths:{f}"))


def test_other_bad_inputs(pair, capsys):
    assert "empty prompt" in error_of(capsys, decode(pair, "   "))
    assert "unknown drafter" in error_of(capsys, decode(pair, "hi", "--drafter", "medusa"))
    assert "max_new_tokens must be >= 1" in error_of(capsys, decode(pair, "hi", "--max-new-tokens", "0"))
    assert "exceeds the model context of 512" in error_of(capsys, decode(pair, "word " * 200))
    assert "unknown model" in error_of(capsys, main(["decode", "hi", "--target", "no-such-model"]))


def test_decode_json_and_paths_tree(pair, capsys, tmp_path):
    f = tmp_path / "paths.json"
    f.write_text("[[0], [1], [0, 0], [0, 0, 0]]")
    assert decode(pair, "hello there", "--tree", f"paths:{f}", "--max-new-tokens", "10", "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["tokens"]) <= 10 and len(out["accepted"]) == out["steps"] >= 1
    assert all(0 <= a <= 3 for a in out["accepted"])
    assert out["prompt_tokens"][-1] == 258  # the chat template's assistant marker comes last
    assert out["dtype"] == "float32" and out["drafter"] == "model" and out["tree"] == f"paths:{f}"
