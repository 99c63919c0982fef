"""Record levels, the draft–target total variation and the output position, and the sliced KV cache."""

from __future__ import annotations

import pytest
import torch

from specdyn.engine import PromptInput, SpeculativeDecoder
from specdyn.engine.cache import CONTEXT, DEAD, leading_kept
from specdyn.engine.cheap import truncated_head
from specdyn.engine.drafters import PromptLookupProposer
from specdyn.engine.proposers import DraftModelProposer, DynamicDraftProposer
from specdyn.engine.recording import total_variation
from specdyn.records import RecordLevel
from specdyn.specs import parse_tree, static_shape
from tiny import perturbed, tiny_model

pytestmark = pytest.mark.usefixtures("one_thread")
EOS = 3
PROMPTS = [PromptInput("a", [4, 8, 15, 16, 23, 42]), PromptInput("b", [7, 7, 1]), PromptInput("c", [2] * 9)]


def run(proposer, target, records=RecordLevel.FULL, max_new=20):
    decoder = SpeculativeDecoder(proposer, target, [EOS], max_new_tokens=max_new, records=records)
    return {r.prompt_id: r for r in decoder.generate_many(PROMPTS, batch_size=2)}


def test_record_levels_change_the_records_not_the_output():
    target = tiny_model("qwen2", seed=1)
    draft = perturbed(target, 0.3)
    full, steps, none = (run(DraftModelProposer(draft, static_shape(3, 2), full_stats=level is RecordLevel.FULL),
                             target, level) for level in RecordLevel)
    for pid in full:
        assert full[pid].output_ids == steps[pid].output_ids == none[pid].output_ids
        assert full[pid].nodes and not steps[pid].nodes and not none[pid].nodes
        assert [s.accepted for s in full[pid].steps] == [s.accepted for s in steps[pid].steps]
        assert not none[pid].steps
    lean = run(DraftModelProposer(draft, static_shape(3, 2), full_stats=False), target)  # FULL records, lean draft
    nodes = [n for r in lean.values() for n in r.nodes]
    assert all(n.draft_entropy != n.draft_entropy and n.draft_target_tv != n.draft_target_tv for n in nodes)  # NaN


def reference_tv(draft, target, context: list[int]) -> float:
    with torch.inference_mode():
        q = draft(torch.tensor([context])).logits[0, -1].softmax(-1)
        p = target(torch.tensor([context])).logits[0, -1].softmax(-1)
    return 0.5 * float((q - p).abs().sum())


@pytest.mark.parametrize("kind", ["static", "dynamic", "truncated"])
def test_total_variation_and_output_position_match_a_direct_computation(kind):
    target = tiny_model("llama", seed=2)
    draft = perturbed(target, 0.5)
    if kind == "truncated":
        draft = truncated_head(draft, list(range(0, 97, 3)))
    proposer = DynamicDraftProposer(draft, parse_tree("dynamic:nodes=6,depth=3,topk=2")) if kind == "dynamic" \
        else DraftModelProposer(draft, static_shape(2, 2))
    res = run(proposer, target)["a"]
    emitted = 0
    for step in res.steps:
        assert step.output_pos == emitted
        nodes = {n.node: n for n in res.nodes if n.step == step.step}
        context = res.prompt_ids + res.output_ids[:emitted]
        for n in nodes.values():
            path = []
            parent = n.parent
            while parent >= 0:
                path.insert(0, nodes[parent].token)
                parent = nodes[parent].parent
            assert n.draft_target_tv == pytest.approx(reference_tv(draft, target, context + path), abs=1e-4)
        emitted += step.accepted + 1


def test_lookup_nodes_have_no_total_variation():
    target = tiny_model("qwen2", seed=3)
    res = run(PromptLookupProposer(static_shape(3, 2)), target)["c"]
    assert res.nodes and all(n.draft_target_tv != n.draft_target_tv for n in res.nodes)
    assert all(s.draft_passes == 0 for s in res.steps)


def test_total_variation_pads_the_smaller_vocabulary():
    draft = [torch.tensor([0.0, 0.0])]  # q = (.5, .5, 0)
    target = torch.log(torch.tensor([[0.5, 0.25, 0.25]]))
    assert float(total_variation(draft, target)[0]) == pytest.approx(0.25)


def test_leading_kept():
    keep = torch.tensor([[True, True, False, True], [True, True, True, False]])
    assert leading_kept(keep) == 2
    assert leading_kept(torch.ones(2, 3, dtype=torch.bool)) == 3
    assert leading_kept(torch.zeros(0, 3, dtype=torch.bool)) == 0


def test_commit_slices_when_the_kept_slots_lead():
    target = tiny_model("qwen2", seed=4)
    proposer = DraftModelProposer(target, static_shape(2, 1))
    contexts = [[5, 6, 7, 8], [9, 10, 11, 12]]
    proposer.add_rows(contexts)
    trees = proposer.propose(contexts)  # the root pass, then one pass over node 0 of each row
    lm = proposer.lm
    keys, width = lm._layers()[0].keys, lm.nodes.shape[1]
    assert lm.nodes[:, -1].tolist() == [0, 0]
    lm.commit([[0, 1], []])  # row 0 keeps its node 0, row 1 drops it: both keep a prefix of their slots
    assert lm._layers()[0].keys.data_ptr() == keys.data_ptr()  # sliced: nothing was copied
    assert lm.nodes.shape[1] == width and lm.context_len() == [5, 4]
    assert lm.nodes[0].tolist() == [CONTEXT] * 5 and lm.nodes[1, -1] == DEAD
    assert [t.passes for t in trees] == [2, 2]
