"""Tree masks, tree-vs-sequential logits, and losslessness on tiny random Qwen2 and Llama models."""

from __future__ import annotations

import random

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from specdyn.engine.cache import CONTEXT, CachedModel, Query, attention_mask
from specdyn.engine import PromptInput, SpeculativeDecoder, target_greedy
from specdyn.engine.proposers import DraftModelProposer, pending_query, prefill
from specdyn.engine.tree import DraftTree, ancestor_mask, node_positions, path_to
from specdyn.specs import shape_from_paths, static_shape
from tiny import VOCAB, perturbed, tiny_model

EOS = 3


def make_tree(parents: list[int], tokens: list[int] | None = None) -> DraftTree:
    tree = DraftTree()
    for i, p in enumerate(parents):
        tree.add(tokens[i] if tokens else 10 + i, p, 0, 0.5, 1.0)
    return tree


def test_chain_mask_and_positions():
    parents = [-1, 0, 1]
    expected = torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]], dtype=torch.bool)
    assert torch.equal(ancestor_mask(parents), expected)
    assert node_positions(parents, context_len=5).tolist() == [5, 6, 7]


def test_small_tree_mask_and_positions():
    #        root
    #       /    \
    #      0      1
    #     / \     |
    #    2   3    4
    #    |
    #    5
    parents = [-1, -1, 0, 0, 1, 2]
    expected = torch.tensor(
        [
            [1, 0, 0, 0, 0, 0],
            [0, 1, 0, 0, 0, 0],
            [1, 0, 1, 0, 0, 0],
            [1, 0, 0, 1, 0, 0],
            [0, 1, 0, 0, 1, 0],
            [1, 0, 1, 0, 0, 1],
        ],
        dtype=torch.bool,
    )
    assert torch.equal(ancestor_mask(parents), expected)
    assert node_positions(parents, context_len=4).tolist() == [4, 4, 5, 5, 5, 6]
    assert path_to(parents, 5) == [0, 2, 5]


def test_full_attention_mask_with_context_and_padding():
    # one row: 2 cached context slots, then a query of 1 pending token + a 3-node tree + 1 pad
    tree = make_tree([-1, -1, 0])
    query = Query(
        tokens=torch.tensor([[7, 10, 11, 12, 0]]),
        positions=torch.tensor([[2, 3, 3, 4, 0]]),
        nodes=torch.tensor([[CONTEXT, 0, 1, 2, -2]]),
        anc=ancestor_mask(tree.parents)[None],
    )
    key_nodes = torch.tensor([[CONTEXT, CONTEXT, CONTEXT, 0, 1, 2, -2]])
    key_pos = torch.tensor([[0, 1, 2, 3, 3, 4, 0]])
    got = attention_mask(query, key_nodes, key_pos)[0].int().tolist()
    assert got == [
        [1, 1, 1, 0, 0, 0, 0],  # pending token: context only
        [1, 1, 1, 1, 0, 0, 0],  # node 0
        [1, 1, 1, 0, 1, 0, 0],  # node 1
        [1, 1, 1, 1, 0, 1, 0],  # node 2 (child of 0)
        [0, 0, 0, 0, 0, 0, 1],  # padding sees only itself
    ]


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
@pytest.mark.parametrize("use_cache", [True, False])
def test_tree_logits_match_sequential_paths(arch, use_cache):
    model = tiny_model(arch, seed=3)
    context = [5, 17, 42, 8, 61, 2]
    tree = make_tree([-1, -1, 0, 0, 1, 2, 5], tokens=[11, 12, 13, 14, 15, 16, 17])
    lm = prefill(model, [context]) if use_cache else CachedModel(model, batch=1)
    cached = lm.context_len()
    logits = lm.forward(pending_query([context], cached, [tree], [list(range(len(tree)))]))[0]  # [q, vocab]
    k = len(context) - cached[0]
    for i in range(len(tree)):
        seq = context + [tree.tokens[j] for j in path_to(tree.parents, i)]
        with torch.no_grad():
            ref = model(input_ids=torch.tensor([seq])).logits[0, -1]  # [vocab]
        torch.testing.assert_close(logits[k + i], ref, atol=1e-4, rtol=1e-4)


def test_commit_keeps_only_accepted_path():
    model = tiny_model("qwen2", seed=4)
    context = [5, 17, 42, 8]
    tree = make_tree([-1, -1, 0, 1], tokens=[11, 12, 13, 14])
    lm = prefill(model, [context])
    lm.forward(pending_query([context], lm.context_len(), [tree], [[0, 1, 2, 3]]))
    lm.commit([[1, 3]])
    assert lm.context_len() == [len(context) + 2]
    # the cache now equals the cache of the committed sequence: next-token logits must match
    seq = context + [12, 14, 50]
    out = lm.forward(pending_query([seq], lm.context_len()))[0, -1]
    with torch.no_grad():
        ref = model(input_ids=torch.tensor([seq])).logits[0, -1]
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)


def random_shape(rng: random.Random):
    if rng.random() < 0.5:
        return static_shape(rng.randint(1, 4), rng.randint(1, 3))
    paths = {(0,)}
    for _ in range(rng.randint(1, 10)):
        parent = rng.choice(sorted(paths))
        if len(parent) < 5:
            paths.add(parent + (rng.randint(0, 3),))
    return shape_from_paths([list(p) for p in paths])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), arch=st.sampled_from(["qwen2", "llama"]), batch=st.integers(1, 3))
def test_lossless_against_target_greedy(seed, arch, batch):
    rng = random.Random(seed)
    target = tiny_model(arch, seed=seed % 7)
    draft = target if rng.random() < 0.2 else perturbed(target, rng.choice([0.05, 0.3, 1.0]), seed=seed)
    shape = random_shape(rng)
    prompts = [
        PromptInput(f"p{i}", [rng.randrange(VOCAB) for _ in range(rng.randint(1, 24))]) for i in range(rng.randint(1, 4))
    ]
    max_new = rng.randint(1, 30)
    decoder = SpeculativeDecoder(DraftModelProposer(draft, shape), target, eos_token_ids=[EOS], max_new_tokens=max_new)
    results = list(decoder.generate_many(prompts, batch_size=batch))
    assert sorted(r.prompt_id for r in results) == sorted(p.prompt_id for p in prompts)
    for res in results:
        assert res.output_ids == target_greedy(target, res.prompt_ids, max_new, [EOS])
        for node in res.nodes:  # path acceptance implies local acceptance; local is argmax agreement
            assert not node.accepted_path or node.accepted_local
        for st_ in res.steps:
            assert st_.tree_size == shape.size


def test_records_are_consistent():
    target = tiny_model("qwen2", seed=1)
    draft = perturbed(target, 0.2)
    decoder = SpeculativeDecoder(DraftModelProposer(draft, static_shape(3, 2)), target, [EOS], max_new_tokens=30)
    res = decoder.generate([4, 8, 15, 16, 23, 42])
    assert len(res.nodes) == 14 * len(res.steps)
    for step in res.steps:
        nodes = [n for n in res.nodes if n.step == step.step]
        assert sum(n.accepted_path for n in nodes) == step.accepted
        for n in nodes:
            assert 0 < n.draft_prob <= 1 and 0 <= n.target_prob <= 1
            assert n.accept_prob == pytest.approx(min(1.0, n.target_prob / n.draft_prob), rel=1e-6)
            assert n.draft_entropy >= 0 and n.target_entropy >= 0
            assert n.depth == (1 if n.parent == -1 else nodes[n.parent].depth + 1)
        for parent in {n.parent for n in nodes}:  # siblings are distinct, ranks ordered by draft prob
            kids = sorted((n for n in nodes if n.parent == parent), key=lambda n: n.rank)
            assert len({k.token for k in kids}) == len(kids)
            assert all(a.draft_prob >= b.draft_prob for a, b in zip(kids, kids[1:]))
            assert sum(k.accepted_local for k in kids) <= 1
    # every step but the last emits accepted + 1 tokens; the last may be cut by EOS or the token limit
    before_last = sum(s.accepted + 1 for s in res.steps[:-1])
    assert before_last < len(res.output_ids) <= before_last + res.steps[-1].accepted + 1


def test_identical_draft_accepts_everything():
    target = tiny_model("llama", seed=2)
    decoder = SpeculativeDecoder(DraftModelProposer(target, static_shape(3, 2)), target, [EOS], max_new_tokens=40)
    res = decoder.generate([9, 9, 1, 2, 3])
    assert all(a == 3 for a in res.accepted[:-1])  # the draft *is* the target: every step accepts the full depth


def test_decoder_is_reusable_and_survives_an_abandoned_call():
    target = tiny_model("qwen2", seed=8)
    decoder = SpeculativeDecoder(DraftModelProposer(perturbed(target, 0.3), static_shape(2, 2)), target, [EOS], 20)
    prompts = [PromptInput(f"p{i}", [5 + i, 9, 14, 2 + i]) for i in range(3)]
    first = decoder.generate(prompts[0].prompt_ids)
    abandoned = decoder.generate_many(prompts, batch_size=3)
    next(abandoned)  # stop iterating with rows still in flight
    again = [decoder.generate(p.prompt_ids).output_ids for p in prompts]
    assert again[0] == first.output_ids
    assert again == [target_greedy(target, p.prompt_ids, 20, [EOS]) for p in prompts]
