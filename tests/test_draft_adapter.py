"""`--draft-adapter` on tiny models: lossless decoding through the CLI with the adapter merged, its id in
the manifest and in decode --json, resume refusing another adapter, and every bad input refused before
any weights load."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from specdyn import models
from specdyn.adapter_spec import AdapterInfo, read_adapter
from specdyn.cli import main
from specdyn.config import DecodeConfig, RunConfig, load_toml
from specdyn.engine import target_greedy
from specdyn.engine.adaptive import AdaptiveProposer
from specdyn.errors import SpecdynError
from specdyn.models import load_model
from specdyn.pipeline import TextDecoder
from specdyn.rundir.reader import load_prompt_tokens, load_run
from specdyn.suites import Prompt, write_suite
from test_distill import WORDS, pair, run_dir, trained  # noqa: F401 (fixtures)

pytestmark = pytest.mark.usefixtures("one_thread")
MAX_NEW = 24


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    """Eight 'greek' prompts the training run never decoded."""
    prompts = [Prompt(id=f"greek/h{i}", domain="greek", source="test",
                      messages=[{"role": "user", "content": f"greek {WORDS[20 + i % 4]} {WORDS[(3 * i + 1) % 20]}"}])
               for i in range(8)]
    path = tmp_path_factory.mktemp("heldout") / "suite.jsonl"
    write_suite(prompts, path)
    return path


def run_args(pair, suite, out, *extra):
    return ["run", "--suite", str(suite), "--out", str(out), "--draft", pair["draft"], "--target", pair["target"],
            "--dtype", "float32", "--max-new-tokens", str(MAX_NEW), "--quiet", "--no-report", *extra]


@pytest.fixture(scope="module")
def adapted_run(pair, suite, trained, tmp_path_factory):
    out = tmp_path_factory.mktemp("adapted") / "run"
    assert main(run_args(pair, suite, out, "--draft-adapter", str(trained))) == 0
    return out


@pytest.fixture
def no_weights(monkeypatch):
    def refuse(name, *args, **kwargs):
        raise AssertionError(f"weights of {name} were loaded")

    monkeypatch.setattr(models, "_from_pretrained", refuse)


def error_line(capsys, code: int) -> str:
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


def test_run_with_adapter_is_lossless_and_records_it(adapted_run, trained, pair):
    info = read_adapter(trained)
    manifest = json.loads((adapted_run / "manifest.json").read_text())
    assert manifest["config"]["draft_adapter"] == str(trained.resolve())
    assert manifest["draft_adapter"]["adapter_id"] == info.adapter_id and manifest["draft_adapter"]["domain"] == "greek"
    target = load_model(pair["target"], "float32", "cpu")
    for p in load_prompt_tokens(adapted_run).prompts:
        assert list(p.output_ids) == target_greedy(target.model, list(p.prompt_ids), MAX_NEW, target.eos_token_ids)


def test_manifest_adapter_is_read_from_the_record(adapted_run, trained, tmp_path):
    moved = tmp_path / "run"
    shutil.copytree(adapted_run, moved)
    gone = tmp_path / "gone"
    shutil.copytree(trained, gone)
    manifest = json.loads((moved / "manifest.json").read_text())
    manifest["config"]["draft_adapter"] = str(gone)
    manifest["draft_adapter"]["path"] = str(gone)
    (moved / "manifest.json").write_text(json.dumps(manifest))
    shutil.rmtree(gone)  # the reader never opens the adapter folder
    adapter = load_run(moved).manifest.config.draft_adapter
    assert isinstance(adapter, AdapterInfo) and adapter.adapter_id == read_adapter(trained).adapter_id
    assert adapter.label.startswith("distilled:greek@")


def test_resume_refuses_another_adapter(adapted_run, trained, pair, suite, tmp_path, capsys, no_weights):
    assert "draft_adapter differ" in error_line(capsys, main(run_args(pair, suite, adapted_run)))
    changed = tmp_path / "changed"
    shutil.copytree(trained, changed)
    other = tmp_path / "run"
    shutil.copytree(adapted_run, other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["config"]["draft_adapter"] = manifest["draft_adapter"]["path"] = str(changed)
    (other / "manifest.json").write_text(json.dumps(manifest))
    config = changed / "adapter_config.json"
    config.write_text(config.read_text() + "\n")  # same folder, other contents: another adapter id
    last = error_line(capsys, main(run_args(pair, suite, other, "--draft-adapter", str(changed))))
    assert "the draft adapter's contents (adapter id)" in last


def test_decode_json_with_adapter_is_lossless(trained, pair, capsys):
    args = ["decode", "greek omega alpha", "--draft", pair["draft"], "--target", pair["target"], "--dtype", "float32",
            "--max-new-tokens", str(MAX_NEW), "--json"]
    assert main(args + ["--draft-adapter", str(trained)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["draft_adapter"] == read_adapter(trained).adapter_id
    target = load_model(pair["target"], "float32", "cpu")
    assert out["tokens"] == target_greedy(target.model, out["prompt_tokens"], MAX_NEW, target.eos_token_ids)
    assert main(args) == 0 and json.loads(capsys.readouterr().out)["draft_adapter"] is None


def test_adaptive_tree_drafts_with_the_merged_adapter(trained, pair):
    """The adapter is merged before the proposer is built: an adaptive tree learns and drafts with the
    distilled draft, and stays lossless."""
    decoder = TextDecoder(DecodeConfig(draft=pair["draft"], target=pair["target"], dtype="float32", device="cpu",
                                       max_new_tokens=MAX_NEW, tree="adaptive:every=2,nodes=6,depth=3",
                                       draft_adapter=str(trained)))
    proposer = decoder.decoder.proposer
    assert isinstance(proposer, AdaptiveProposer) and proposer.model is decoder.draft.model
    ids = torch.tensor([[5, 6, 7, 8]])
    base = load_model(pair["draft"], "float32", "cpu").model
    assert not torch.allclose(proposer.model(ids).logits, base(ids).logits)  # the merged draft, not the base
    result = decoder.generate("greek omega alpha")
    target = load_model(pair["target"], "float32", "cpu")
    assert result.output_ids == target_greedy(target.model, result.prompt_ids, MAX_NEW, target.eos_token_ids)


@pytest.mark.parametrize("extra, message", [
    (["--draft-adapter", "{missing}"], "no such folder"),
    (["--draft-adapter", "{run_dir}"], "not a finished `specdyn distill` folder"),
    (["--draft-adapter", "{trained}", "--drafter", "lookup"], "the lookup drafter uses none"),
    (["--draft-adapter", "{trained}", "--drafter", "early-exit:layers=1"], "the early-exit drafter uses none"),
    (["--draft-adapter", "{trained}", "--draft", "{target}"], "was trained on"),
])
def test_bad_adapters_fail_before_loading(extra, message, pair, suite, run_dir, trained, tmp_path, capsys, no_weights):
    names = {"missing": tmp_path / "nope", "run_dir": run_dir, "trained": trained, "target": pair["target"]}
    extra = [e.format(**names) for e in extra]
    for command in (run_args(pair, suite, tmp_path / "out", *extra),
                    ["decode", "hi", "--draft", pair["draft"], "--target", pair["target"], *extra]):
        assert message in error_line(capsys, main(command)), command
    assert not (tmp_path / "out").exists()


def test_config_and_toml_parse_the_adapter(trained, tmp_path):
    config = DecodeConfig(draft_adapter=str(trained))
    assert config.draft_adapter == read_adapter(trained.resolve()) and config.to_json()["draft_adapter"] == str(trained.resolve())
    assert DecodeConfig().draft_adapter is None and DecodeConfig().to_json()["draft_adapter"] == ""
    toml = tmp_path / "c.toml"
    toml.write_text(f'draft_adapter = "{trained}"\n')
    assert load_toml(toml, RunConfig).draft_adapter.adapter_id == read_adapter(trained).adapter_id
    with pytest.raises(SpecdynError, match="uses none"):
        DecodeConfig(drafter="lookup", draft_adapter=str(trained))
