"""Sampling at the boundary: --temperature, --top-p, --children, --seed and decode --samples, parsed once
into the config (typed, canonical in to_json), bad values refused before any model loads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from specdyn.cli import main
from specdyn.config import DecodeConfig, RunConfig, load_toml
from specdyn.engine import GenerationResult
from specdyn.errors import SpecdynError
from specdyn.pipeline import in_order, sample_id
from specdyn.specs import Children, Sampling
from test_inputs import error_line, no_weights, suite  # noqa: F401  (fixtures)
from tiny import save_tiny_pair

SRC = Path(__file__).resolve().parents[1] / "src"

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return save_tiny_pair(tmp_path_factory.mktemp("models"))


def decode(pair, *extra, prompt="hello there"):
    return main(["decode", prompt, "--draft", pair["draft"], "--target", pair["target"], "--dtype", "float32",
                 "--max-new-tokens", "12", *extra])


def json_lines(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


# ------------------------------------------------------------------ config


def test_config_holds_the_sampling_setting_and_writes_it_canonically(tmp_path):
    config = DecodeConfig(temperature=1, top_p=0.9, children="sampled", seed=5)
    assert config.sampling == Sampling(1.0, 0.9) and config.children is Children.SAMPLED
    assert {k: config.to_json()[k] for k in ("temperature", "top_p", "children", "seed")} == \
        {"temperature": 1.0, "top_p": 0.9, "children": "sampled", "seed": 5}
    assert type(config.temperature) is float  # 1 and 1.0 are one setting, so one run identity
    assert DecodeConfig().sampling.greedy and DecodeConfig().children is Children.TOPK
    toml = tmp_path / "c.toml"
    toml.write_text('temperature = 1\ntop_p = 0.9\nchildren = "sampled"\nseed = 5\n')
    assert load_toml(toml, DecodeConfig) == config
    recorded = RunConfig.from_record(config.to_json(), None, "manifest")
    assert (recorded.sampling, recorded.children, recorded.seed) == (config.sampling, Children.SAMPLED, 5)
    old = {k: v for k, v in RunConfig().to_json().items() if k not in ("temperature", "top_p", "children")}
    assert RunConfig.from_record(old, None, "old manifest") == RunConfig()  # runs made before sampling: greedy


@pytest.mark.parametrize("toml, message", [
    ('temperature = "hot"', "temperature must be float"), ("temperature = nan", "temperature must be a finite"),
    ("temperature = -inf", "temperature must be a finite"), ("top_p = 0", "top-p must be in (0, 1]"),
    ("seed = 1.5", "seed must be int"), ('children = "random"', "--children must be topk or sampled"),
    ("temperature = true", "temperature must be float"),
])
def test_toml_sampling_errors(tmp_path, toml, message):
    (tmp_path / "c.toml").write_text(toml + "\n")
    with pytest.raises(SpecdynError, match=message.replace("(", r"\(").replace("]", r"\]")):
        load_toml(tmp_path / "c.toml")


def test_sampling_is_a_typed_spec_without_torch():
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from specdyn.specs import Sampling, Children; "
            "from specdyn.config import RunConfig; RunConfig(temperature=0.7, children='sampled'); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(SRC)], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False"]


# ------------------------------------------------------------------ bad input: one line, before any model loads


@pytest.mark.parametrize("extra, message", [
    (["--temperature", "-0.5"], "temperature must be a finite number >= 0"),
    (["--temperature", "nan"], "temperature must be a finite number >= 0"),
    (["--temperature", "inf"], "temperature must be a finite number >= 0"),
    (["--temperature", "1", "--top-p", "0"], "top-p must be in (0, 1]"),
    (["--temperature", "1", "--top-p", "1.01"], "top-p must be in (0, 1]"),
    (["--top-p", "nan"], "top-p must be in (0, 1]"),
    (["--samples", "0"], "--samples must be >= 1"),
    (["--samples", "-3"], "--samples must be >= 1"),
    (["--children", "beam"], "--children must be topk or sampled"),
    (["--children", "sampled"], "at temperature > 0"),
    (["--children", "sampled", "--temperature", "0.7", "--drafter", "lookup"], "the lookup:ngram=3 drafter has none"),
    (["--children", "sampled", "--temperature", "0.7", "--tree", "dynamic:nodes=4,depth=2,topk=2"],
     "not a dynamic one"),
])
def test_decode_rejects_bad_sampling_before_loading(pair, capsys, no_weights, extra, message):  # noqa: F811
    assert message in error_line(capsys, decode(pair, *extra))


@pytest.mark.parametrize("extra", [
    ["--temperature", "-1"], ["--top-p", "2"], ["--children", "sampled"],
    ["--children", "sampled", "--temperature", "1", "--drafter", "lookup"],
])
def test_run_rejects_bad_sampling_and_leaves_nothing(pair, suite, tmp_path, capsys, no_weights, extra):  # noqa: F811
    out = tmp_path / "run"
    error_line(capsys, main(["run", "--suite", suite, "--out", str(out), "--draft", pair["draft"], "--target",
                             pair["target"], "--quiet", "--no-report", *extra]))
    assert not out.exists()


# ------------------------------------------------------------------ decode --samples


def test_in_order_yields_each_result_once_its_predecessors_are_out():
    finished = [GenerationResult(sample_id(i), []) for i in (2, 0, 3, 1, 4)]
    seen = []

    def track():
        for r in finished:
            seen.append(r.prompt_id)
            yield r

    out = []
    for r in in_order(track(), map(sample_id, range(5))):
        out.append((r.prompt_id, len(seen)))
    assert out == [("sample-0", 2), ("sample-1", 4), ("sample-2", 4), ("sample-3", 4), ("sample-4", 5)]


def test_samples_are_independent_reproducible_and_batch_free(pair, capsys):
    assert decode(pair, "--temperature", "1.0", "--samples", "5", "--json") == 0
    five = json_lines(capsys)
    assert [s["sample"] for s in five] == [0, 1, 2, 3, 4]
    for s in five:
        assert set(s) >= {"text", "prompt_tokens", "tokens", "steps", "accepted", "mean_accepted_per_step",
                          "tokens_per_second", "seconds"}
        assert len(s["accepted"]) == s["steps"] and 1 <= len(s["tokens"]) <= 12
    assert len({tuple(s["tokens"]) for s in five}) == 5  # 12 tokens from ~260: collisions are practically impossible
    assert decode(pair, "--temperature", "1.0", "--samples", "5", "--json") == 0
    assert [s["tokens"] for s in json_lines(capsys)] == [s["tokens"] for s in five]  # same seed: same samples
    assert decode(pair, "--temperature", "1.0", "--json") == 0
    assert json_lines(capsys)[0]["tokens"] == five[0]["tokens"]  # sample 0 alone = sample 0 of five
    assert decode(pair, "--temperature", "1.0", "--samples", "2", "--json", "--seed", "1") == 0
    assert [s["tokens"] for s in json_lines(capsys)] != [s["tokens"] for s in five[:2]]


def test_greedy_samples_are_identical_and_say_so(pair, capsys):
    assert decode(pair, "--samples", "3", "--json") == 0
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert len(lines) == 3 and lines[0]["tokens"] == lines[1]["tokens"] == lines[2]["tokens"]
    assert "temperature 0 is greedy decoding: the 3 samples will be identical" in captured.err
    assert decode(pair, "--json") == 0
    assert json_lines(capsys)[0]["tokens"] == lines[0]["tokens"]


def test_text_output_separates_samples(pair, capsys):
    assert decode(pair, "--temperature", "0.8", "--top-p", "0.9", "--samples", "2") == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("--- sample 0 ---\n") and "\n--- sample 1 ---\n" in captured.out
    assert "[sample 0: " in captured.err and "[sample 1: " in captured.err
    assert decode(pair, "--temperature", "0.8") == 0
    captured = capsys.readouterr()
    assert "--- sample" not in captured.out and "[sample" not in captured.err


@pytest.mark.parametrize("drafter", ["model", "early-exit:layers=1"])
def test_sampled_children_decode(pair, capsys, drafter):
    assert decode(pair, "--temperature", "1.2", "--children", "sampled", "--drafter", drafter, "--samples", "2",
                  "--json", "--tree", "static:depth=2,branch=3") == 0
    a, b = json_lines(capsys)
    assert a["tokens"] != b["tokens"] and all(0 <= x <= 2 for x in a["accepted"] + b["accepted"])


def test_help_readme_and_docs_agree_on_the_sampling_options(capsys):
    root = SRC.parent
    readme, run_doc = (root / "README.md").read_text(), (root / "docs" / "run.md").read_text()
    for command, flags in (("decode", ["--temperature", "--top-p", "--children", "--seed", "--samples"]),
                           ("run", ["--temperature", "--top-p", "--children", "--seed"])):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        help_text = capsys.readouterr().out
        for flag in flags:
            assert flag in help_text and flag in readme and flag in run_doc, (command, flag)
    for key in ("temperature", "top_p", "children", "seed"):
        assert f"`{key}`" in readme and f"\n{key} = " in run_doc, key
    assert "draws the default suite" in run_doc and "draws the default suite" in readme
