"""Sampling: the setting's validation, warping against transformers, draws, the greedy limit of the
sampling verifier, and per-prompt determinism. Exactness of the output distribution: test_exactness.py."""

from __future__ import annotations

import math
import random
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats
from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper

from specdyn.engine import PromptInput, SpeculativeDecoder, target_greedy, target_sample
from specdyn.engine.proposers import DraftModelProposer, DynamicDraftProposer
from specdyn.engine.sampling import draw, draw_without_replacement, row_generator, warp_logits, warped_probs
from specdyn.engine.tree import DraftTree
from specdyn.specs import DynamicTree, static_shape
from specdyn.engine.verify import GreedyVerifier, SamplingVerifier
from specdyn.errors import SpecdynError
from specdyn.sampling_spec import Children, Sampling, row_seed
from tiny import VOCAB, perturbed, tiny_model

EOS = 3
SRC = Path(__file__).resolve().parents[1] / "src"

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("temperature, top_p, word", [
    (-0.1, 1.0, "temperature"), (math.nan, 1.0, "temperature"), (math.inf, 1.0, "temperature"),
    ("0.7", 1.0, "temperature"), (True, 1.0, "temperature"),
    (1.0, 0.0, "top-p"), (1.0, 1.5, "top-p"), (1.0, -0.2, "top-p"), (1.0, math.nan, "top-p"),
])
def test_bad_sampling_settings_are_one_line_errors(temperature, top_p, word):
    with pytest.raises(SpecdynError, match=word) as info:
        Sampling(temperature, top_p)
    assert "\n" not in str(info.value)


def test_good_sampling_settings():
    assert Sampling().greedy and Sampling(0, 0.5).greedy
    assert not Sampling(0.7, 0.9).greedy and Sampling(1, 1).top_p == 1


def test_row_seed_is_stable_across_processes_and_needs_no_torch():
    # a fresh interpreter with another hash salt derives the same seeds (hashlib, not hash())
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from specdyn.sampling_spec import row_seed; "
            "print(row_seed(7, 'math-3'), row_seed(0, 'p'), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(SRC)], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "12345"}).stdout.split()
    assert out == [str(row_seed(7, "math-3")), str(row_seed(0, "p")), "False"]
    seeds = {row_seed(s, f"p{i}") for s in range(3) for i in range(50)}
    assert len(seeds) == 150 and all(0 <= s < 2**63 for s in seeds)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 1.7])
@pytest.mark.parametrize("top_p", [1e-6, 0.3, 0.8, 0.95, 1.0])
def test_warp_matches_transformers_including_ties(temperature, top_p):
    gen = torch.Generator().manual_seed(int(temperature * 10 + top_p * 1000))
    tied = torch.randint(-3, 4, (64, 16), generator=gen).float()  # many exact ties
    smooth = torch.randn(64, 50, generator=gen) * 3
    for logits in (tied, smooth):
        ref = TemperatureLogitsWarper(temperature)(None, logits)
        if top_p < 1:  # transformers adds the top-p warper only below 1
            ref = TopPLogitsWarper(top_p)(None, ref)
        assert torch.equal(warp_logits(logits, Sampling(temperature, top_p)), ref)


def test_greedy_warp_is_a_point_mass_on_the_first_argmax():
    logits = torch.tensor([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0]])
    assert warped_probs(logits, Sampling(0.0)).tolist() == [[0, 1, 0, 0], [1, 0, 0, 0]]


def test_draw_follows_the_distribution_and_skips_zeros():
    probs = torch.tensor([0.0, 0.5, 0.0, 0.2, 0.3, 0.0], dtype=torch.float64)
    assert draw(probs, 0.0) == 1 and draw(probs, 1 - 1e-17) == 4 and draw(probs * 7, 0.55) == 3
    u = np.random.default_rng(0).random(20000)
    counts = np.bincount([draw(probs, x) for x in u], minlength=6)
    assert counts[[0, 2, 5]].sum() == 0
    assert stats.chisquare(counts[[1, 3, 4]], 20000 * np.array([0.5, 0.2, 0.3])).pvalue > 1e-3


def test_draw_without_replacement_is_sequential_sampling():
    q = torch.tensor([0.5, 0.3, 0.15, 0.05, 0.0], dtype=torch.float64)
    rng = torch.Generator().manual_seed(3)
    pairs = [tuple(draw_without_replacement(q, 2, rng)) for _ in range(20000)]
    assert all(4 not in p and p[0] != p[1] for p in pairs)
    assert draw_without_replacement(q, 9, rng).__len__() == 4  # only 4 tokens have mass
    cells = [(a, b) for a in range(4) for b in range(4) if a != b]
    exact = np.array([q[a] * q[b] / (1 - q[a]) for a, b in cells], dtype=float)
    counts = np.array([pairs.count(c) for c in cells])
    assert stats.chisquare(counts, 20000 * exact / exact.sum()).pvalue > 1e-3


def random_tree(rng: random.Random, vocab: int, with_proposals: bool) -> DraftTree:
    tree = DraftTree()
    for _ in range(rng.randint(0, 12)):
        parent = rng.randint(-1, len(tree) - 1)
        used = {tree.tokens[c] for c in tree.groups().get(parent, [])}
        free = [t for t in range(vocab) if t not in used]
        if free:
            tree.add(rng.choice(free), parent, len(used), 0.5, 1.0)
    if with_proposals:
        for parent, kids in tree.groups().items():
            q = torch.rand(vocab, dtype=torch.float64) + 0.01
            tree.proposals[parent] = q / q.sum()
    return tree


@pytest.mark.parametrize("with_proposals", [False, True])
def test_sampling_verifier_at_temperature_zero_is_the_greedy_verifier(with_proposals):
    rng = random.Random(5)
    gen = torch.Generator().manual_seed(5)
    for _ in range(300):
        tree = random_tree(rng, 8, with_proposals)
        logits = torch.randint(0, 3, (len(tree) + 1, 8)).float()  # ties among the maxima are common
        a = SamplingVerifier(Sampling(0.0)).verify(tree, logits, gen)
        b = GreedyVerifier().verify(tree, logits)
        assert asdict(a) == asdict(b)


@pytest.mark.parametrize("make", [
    lambda d: DraftModelProposer(d, static_shape(3, 2)),
    lambda d: DraftModelProposer(d, static_shape(2, 3), Children.SAMPLED, Sampling(0.0)),
    lambda d: DynamicDraftProposer(d, DynamicTree(8, 3, 2)),
])
def test_sampling_verifier_decodes_greedily_at_temperature_zero(make):
    target = tiny_model("qwen2", seed=4)
    draft = perturbed(target, 0.5)
    prompts = [PromptInput(f"p{i}", [7 + i, 30, 2 * i + 1]) for i in range(3)]
    runs = []
    for verifier in (None, SamplingVerifier(Sampling(0.0))):
        dec = SpeculativeDecoder(make(draft), target, [EOS], 20, verifier=verifier)
        runs.append(sorted(dec.generate_many(prompts, batch_size=2), key=lambda r: r.prompt_id))
    for greedy, sampled in zip(*runs):
        assert sampled.output_ids == greedy.output_ids == target_greedy(target, greedy.prompt_ids, 20, [EOS])
        assert sampled.nodes == greedy.nodes and [s.accepted for s in sampled.steps] == greedy.accepted


def test_target_sample_reduces_to_greedy_and_is_reproducible():
    target = tiny_model("llama", seed=2)
    ids = [4, 8, 15]
    assert target_sample(target, ids, 12, [EOS], Sampling(0.0), torch.Generator()) == target_greedy(target, ids, 12, [EOS])
    hot = [target_sample(target, ids, 12, [EOS], Sampling(1.3, 0.9), row_generator(1, "x")) for _ in range(2)]
    assert hot[0] == hot[1] and hot[0] != target_greedy(target, ids, 12, [EOS])


def assert_same_results(a, b):
    assert a.output_ids == b.output_ids and [s.accepted for s in a.steps] == [s.accepted for s in b.steps]
    for x, y in zip(a.nodes, b.nodes, strict=True):
        dx, dy = asdict(x), asdict(y)
        for key, value in dx.items():
            assert value == pytest.approx(dy[key], abs=1e-5), key


@pytest.mark.parametrize("children", [Children.TOPK, Children.SAMPLED])
def test_a_prompt_draws_the_same_alone_and_in_any_batch(children):
    target = tiny_model("qwen2", seed=9)
    draft = perturbed(target, 0.6)
    sampling = Sampling(1.0, 0.95)
    prompts = [PromptInput(f"p{i}", [(5 * i + j) % VOCAB for j in range(2 + 3 * i)]) for i in range(5)]

    def decode(items, batch):
        dec = SpeculativeDecoder(DraftModelProposer(draft, static_shape(2, 2), children, sampling), target, [EOS], 24,
                                 sampling=sampling, seed=11)
        return {r.prompt_id: r for r in dec.generate_many(items, batch_size=batch)}

    batched = decode(prompts, 4)
    for p in (prompts[0], prompts[3]):
        assert_same_results(decode([p], 1)[p.prompt_id], batched[p.prompt_id])
    others = decode(prompts[::-1], 2)  # another order and batch size
    assert all(others[k].output_ids == batched[k].output_ids for k in batched)
    assert decode(prompts[:2], 2)["p0"].output_ids != decode([PromptInput("q", prompts[0].prompt_ids)], 1)["q"].output_ids


def test_sampled_records_are_consistent():
    target = tiny_model("llama", seed=3)
    sampling = Sampling(0.9)
    dec = SpeculativeDecoder(DraftModelProposer(perturbed(target, 0.8), static_shape(3, 2), Children.SAMPLED, sampling),
                             target, [EOS], 40, sampling=sampling, seed=2)
    res = dec.generate([1, 2, 3, 4])
    for step in res.steps:
        nodes = [n for n in res.nodes if n.step == step.step]
        assert sum(n.accepted_path for n in nodes) == step.accepted
        for parent in {n.parent for n in nodes}:
            kids = sorted((n for n in nodes if n.parent == parent), key=lambda n: n.rank)
            assert len({k.token for k in kids}) == len(kids) and sum(k.accepted_local for k in kids) <= 1
            assert [k.rank for k in kids] == list(range(len(kids)))
        for n in nodes:
            assert 0 <= n.verify_prob <= 1 and (not n.accepted_path or n.accepted_local)
            assert not n.accepted_local or n.verify_prob > 0
            assert n.accept_prob == pytest.approx(min(1.0, n.target_prob / n.draft_prob), rel=1e-6)
