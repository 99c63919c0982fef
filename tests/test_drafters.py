"""Dynamic (EAGLE-2) trees, prompt lookup and early-exit drafting: shape limits and losslessness."""

from __future__ import annotations

import random

import pytest

from specdyn.engine.drafters import PromptLookupProposer, early_exit_model
from specdyn.engine import PromptInput, SpeculativeDecoder, target_greedy
from specdyn.errors import SpecdynError
from specdyn.pipeline import build_proposer
from specdyn.engine.proposers import DynamicDraftProposer, prune
from specdyn.engine.tree import DraftTree
from specdyn.specs import DynamicTree, EarlyExitDrafter, LookupDrafter, StaticTree, parse_drafter, parse_tree, static_shape
from tiny import VOCAB, perturbed, tiny_model

EOS = 3


def prompts(seed, n=3, repetitive=False):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        base = [rng.randrange(VOCAB) for _ in range(rng.randint(2, 8))]
        ids = (base * 4)[: rng.randint(3, 30)] if repetitive else [rng.randrange(VOCAB) for _ in range(rng.randint(1, 20))]
        out.append(PromptInput(f"p{i}", ids))
    return out


def assert_lossless(proposer, target, inputs, max_new=25, batch=2):
    decoder = SpeculativeDecoder(proposer, target, [EOS], max_new_tokens=max_new)
    results = list(decoder.generate_many(inputs, batch_size=batch))
    assert len(results) == len(inputs)
    for res in results:
        assert res.output_ids == target_greedy(target, res.prompt_ids, max_new, [EOS])
    return results


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
@pytest.mark.parametrize("spec", ["dynamic:nodes=6,depth=3,topk=2", "dynamic:nodes=10,depth=4,topk=3", "dynamic:nodes=1,depth=1,topk=1"])
def test_dynamic_trees_lossless_and_bounded(arch, spec):
    target = tiny_model(arch, seed=5)
    tree = parse_tree(spec)
    results = assert_lossless(DynamicDraftProposer(perturbed(target, 0.3), tree), target, prompts(1))
    for res in results:
        assert all(s.tree_size <= tree.nodes for s in res.steps)
        assert all(n.depth <= tree.depth and n.rank < tree.topk for n in res.nodes)
        assert any(s.tree_size == tree.nodes for s in res.steps)


def test_prune_keeps_most_valuable_connected_nodes():
    tree = DraftTree()
    values = []
    for tok, parent, prob in [(1, -1, 0.6), (2, -1, 0.3), (3, 0, 0.9), (4, 0, 0.05), (5, 1, 0.9), (6, 2, 0.5)]:
        tree.add(tok, parent, 0, prob, 0.0)
        values.append(prob * (values[parent] if parent >= 0 else 1.0))
    pruned, kept = prune(tree, values, 4)  # values: .6 .3 .54 .03 .27 .27
    assert kept == [0, 1, 2, 4] or kept == [0, 1, 2, 5]
    assert pruned.tokens[:3] == [1, 2, 3] and pruned.parents[:3] == [-1, -1, 0]
    assert all(p < i for i, p in enumerate(pruned.parents))


def test_prompt_lookup_tree_and_losslessness():
    lookup = PromptLookupProposer(static_shape(3, 2))
    tree = lookup.propose([[7, 8, 9, 1, 7, 8, 5, 6, 7, 8]])[0]
    # suffix [7, 8] occurred twice earlier: followed by [5, 6, 7] (most recent) and [9, 1, 7]
    assert tree.tokens == [5, 9, 6, 1, 7, 7] and tree.parents == [-1, -1, 0, 1, 2, 3]
    assert tree.ranks == [0, 1, 0, 0, 0, 0] and set(tree.draft_probs) == {1.0}
    assert len(lookup.propose([[1, 2, 3]])[0]) == 0  # no repeat: empty tree
    target = tiny_model("qwen2", seed=6)
    results = assert_lossless(lookup, target, prompts(2, n=4, repetitive=True), batch=3)
    assert sum(len(r.nodes) for r in results) > 0
    for res in results:
        for n in res.nodes:
            assert n.accept_prob == pytest.approx(n.target_prob)


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
def test_early_exit_lossless(arch):
    target = tiny_model(arch, seed=7, layers=3)
    shallow = early_exit_model(target, 1)
    assert len(shallow.model.layers) == 1 and len(target.model.layers) == 3
    assert shallow.lm_head.weight is target.lm_head.weight
    from specdyn.engine.proposers import DraftModelProposer

    assert_lossless(DraftModelProposer(shallow, static_shape(2, 2)), target, prompts(3))


def test_drafter_specs():
    assert parse_drafter("lookup:ngram=2") == LookupDrafter(ngram=2)
    assert parse_drafter("early-exit:layers=4") == EarlyExitDrafter(layers=4)
    assert parse_drafter("lookup") == LookupDrafter(ngram=3) and parse_drafter("lookup").text == "lookup:ngram=3"
    for bad in ["medusa", "early-exit", "lookup:size=2", "model:x=1", "lookup:ngram=1,ngram=2"]:
        with pytest.raises(SpecdynError):
            parse_drafter(bad)
    target = tiny_model("qwen2", seed=0, layers=2)

    class Loaded:
        model = target

    with pytest.raises(SpecdynError, match="layers"):
        build_proposer(EarlyExitDrafter(2), StaticTree(2, 2), None, Loaded())
    with pytest.raises(SpecdynError, match="dynamic"):
        build_proposer(LookupDrafter(), DynamicTree(4, 2, 2), None, Loaded())
