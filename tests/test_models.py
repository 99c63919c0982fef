"""Tests for specdyn.models: registry, part assembly, GGUF conversion cache, loading, tokenizer checks."""

from __future__ import annotations

import hashlib
import importlib
import json
import shutil
import time
import tomllib
import uuid
from pathlib import Path

import gguf
import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, models as tok_models, pre_tokenizers
from transformers import DynamicCache, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

from specdyn import models
from specdyn.errors import SpecdynError
from specdyn.models import LoadedModel, RegistryEntry

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv(models.CACHE_ENV, str(root))
    return root


def install_parts(site: Path, chunks: list[bytes], monkeypatch, size=None, sha=None) -> RegistryEntry:
    """Fake part packages holding `chunks`, importable from `site`, registered as a new registry entry."""
    prefix = f"specdyn-fake-{uuid.uuid4().hex[:8]}-part"
    for i, chunk in enumerate(chunks, 1):
        pkg = site / f"{prefix}{i}".replace("-", "_")
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(chunk)
    whole = b"".join(chunks)
    entry = models._split_entry(
        f"fake-{prefix[13:21]}", prefix, len(chunks), "1.2.3",
        len(whole) if size is None else size, sha or hashlib.sha256(whole).hexdigest(), "fake model",
    )  # fmt: skip
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setitem(models.REGISTRY, entry.name, entry)
    return entry


def part_path(site: Path, entry: RegistryEntry, i: int) -> Path:
    return site / entry.packages[i].replace("-", "_") / entry.part_files[i]


# ---------------------------------------------------------------- assembly


def test_assembly_concatenates_and_verifies(tmp_path, cache, monkeypatch):
    chunks = [b"GGUF" + bytes(range(256)) * 50, b"\x00\x01" * 3000, b"tail"]
    entry = install_parts(tmp_path / "site", chunks, monkeypatch)
    path = models.ensure_gguf(entry)
    assert path == cache / "models" / entry.name / models.GGUF_NAME
    assert path.read_bytes() == b"".join(chunks)
    assert [p.name for p in path.parent.iterdir()] == [models.GGUF_NAME]  # no temp file left
    assert models.ensure_gguf(entry) == path  # an existing verified file is reused


def test_corrupt_part_is_rejected_and_nothing_is_kept(tmp_path, cache, monkeypatch):
    site = tmp_path / "site"
    entry = install_parts(site, [b"a" * 1000, b"b" * 1000], monkeypatch)
    part_path(site, entry, 1).write_bytes(b"b" * 999 + b"X")  # same size, different bytes
    with pytest.raises(SpecdynError, match="corrupt or incomplete") as err:
        models.ensure_gguf(entry)
    assert f"pip install --force-reinstall {entry.packages[0]}==1.2.3" in str(err.value)
    assert not any((cache / "models" / entry.name).iterdir())


def test_truncated_part_is_reported_as_incomplete(tmp_path, cache, monkeypatch):
    site = tmp_path / "site"
    entry = install_parts(site, [b"a" * 1000, b"b" * 1000], monkeypatch)
    part_path(site, entry, 0).write_bytes(b"a" * 10)
    with pytest.raises(SpecdynError, match="1,010 bytes, expected 2,000"):
        models.ensure_gguf(entry)


def test_missing_part_file_is_reported(tmp_path, cache, monkeypatch):
    site = tmp_path / "site"
    entry = install_parts(site, [b"a" * 10, b"b" * 10], monkeypatch)
    part_path(site, entry, 1).unlink()
    with pytest.raises(SpecdynError, match="missing part file part02.bin.*--force-reinstall"):
        models.ensure_gguf(entry)


def test_missing_package_names_the_pip_command(tmp_path, cache, monkeypatch):
    site = tmp_path / "site"
    entry = install_parts(site, [b"a" * 10, b"b" * 10, b"c" * 10], monkeypatch)
    shutil.rmtree(site / entry.packages[2].replace("-", "_"))
    importlib.invalidate_caches()
    with pytest.raises(SpecdynError) as err:
        models.ensure_gguf(entry)
    msg = str(err.value)
    assert "pip install 'specdyn[models]'" in msg
    assert f"pip install {entry.packages[2]}==1.2.3" in msg
    assert entry.packages[0] not in msg  # only the missing one is listed


def test_stale_stamp_is_not_trusted(tmp_path, cache, monkeypatch):
    entry = install_parts(tmp_path / "site", [b"abc"], monkeypatch)
    hf = cache / "models" / entry.name / models.HF_DIR
    hf.mkdir(parents=True)
    (hf / models.STAMP_NAME).write_text('{"sha256": "0000", "size": 3}')
    assert models.converted_dir(entry) is None
    (hf / models.STAMP_NAME).write_text(f'{{"sha256": "{entry.sha256}", "size": 3}}')
    assert models.converted_dir(entry) == hf


# ---------------------------------------------------------------- registry and parsing


def test_registry_matches_the_models_extra():
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["models"]
    pinned = {r for e in models.REGISTRY.values() for r in e.requirements}
    assert pinned == set(extra)
    for entry in models.REGISTRY.values():
        assert len(entry.packages) == len(entry.part_files) and len(entry.sha256) == 64
    assert {models.DEFAULT_DRAFT, models.DEFAULT_TARGET} <= set(models.REGISTRY)


def test_registry_table_lists_every_model(cache):
    table = models.registry_table()
    for name in models.REGISTRY:
        assert name in table
    assert len(table.splitlines()) == len(models.REGISTRY) + 1


def test_classify_and_unknown_names(tmp_path):
    assert models.classify(models.DEFAULT_DRAFT) is models.Source.REGISTRY
    assert models.classify(str(tmp_path)) is models.Source.FOLDER
    assert models.classify("Qwen/Qwen2.5-0.5B") is models.Source.HUB
    with pytest.raises(SpecdynError, match=f"unknown model 'no-such-model'; known: .*{models.DEFAULT_DRAFT}"):
        models.load_model("no-such-model")
    for bad in ["./missing/dir", "a/b/c"]:  # local-looking: a missing folder, never a hub id
        with pytest.raises(SpecdynError, match=f"no such model folder '{bad}'"):
            models.load_model(bad)


def test_parse_dtype():
    assert models.parse_dtype("float32") is torch.float32
    assert models.parse_dtype("bfloat16") is torch.bfloat16
    assert models.parse_dtype("FP16") is torch.float16
    with pytest.raises(SpecdynError, match="unknown dtype 'float8'"):
        models.parse_dtype("float8")


def test_resolve_device():
    assert models.resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert models.resolve_device(None).type == models.resolve_device("auto").type == expected
    with pytest.raises(SpecdynError, match="unknown device 'toaster'"):
        models.resolve_device("toaster")
    if not torch.cuda.is_available():
        with pytest.raises(SpecdynError, match="CUDA is not available"):
            models.resolve_device("cuda")


# ---------------------------------------------------------------- tokenizer checks


def word_tokenizer(words: list[str], split=pre_tokenizers.Whitespace) -> LoadedModel:
    vocab = {w: i for i, w in enumerate(["[UNK]", *words])}
    backend = Tokenizer(tok_models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = split()
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]")
    return LoadedModel("m" + str(len(words)), None, tok, frozenset(), "", 0)


def test_equal_tokenizers_pass():
    words = ["def", "return", "("]
    models.check_same_tokenizer(word_tokenizer(words), word_tokenizer(list(words)))


def test_different_vocab_names_first_difference():
    a, b = word_tokenizer(["def", "return", "x"]), word_tokenizer(["def", "yield", "x", "y"])
    expected = r"has 4 tokens, .* has 5; first difference at id 2: 'return' vs 'yield'"
    with pytest.raises(SpecdynError, match=expected):
        models.check_same_tokenizer(a, b)


def test_same_vocab_different_splitting_is_caught():
    a = word_tokenizer(["def", "(", "r", "):"])
    b = word_tokenizer(["def", "(", "r", "):"], split=pre_tokenizers.WhitespaceSplit)
    with pytest.raises(SpecdynError, match="split text differently"):
        models.check_same_tokenizer(a, b)


# ---------------------------------------------------------------- GGUF conversion and loading (tiny model)

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
MERGES = ["h e", "l l", "he ll"]
TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def byte_symbols() -> list[str]:
    """The printable stand-in character of each byte in byte-level BPE vocabularies."""
    printable = {*range(33, 127), *range(161, 173), *range(174, 256)}
    spare = iter(range(256, 512))
    return [chr(b) if b in printable else chr(next(spare)) for b in range(256)]


def tiny_qwen(vocab: int) -> Qwen2ForCausalLM:
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=96, tie_word_embeddings=False, rope_theta=10000.0,
    )  # fmt: skip
    return Qwen2ForCausalLM(config).eval()


def tiny_gguf(model: Qwen2ForCausalLM, path: Path) -> bytes:
    """A float32 GGUF of `model` with a byte-level BPE tokenizer whose eos is NOT the end-of-turn token."""
    tokens = byte_symbols() + [m.replace(" ", "") for m in MERGES] + SPECIALS
    c = model.config
    w = gguf.GGUFWriter(str(path), "qwen2")
    w.add_context_length(c.max_position_embeddings)
    w.add_embedding_length(c.hidden_size)
    w.add_block_count(c.num_hidden_layers)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_head_count(c.num_attention_heads)
    w.add_head_count_kv(c.num_key_value_heads)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types([gguf.TokenType.NORMAL] * (len(tokens) - 3) + [gguf.TokenType.CONTROL] * 3)
    w.add_token_merges(MERGES)
    w.add_eos_token_id(tokens.index("<|endoftext|>"))
    w.add_bos_token_id(tokens.index("<|endoftext|>"))
    w.add_chat_template(TEMPLATE)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.QWEN2, c.num_hidden_layers)
    for key, value in model.state_dict().items():
        w.add_tensor(names.get_name(key, try_suffixes=(".weight", ".bias")), value.numpy().astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path.read_bytes()


VOCAB = 256 + len(MERGES) + len(SPECIALS)


@pytest.fixture
def tiny_registry_model(tmp_path, cache, monkeypatch):
    model = tiny_qwen(VOCAB)
    data = tiny_gguf(model, tmp_path / "tiny.gguf")
    cut = len(data) // 3
    site = tmp_path / "site"
    entry = install_parts(site, [data[:cut], data[cut:]], monkeypatch)
    return entry, model, site


def test_registry_model_converts_once_and_matches_the_original(tiny_registry_model, cache):
    entry, original, site = tiny_registry_model
    lm = models.load_model(entry.name, dtype="float32", device="cpu")
    ids = torch.tensor([[5, 70, 3, 257, 9, 258]])
    with torch.inference_mode():
        assert torch.equal(lm.model(ids).logits, original(ids).logits)
    hf = cache / "models" / entry.name / models.HF_DIR
    assert models.converted_dir(entry) == hf
    assert not (hf.parent / models.GGUF_NAME).exists()  # deleted after conversion
    im_end = lm.tokenizer.convert_tokens_to_ids("<|im_end|>")
    eot = lm.tokenizer.convert_tokens_to_ids("<|endoftext|>")
    assert lm.eos_token_ids == {im_end, eot}  # end-of-turn derived from the chat template
    assert lm.model.generation_config.eos_token_id == sorted({im_end, eot})
    assert "<|im_start|>" in lm.tokenizer.chat_template
    assert (lm.weights_id, lm.max_context, lm.model.training) == (entry.sha256, 96, False)
    assert lm.model.config._attn_implementation == models.ATTN_IMPLEMENTATION
    shutil.rmtree(site)  # the parts are no longer needed: the second load uses the converted cache
    importlib.invalidate_caches()
    again = models.load_model(entry.name, dtype="bfloat16", device="cpu")
    assert again.model.dtype == torch.bfloat16 and again.eos_token_ids == lm.eos_token_ids


def test_local_folder_loads_with_a_stable_id(tiny_registry_model, tmp_path):
    entry, _, _ = tiny_registry_model
    folder = models.prepare_registry_model(entry)
    a = models.load_model(str(folder), dtype="float32", device="cpu")
    b = models.load_model(str(folder), dtype="float32", device="cpu")
    assert a.weights_id == b.weights_id and a.weights_id.startswith(f"folder:{folder}:")
    models.check_same_tokenizer(a, models.load_model(entry.name, dtype="float32"))
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "max_position_embeddings": 97}))
    assert models.load_model(str(folder), dtype="float32").weights_id != a.weights_id


def test_unloadable_folder_gives_one_line_error(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(SpecdynError, match=f"cannot load model '{tmp_path}': ") as err:
        models.load_model(str(tmp_path), dtype="float32")
    assert "\n" not in str(err.value)


def test_tree_mask_with_cache_matches_sequential_decoding():
    """The engine's float 4D mask + position_ids + DynamicCache work with the chosen attention."""
    model = tiny_qwen(64)
    model.set_attn_implementation(models.ATTN_IMPLEMENTATION)
    prefix, tree = torch.tensor([[3, 7, 11, 13]]), torch.tensor([[20, 21, 22]])  # 20<-13, 21<-13, 22<-20
    allowed = torch.ones(3, 7, dtype=torch.bool)
    allowed[:, 4:] = torch.tensor([[1, 0, 0], [0, 1, 0], [1, 0, 1]], dtype=torch.bool)
    mask = torch.zeros(1, 1, 3, 7).masked_fill(~allowed, float("-inf"))
    with torch.inference_mode():
        cache = DynamicCache(config=model.config)
        model(prefix, cache=cache, position_ids=torch.arange(4)[None])
        out = model(tree, cache=cache, position_ids=torch.tensor([[4, 4, 5]]), attention_mask=mask)
        seq = model(torch.tensor([[3, 7, 11, 13, 20, 22]])).logits[0]
        sib = model(torch.tensor([[3, 7, 11, 13, 21]])).logits[0, -1]
    torch.testing.assert_close(out.logits[0, 0], seq[4])
    torch.testing.assert_close(out.logits[0, 2], seq[5])
    torch.testing.assert_close(out.logits[0, 1], sib)
    assert not torch.allclose(out.logits[0, 1], seq[5])


# ---------------------------------------------------------------- the real default pair


def _real_pair_available() -> bool:
    entries = [models.REGISTRY[models.DEFAULT_DRAFT], models.REGISTRY[models.DEFAULT_TARGET]]
    return all(models._status(e) != "not installed" for e in entries)


@pytest.mark.real
@pytest.mark.skipif(not _real_pair_available(), reason="default model parts not installed (specdyn[models])")
def test_real_pair_loads():
    start = time.perf_counter()
    draft, target = models.load_pair(models.DEFAULT_DRAFT, models.DEFAULT_TARGET, "float32", "cpu")
    first = time.perf_counter() - start
    im_end = target.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert im_end in target.eos_token_ids and im_end in draft.eos_token_ids
    assert draft.model.dtype == target.model.dtype == torch.float32
    assert draft.max_context == target.max_context == 32768
    assert "<|im_start|>" in target.tokenizer.chat_template
    start = time.perf_counter()
    models.load_model(models.DEFAULT_TARGET, dtype="float32", device="cpu")
    print(f"\npair load {first:.1f}s, cached target reload {time.perf_counter() - start:.1f}s")
