"""`specdyn suite filter`: domains, held-out prompts of distilled drafts (source items), counts, errors."""

from __future__ import annotations

import json

import pytest

from specdyn.cli import main
from specdyn.errors import SpecdynError
from specdyn.suites import Prompt, load_suite, write_suite
from specdyn.suites.filter import filter_suite, source_item


def prompt(pid: str) -> Prompt:
    return Prompt(pid, pid.split("/")[0], "test", [{"role": "user", "content": f"about {pid}"}])


SUITE = [prompt(i) for i in ("code/HumanEval-1", "code/HumanEval-2", "math/gsm_symbolic-7-seed1",
                             "math/gsm_symbolic-8-seed1", "chat/mt_bench-81", "chat/mt_bench-82")]


def test_source_item_drops_only_the_draw_seed():
    assert source_item("math/gsm_symbolic-12-seed0") == source_item("math/gsm_symbolic-12-seed1") == "math/gsm_symbolic-12"
    assert source_item("code/HumanEval-12") == "code/HumanEval-12" and source_item("x/seed-3a") == "x/seed-3a"


def test_filter_by_domain_and_training_items():
    trained = {"code/HumanEval-1", "math/gsm_symbolic-7-seed0", "chat/mt_bench-81", "chat/mt_bench-99"}
    result = filter_suite(SUITE, None, trained)
    assert [p.id for p in result.prompts] == ["code/HumanEval-2", "math/gsm_symbolic-8-seed1", "chat/mt_bench-82"]
    assert [(c.domain, c.total, c.trained, c.kept) for c in result.counts] == [("code", 2, 1, 1), ("math", 2, 1, 1), ("chat", 2, 1, 1)]
    only = filter_suite(SUITE, ["chat", "code"])
    assert [p.domain for p in only.prompts] == ["code", "code", "chat", "chat"] and [c.domain for c in only.counts] == ["code", "chat"]
    with pytest.raises(SpecdynError, match="no domain 'logic'; it has: code, math, chat"):
        filter_suite(SUITE, ["logic"])
    with pytest.raises(SpecdynError, match="no prompt is left"):
        filter_suite(SUITE, ["code"], {"code/HumanEval-1", "code/HumanEval-2"})


def test_filter_command(tmp_path, capsys):
    suite, out, adapter = tmp_path / "s.jsonl", tmp_path / "o.jsonl", tmp_path / "adapter"
    write_suite(SUITE, suite)
    adapter.mkdir()
    (adapter / "distill.json").write_text(json.dumps({"data": {"train_ids": ["code/HumanEval-2", "math/gsm_symbolic-8-seed0"]}}))
    args = ["suite", "filter", str(suite), "--out", str(out), "--exclude-trained", str(adapter), "--domain", "code", "--domain", "math"]
    assert main(args) == 0
    assert [p.id for p in load_suite(out)] == ["code/HumanEval-1", "math/gsm_symbolic-7-seed1"]
    assert "code: 1 of 2 kept (1 trained on)" in capsys.readouterr().err
    assert main(["suite", "filter", str(suite), "--out", str(out), "--exclude-trained", str(tmp_path)]) == 2
    assert "not a finished `specdyn distill` folder" in capsys.readouterr().err
