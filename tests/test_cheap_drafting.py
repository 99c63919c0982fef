"""Cheaper drafting (int8 draft, truncated-vocabulary head, early stop, lookup-or-model): each is lossless
in float32 on tiny Qwen2 and Llama models, and each changes the draft the way it says."""

from __future__ import annotations

import pytest
import torch

from specdyn.engine.cheap import TruncatedHead, int8_draft, truncated_head
from specdyn.engine.drafters import LookupOrModelProposer, PromptLookupProposer
from specdyn.engine.proposers import DraftModelProposer, DynamicDraftProposer
from specdyn.specs import parse_tree, static_shape
from test_drafters import assert_lossless, prompts
from tiny import VOCAB, perturbed, tiny_model

pytestmark = pytest.mark.usefixtures("one_thread")
KEEP = list(range(0, VOCAB, 2))  # a truncated head over the even token ids


def is_int8(module) -> bool:
    return isinstance(module, torch.ao.nn.quantized.dynamic.Linear)


def pair(arch: str, seed: int = 3, noise: float = 0.2):
    target = tiny_model(arch, seed=seed)
    return target, perturbed(target, noise, seed=seed)


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
def test_int8_draft_is_lossless_and_close_to_the_float_draft(arch):
    target, draft = pair(arch)
    cheap = int8_draft(draft)
    assert sum(map(is_int8, cheap.modules())) == sum(isinstance(m, torch.nn.Linear) for m in draft.modules())
    assert is_int8(cheap.lm_head) and not any(map(is_int8, draft.modules()))  # the original is untouched
    ids = torch.tensor([[5, 17, 42, 8]])
    with torch.inference_mode():
        a, b = draft(ids).logits.softmax(-1), cheap(ids).logits.softmax(-1)
    assert 0 < (a - b).abs().sum(-1).max() < 0.2  # rounded, not broken
    assert_lossless(DraftModelProposer(cheap, static_shape(3, 2)), target, prompts(1))
    assert_lossless(DynamicDraftProposer(cheap, parse_tree("dynamic:nodes=6,depth=3,topk=2")), target, prompts(2))


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
def test_truncated_head_drafts_only_its_tokens_and_is_lossless(arch):
    target, draft = pair(arch)
    cheap = truncated_head(draft, KEEP)
    assert isinstance(cheap.lm_head, TruncatedHead) and not isinstance(draft.lm_head, TruncatedHead)
    ids = torch.tensor([[5, 17, 42, 8]])
    with torch.inference_mode():
        full, cut = draft(ids).logits, cheap(ids).logits
    assert cut.shape == full.shape and torch.isfinite(cut).all()
    assert torch.equal(cut[..., KEEP], full[..., KEEP])
    assert (cut.softmax(-1)[..., 1::2] == 0).all()  # odd tokens have probability exactly 0
    results = assert_lossless(DraftModelProposer(cheap, static_shape(3, 2)), target, prompts(3))
    nodes = [n for r in results for n in r.nodes]
    assert nodes and all(n.token % 2 == 0 for n in nodes)
    assert all(0 <= n.draft_target_tv <= 1 and n.draft_entropy >= 0 for n in nodes)


def test_int8_truncated_draft_is_lossless_at_batch_three():
    target, draft = pair("qwen2", seed=4)
    cheap = int8_draft(truncated_head(draft, KEEP))
    results = assert_lossless(DraftModelProposer(cheap, static_shape(2, 3)), target, prompts(4, n=4), batch=3)
    assert all(n.token % 2 == 0 for r in results for n in r.nodes)


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
def test_early_stop_cuts_unlikely_branches_and_is_lossless(arch):
    target, draft = pair(arch, noise=0.5)
    shape, inputs = static_shape(4, 2), prompts(5, n=4)
    full = assert_lossless(DraftModelProposer(draft, shape), target, inputs)
    cut = assert_lossless(DraftModelProposer(draft, shape, stop=0.3), target, inputs)
    for res in cut:
        for step in res.steps:
            nodes = [n for n in res.nodes if n.step == step.step]
            assert step.draft_passes == max(n.depth for n in nodes) <= shape.depth
            value = {}
            for n in nodes:  # children only below nodes whose root-path draft probability reaches 0.3
                value[n.node] = n.draft_prob * (value[n.parent] if n.parent >= 0 else 1.0)
                assert n.parent < 0 or value[n.parent] >= 0.3
    sizes = [s.tree_size for r in cut for s in r.steps]
    assert max(sizes) <= shape.size and min(sizes) < shape.size
    assert all(s.draft_passes == shape.depth for r in full for s in r.steps)


def test_early_stop_on_dynamic_trees_is_lossless():
    target, draft = pair("llama", noise=0.5)
    tree = parse_tree("dynamic:nodes=10,depth=4,topk=3")
    results = assert_lossless(DynamicDraftProposer(draft, tree, stop=0.25), target, prompts(6))
    assert any(s.draft_passes < tree.depth for r in results for s in r.steps)


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
def test_lookup_or_model_uses_lookup_on_matches_and_the_model_elsewhere(arch):
    target, draft = pair(arch, noise=0.4)
    shape = static_shape(3, 2)
    proposer = LookupOrModelProposer(PromptLookupProposer(shape, max_ngram=3, min_ngram=2), DraftModelProposer(draft, shape))
    inputs = prompts(7, n=2, repetitive=True) + prompts(8, n=2)
    results = assert_lossless(proposer, target, inputs, batch=3)
    steps = [s for r in results for s in r.steps]
    assert any(s.draft_passes == 0 for s in steps) and any(s.draft_passes > 0 for s in steps)
    for res in results:
        for step in res.steps:
            nodes = [n for n in res.nodes if n.step == step.step]
            lookup = step.draft_passes == 0
            assert all((n.draft_prob == 1.0 and n.draft_target_tv != n.draft_target_tv) == lookup for n in nodes)


def test_lookup_min_ngram():
    lookup = PromptLookupProposer(static_shape(2, 1), max_ngram=3, min_ngram=2)
    assert len(lookup.propose([[1, 2, 9, 5, 2]])[0]) == 0  # only a 1-token match ([2])
    assert lookup.propose([[1, 2, 9, 5, 1, 2]])[0].tokens == [9, 5]
