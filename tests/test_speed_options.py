"""The speed options at the boundary: `--dtype auto`, `--drafter model:quant=...,vocab=...,stop=...,lookup=...`
selected by spec and wired through the pipeline (tiny models on disk), token lists, and the run folder's
new columns (written now, not required of older folders)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

from specdyn.cli import main
from specdyn.config import DecodeConfig
from specdyn.engine import target_greedy
from specdyn.engine.cheap import TruncatedHead
from specdyn.engine.drafters import LookupOrModelProposer
from specdyn.errors import SpecdynError
from specdyn.models import cpu_flags, native_bf16, resolve_dtype
from specdyn.pipeline import build_decoder, encode_messages, load_models, resolve_models
from specdyn.records import RecordLevel
from specdyn.rundir.layout import ADDED_COLUMNS
from specdyn.rundir.reader import load_run, read_records
from specdyn.specs import ModelDrafter, Quant, parse_drafter, parse_tree
from specdyn.suites import Prompt, write_suite
from specdyn.token_lists import TokenList, count_tokens, find_list, list_record, read_list
from tiny import save_tiny_pair, tiny_tokenizer

pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------------------- dtype auto


def test_cpu_flags_and_native_bf16(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_vnni\n")
    assert "avx512_vnni" in cpu_flags(info) and not native_bf16(torch.device("cpu"), cpu_flags(info))
    info.write_text("flags\t\t: fpu avx512f avx512_bf16\n")
    assert native_bf16(torch.device("cpu"), cpu_flags(info))
    assert native_bf16(torch.device("cpu"), frozenset({"amx_bf16"}))
    assert cpu_flags(tmp_path / "absent") == frozenset() and not native_bf16(torch.device("meta"))


def test_resolve_dtype(monkeypatch):
    monkeypatch.setattr("specdyn.models.cpu_flags", lambda: frozenset({"avx2"}))
    assert resolve_dtype("auto", "cpu") == "float32"
    monkeypatch.setattr("specdyn.models.cpu_flags", lambda: frozenset({"avx512_bf16"}))
    assert resolve_dtype("auto", "cpu") == "bfloat16"
    assert resolve_dtype("fp16") == "float16" and resolve_dtype("float32") == "float32"
    with pytest.raises(SpecdynError, match="use auto, float32"):
        resolve_dtype("int4")
    assert DecodeConfig().dtype == "auto"
    assert resolve_models(DecodeConfig(device="cpu")).dtype == "bfloat16"  # what the manifest records


# ---------------------------------------------------------------------------- specs


@pytest.mark.parametrize("text, expect", [
    ("model", ModelDrafter()),
    ("model:quant=int8", ModelDrafter(quant=Quant.INT8)),
    ("model:lookup=3,stop=0.25,vocab=32768,quant=int8", ModelDrafter(Quant.INT8, 32768, 0.25, 3)),
    ("model:stop=1", ModelDrafter(stop=1.0)),
])
def test_model_drafter_specs(text, expect):
    got = parse_drafter(text)
    assert got == expect and parse_drafter(got.text) == got
    assert got.text == "model" or not got.text.endswith("=0")  # defaults are left out


@pytest.mark.parametrize("text, message", [
    ("model:quant=int4", "quant takes one of none, int8"),
    ("model:stop=high", "stop takes a number"),
    ("model:stop=1.5", "needs stop <= 1.0"),
    ("model:stop=nan", "stop must be a number"),
    ("model:vocab=-3", "needs vocab >= 0"),
    ("model:lookup=99", "needs lookup <= 32"),
    ("model:stop", "expected key=value pairs"),
    ("model:quant=int8,quant=none", "key 'quant' is given twice"),
    ("model:speed=11", "expected exactly model"),
])
def test_model_drafter_spec_errors(text, message):
    with pytest.raises(SpecdynError, match=message):
        parse_drafter(text)


def test_lookup_option_takes_static_trees_only():
    with pytest.raises(SpecdynError, match="takes a static or paths tree"):
        DecodeConfig(drafter="model:lookup=2", tree="dynamic:nodes=4,depth=2,topk=2")
    DecodeConfig(drafter="model:stop=0.5", tree="dynamic:nodes=4,depth=2,topk=2")


# ---------------------------------------------------------------------------- token lists


@pytest.fixture
def token_list(tmp_path, monkeypatch):
    """A list for the tiny byte tokenizer in a fresh cache: the ASCII letters and space first."""
    monkeypatch.setenv("SPECDYN_CACHE", str(tmp_path / "cache"))
    tok = tiny_tokenizer()
    counts = count_tokens(lambda t: tok(t, add_special_tokens=False)["input_ids"], ["the quick brown fox " * 3, "abc"])
    record = list_record(tok.get_vocab(), "tiny", counts, sorted(tok.added_tokens_decoder), {"corpus": "test"}, 64)
    folder = tmp_path / "cache" / "token_lists"
    folder.mkdir(parents=True)
    (folder / "tiny.json").write_text(json.dumps(record))
    return record


def test_token_lists(token_list):
    tok = tiny_tokenizer()
    found = find_list(tok.get_vocab())
    assert isinstance(found, TokenList) and found.name == "tiny"
    assert found.top(4) == sorted(tok.added_tokens_decoder)  # special tokens lead
    with pytest.raises(SpecdynError, match="holds"):
        found.top(10_000)
    with pytest.raises(SpecdynError, match="no token-frequency list"):
        find_list({"a": 0, "b": 1}, "other")


def test_shipped_list_is_the_default_draft_tokenizers():
    shipped = read_list(Path("src/specdyn/data/token_lists/qwen2.5.json"))
    assert len(shipped.tokens) >= 32768 and len(set(shipped.tokens)) == len(shipped.tokens)
    assert shipped.source["corpus"].startswith("Python standard library")
    assert 151645 in shipped.top(32)  # <|im_end|>, the end of a turn, always kept


# ---------------------------------------------------------------------------- pipeline


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return save_tiny_pair(tmp_path_factory.mktemp("models"), arch="llama")


@pytest.mark.parametrize("drafter", ["model:quant=int8", "model:vocab=12", "model:stop=0.3",
                                     "model:quant=int8,vocab=12,stop=0.2,lookup=2"])
def test_drafter_specs_build_lossless_decoders(pair, token_list, drafter):
    config = resolve_models(DecodeConfig(draft=pair["draft"], target=pair["target"], drafter=drafter,
                                         tree="static:depth=3,branch=2", dtype="float32", max_new_tokens=20))
    draft, target = load_models(config)
    spec = config.drafter
    assert isinstance(draft.model.lm_head, TruncatedHead) == bool(spec.vocab)
    assert isinstance(draft.model.lm_head, torch.ao.nn.quantized.dynamic.Linear) == (spec.quant is Quant.INT8 and not spec.vocab)
    decoder = build_decoder(config, draft, target, records=RecordLevel.FULL)
    assert isinstance(decoder.proposer, LookupOrModelProposer) == bool(spec.lookup)
    kept = set(find_list(target.tokenizer.get_vocab()).top(12))
    for text in ("the quick brown fox the quick brown fox", "abc abc abc"):
        ids = encode_messages(target.tokenizer, [{"role": "user", "content": text}])
        res = decoder.generate(ids)
        assert res.output_ids == target_greedy(target.model, ids, 20, target.eos_token_ids)
        drafted = [n for n in res.nodes if n.draft_target_tv == n.draft_target_tv]  # lookup nodes: NaN
        assert not spec.vocab or all(n.token in kept for n in drafted)


def test_vocab_without_a_list_is_refused_before_loading(pair, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SPECDYN_CACHE", str(tmp_path / "empty"))
    code = main(["decode", "hi", "--draft", pair["draft"], "--target", pair["target"], "--drafter", "model:vocab=12"])
    assert code == 2
    assert "no token-frequency list for the tokenizer" in capsys.readouterr().err


# ---------------------------------------------------------------------------- run folder


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    prompts = [Prompt(id=f"d/{i}", domain="d", source="t", messages=[{"role": "user", "content": w}])
               for i, w in enumerate(["alpha beta alpha beta", "gamma delta", "epsilon"])]
    path = tmp_path_factory.mktemp("suite") / "suite.jsonl"
    write_suite(prompts, path)
    return str(path)


def test_run_writes_the_new_columns_and_old_folders_still_load(pair, suite, tmp_path):
    out = tmp_path / "run"
    assert main(["run", "--suite", suite, "--out", str(out), "--draft", pair["draft"], "--target", pair["target"],
                 "--dtype", "float32", "--max-new-tokens", "16", "--quiet", "--no-report"]) == 0
    steps, nodes = read_records(out, "steps"), read_records(out, "nodes")
    assert set(ADDED_COLUMNS["steps"]) <= set(steps.column_names) and "draft_target_tv" in nodes.column_names
    assert all(p == 3 for p in steps["draft_passes"].to_pylist())  # static depth 3: three draft passes
    assert load_run(out).steps.draft_passes is not None
    for table, columns in ADDED_COLUMNS.items():  # as recorded before these columns existed
        for shard in (out / table).glob("*.parquet"):
            data = pq.read_table(shard)
            pq.write_table(data.drop_columns([c for c in columns if c in data.column_names]), shard)
    old = load_run(out)
    assert old.steps.draft_passes is None and len(old.nodes.step) == nodes.num_rows
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["dtype"] == "float32"
