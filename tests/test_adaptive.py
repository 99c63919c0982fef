"""Adaptive trees: the depth-dependent DP (against brute force), Beta beliefs (convergence and calibration),
the online planner on simulated streams, and the proposer: lossless on tiny models, row state that follows
the batch, exact under sampling."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from scipy import stats

from specdyn.engine import PromptInput, SpeculativeDecoder, target_greedy
from specdyn.engine.adaptive import AdaptiveProposer, Drafted, position_outcomes
from specdyn.engine.tree import ROOT
from specdyn.errors import SpecdynError
from specdyn.pipeline import build_proposer
from specdyn.prior import WEAK_WEIGHT, Profile, resolve_prior, weak_mean
from specdyn.sampling_spec import Sampling
from specdyn.specs import AdaptiveTree, ModelDrafter, TreeShape, domain_filename, parse_tree, tree_from_record, tree_record
from specdyn.treeopt.online import Beliefs, Planner
from specdyn.treeopt.sequoia import depth_table, expected_accepted_by_depth, sequoia_table
from test_budget import forests, synthetic_costs
from test_drafters import EOS, prompts
from tiny import perturbed, tiny_model

# ------------------------------------------------------------------ depth-dependent DP


def brute_best_by_depth(p, budget: int, depth: int) -> float:
    return max(expected_accepted_by_depth(TreeShape(tuple(f)), p) for f in forests((), budget, depth, len(p[0])) if f)


@pytest.mark.parametrize("seed", range(6))
def test_depth_dp_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(4), size=3)[:, :3]  # [depth, ranks]: each row sums to < 1, as greedy acceptance does
    p[rng.random(p.shape) < 0.2] = 0.0  # some ranks never accepted at some depth
    table = depth_table(p, 6, 3)
    for depth in (1, 2, 3):
        for n in range(1, 7):
            best = table.best(n, depth)
            assert best.shape.size <= n and best.shape.depth <= depth
            assert best.expected_accepted == pytest.approx(expected_accepted_by_depth(best.shape, p))
            assert best.expected_accepted == pytest.approx(brute_best_by_depth(p, n, depth)), (seed, n, depth)


def test_depth_dp_equals_sequoia_for_a_constant_vector():
    p = [0.6, 0.25, 0.1]
    flat, deep = sequoia_table(p, 10, 4), depth_table([p] * 4, 10, 4)
    for n in range(1, 11):
        for d in range(1, 5):
            assert deep.best(n, d) == flat.best(n, d)


def test_depth_dp_follows_depth():
    wide = depth_table([[0.5, 0.4], [0.1, 0.0], [0.1, 0.0]], 4, 3).best(3, 3)  # deeper levels rarely accepted
    deep = depth_table([[0.5, 0.4], [0.95, 0.0], [0.95, 0.0]], 4, 3).best(3, 3)  # same first level, then sure
    assert wide.shape.paths == ((0,), (1,), (0, 0)) and wide.expected_accepted == pytest.approx(0.95)
    assert deep.shape.paths == ((0,), (0, 0), (0, 0, 0)) and deep.expected_accepted == pytest.approx(0.5 + 0.475 + 0.45125)
    with pytest.raises(SpecdynError, match="needs 3 rows"):
        depth_table([[0.5]] * 2, 4, 3)


# ------------------------------------------------------------------ beliefs


def simulate_step(shape: TreeShape, p: np.ndarray, rng: np.random.Generator):
    """(depth, rank, accepted) trials of one simulated greedy step, as the adaptive proposer learns them: at
    each reached position the shape expands, the rank-r child is the accepted one with probability
    p[depth][r] (at most one; none with the remainder), observed for every rank whether drafted or not."""
    out, prefix = [], ()
    while ranks := shape.child_ranks(prefix):
        row = p[len(prefix)]
        hit = int(np.searchsorted(np.cumsum(row), rng.random(), side="right"))
        out += [(len(prefix) + 1, r, int(r == hit)) for r in range(len(row))]
        if hit not in ranks:
            break
        prefix += (hit,)
    return tuple(np.array(col) for col in zip(*out))


def test_beliefs_converge_to_the_truth():
    truth = np.array([[0.7, 0.15, 0.05], [0.6, 0.2, 0.05]])
    beliefs = Beliefs.from_prior(resolve_prior(None, 2, 3, 8))
    shape, rng = TreeShape(((0,), (1,), (2,), (0, 0), (0, 1), (0, 2))), np.random.default_rng(0)
    for _ in range(3000):
        beliefs.observe(*simulate_step(shape, truth, rng))
    assert np.abs(beliefs.mean - truth).max() < 0.03
    assert beliefs.trials[0].sum() == 3 * 3000 and (beliefs.alpha + beliefs.beta)[0] == pytest.approx(3000 + WEAK_WEIGHT)
    assert 0 < beliefs.trials[1, 0] < 3000  # depth 2 is reached only when a top-level child is accepted
    before = beliefs.copy()
    beliefs.observe([9, 1], [0, 7], [1, 1])  # outside the grid: ignored
    assert (beliefs.hits == before.hits).all() and (beliefs.trials == before.trials).all()


def test_unseen_depths_follow_the_seen_ones():
    """A request accepting far more than the prior at depth 1 expects more at depth 3, which it never
    drafted; a depth's own data never shift its own centre."""
    beliefs = Beliefs.from_prior(resolve_prior(None, 3, 2, 8))
    beliefs.observe(np.ones(50), np.zeros(50), np.arange(50) < 45)  # depth 1, rank 0: 45 of 50
    assert beliefs.mean[2, 0] > 0.8 and beliefs.mean[2, 1] == pytest.approx(weak_mean(1))  # rank 1: no data at all
    assert beliefs.centre()[0, 0] == pytest.approx(weak_mean(0))


def test_beta_credible_intervals_are_calibrated():
    """Rank 0's weak prior is Beta(1, 1): with the truth drawn uniformly, a 90% central credible interval
    covers it 90% of the time (exactly, by Bayes), and it must (a wrong update would not)."""
    rng = np.random.default_rng(1)
    covered, covered_wrong = [], []
    for _ in range(3000):
        truth = rng.random()
        beliefs = Beliefs.from_prior(resolve_prior(None, 1, 1, 8))
        hits = rng.random(20) < truth
        beliefs.observe(np.ones(20), np.zeros(20), hits)
        low, high = stats.beta.ppf([0.05, 0.95], beliefs.alpha[0, 0], beliefs.beta[0, 0])
        covered.append(low <= truth <= high)
        wrong = stats.beta.ppf([0.05, 0.95], 1 + 2 * hits.sum(), 1 + 2 * (20 - hits.sum()))  # counts each trial twice
        covered_wrong.append(wrong[0] <= truth <= wrong[1])
    sd = math.sqrt(0.9 * 0.1 / 3000)
    assert abs(np.mean(covered) - 0.9) < 3 * sd
    assert np.mean(covered_wrong) < 0.9 - 3 * sd  # the check has power against an overconfident update


# ------------------------------------------------------------------ the planner on simulated streams


POOLED = Profile("/runs/fit", None, "c", "d", "t", ((1000, 1000, 1000), (600, 600, 600), (400, 400, 400)),
                 ((600, 150, 70), (420, 60, 20), (300, 30, 10)))  # a profile of mixed domains, three levels deep


def run_stream(truth: np.ndarray, steps: int, every: int, seed: int, profile: Profile | None = None) -> TreeShape:
    spec = AdaptiveTree(every=every, nodes=10, depth=4, branch=3, profile=profile)
    planner, beliefs = Planner(synthetic_costs(), spec.nodes, spec.depth), Beliefs.from_prior(spec.prior)
    shape, rng = planner.choose(beliefs.mean, 1).shape, np.random.default_rng(seed)
    for step in range(1, steps + 1):
        beliefs.observe(*simulate_step(shape, truth, rng))
        if step % every == 0:
            shape = planner.choose(beliefs.mean, 1).shape
    return shape


@pytest.mark.parametrize("truth, profile", [
    ([[0.9, 0.05, 0.0]] * 4, None),  # code-like: the draft's best is nearly always right
    ([[0.35, 0.25, 0.15]] * 4, None),  # chat-like: wide and shallow
    ([[0.9, 0.05, 0.0]] * 4, POOLED),
    ([[0.35, 0.25, 0.15]] * 4, POOLED),
    # Better deep than at the top: trees reach depth 2 only with a prior that believes in it (a profile
    # whose deeper levels accept well); the weak prior's trees would stay one level deep (docs/engine.md).
    ([[0.5, 0.3, 0.1], [0.85, 0.05, 0.0], [0.85, 0.05, 0.0], [0.85, 0.05, 0.0]], POOLED),
], ids=["code-weak", "chat-weak", "code-profile", "chat-profile", "by-depth-profile"])
def test_planner_finds_the_tree_the_truth_calls_for(truth, profile):
    truth = np.array(truth)
    planner = Planner(synthetic_costs(), 10, 4)
    best = planner.choose(truth, 1)
    for seed in range(3):
        found = run_stream(truth, steps=400, every=8, seed=seed, profile=profile)
        assert planner.price(found, truth, 1).tokens_per_second >= 0.97 * best.tokens_per_second, seed


def test_streams_of_different_domains_end_with_different_trees():
    code = run_stream(np.array([[0.9, 0.05, 0.0]] * 4), 200, 8, 1)
    chat = run_stream(np.array([[0.35, 0.25, 0.15]] * 4), 200, 8, 1)
    assert code.depth > chat.depth and max(len(q) for q in code.paths) == 4


# ------------------------------------------------------------------ specs and the prior


def test_adaptive_spec_text_bounds_and_record():
    spec = parse_tree("adaptive")
    assert spec == AdaptiveTree() and spec.text == "adaptive:every=8,nodes=16,depth=6,branch=4,weight=8"
    assert parse_tree(spec.text) == spec and spec.shape is None and spec.max_nodes == 16 and spec.max_depth == 6
    for bad, message in [("adaptive:every=0", "needs every >= 1"), ("adaptive:nodes=65", "needs nodes <= 64"),
                         ("adaptive:depth=11", "needs depth <= 10"), ("adaptive:branch=9", "needs branch <= 8"),
                         ("adaptive:size=3", "unknown key 'size'"), ("adaptive:every=2,every=3", "given twice")]:
        with pytest.raises(SpecdynError, match=message):
            parse_tree(bad)
    profile = Profile("/runs/x", "s" * 64, "c" * 64, "d", "t", ((100, 40), (50, 10)), ((80, 10), (30, 2)), None)
    with_profile = AdaptiveTree(every=2, profile=profile)
    record = tree_record(with_profile)
    assert record["profile"]["path"] == "/runs/x" and record["prior"]["mean"][0][:2] == [0.8, 0.25]
    assert record["prior"]["source"][1][:3] == ["profile depth", "profile rank", "weak"]
    assert tree_from_record(record, "manifest") == with_profile and tree_record(spec)["profile"] is None
    assert domain_filename("global") == "global_domain.json"


def test_prior_cells():
    profile = Profile("/r", None, "c", "d", "t", ((1000, 10),), ((600, 1),))
    prior = resolve_prior(profile, 3, 3, 5)
    assert prior.mean[0][0] == 0.6 and prior.mean[2][0] == 0.6 and prior.source[2][0] == "profile rank"
    assert prior.mean[0][1] == weak_mean(1) and prior.weight[0][1] == WEAK_WEIGHT  # 10 trials: too few
    assert prior.weight[0][0] == 5 and resolve_prior(None, 2, 2, 5).source == (("weak", "weak"),) * 2


def test_position_outcomes():
    """The top position and the accepted node 0 were expanded; the step emitted 7 (node 0), then 9 (the bonus,
    the draft's rank-2 token after node 0, which the tree did not draft)."""
    last = Drafted(5, {ROOT: [7, 8, 4], 0: [3, 5, 9], 1: [1, 2, 3]}, path=[0])
    depth, rank, ok = position_outcomes(last, [7, 9], 3)
    assert depth.tolist() == [1, 1, 1, 2, 2, 2] and rank.tolist() == [0, 1, 2] * 2 and ok.tolist() == [1, 0, 0, 0, 0, 1]
    assert position_outcomes(Drafted(5, {ROOT: [7, 8]}, []), [6], 2)[2].tolist() == [0, 0]  # no rank matched


# ------------------------------------------------------------------ the proposer on tiny models

pytestmark = pytest.mark.usefixtures("one_thread")


def adaptive(target, spec: str, costs=None) -> AdaptiveProposer:
    return AdaptiveProposer(perturbed(target, 0.3), parse_tree(spec), costs or synthetic_costs(target=(0.04, 0.0005)))


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
@pytest.mark.parametrize("every", [1, 3])
@pytest.mark.parametrize("batch", [1, 2, 3])
def test_adaptive_trees_are_lossless(arch, every, batch):
    target = tiny_model(arch, seed=5)
    decoder = SpeculativeDecoder(adaptive(target, f"adaptive:every={every},nodes=8,depth=4,branch=3"), target, [EOS],
                                 max_new_tokens=25)
    results = list(decoder.generate_many(prompts(every + batch, n=4), batch_size=batch))
    assert len(results) == 4
    for res in results:
        assert res.output_ids == target_greedy(target, res.prompt_ids, 25, [EOS])
        assert all(n.depth <= 4 and n.rank < 3 for n in res.nodes) and all(s.tree_size <= 8 for s in res.steps)


def test_row_state_follows_the_batch():
    """Rows join and leave at different times in a batch of 3: each prompt's trees (which depend on its own
    history only, with costs equal at every batch size) are the same as when it is decoded alone."""
    target = tiny_model("qwen2", seed=5)
    spec = "adaptive:every=2,nodes=8,depth=4,branch=3"
    inputs = prompts(4, n=6)

    def trees(batch: int) -> dict:
        decoder = SpeculativeDecoder(adaptive(target, spec), target, [EOS], max_new_tokens=30)
        return {r.prompt_id: [(n.step, n.depth, n.rank) for n in r.nodes] for r in decoder.generate_many(inputs, batch)}

    alone = trees(1)
    assert trees(3) == alone
    sizes = {pid: {sum(1 for s, *_ in nodes if s == step) for step in {s for s, *_ in nodes}} for pid, nodes in alone.items()}
    assert any(len(v) > 1 for v in sizes.values())  # the trees did change along the way


def test_build_proposer_times_the_models_without_a_profile():
    target = tiny_model("qwen2", seed=5)

    class Loaded:
        model = target

    draft = type("Draft", (), {"model": perturbed(target, 0.3)})
    proposer = build_proposer(ModelDrafter(), parse_tree("adaptive:nodes=6,depth=3"), draft, Loaded(), batch=2)
    assert isinstance(proposer, AdaptiveProposer) and proposer.planner.costs.batches == [1, 2]
    assert proposer.planner.costs.info["measured_at"].startswith("startup")
    res = SpeculativeDecoder(proposer, target, [EOS], max_new_tokens=20).generate(prompts(9, n=1)[0].prompt_ids)
    assert res.output_ids == target_greedy(target, res.prompt_ids, 20, [EOS])


def test_adaptive_sampling_is_exact():
    """One adaptive case of tests/test_exactness.py: re-solving after every step, the second step's tree
    depends on the first step's random outcome; the first two tokens still follow the warped target."""
    from test_exactness import PROMPT, SAMPLES, exact_joint, models, pooled_chisquare

    target, draft = models()
    sampling = Sampling(1.0, 0.8)
    proposer = AdaptiveProposer(draft, parse_tree("adaptive:every=1,nodes=4,depth=2,branch=3"),  # starts with one node
                                synthetic_costs(draft=(0.01, 0.0), target=(0.04, 0.01)))
    decoder = SpeculativeDecoder(proposer, target, [], max_new_tokens=2, sampling=sampling, seed=7)
    counts, second = np.zeros((12, 12), dtype=np.int64), set()
    for res in decoder.generate_many([PromptInput(f"s{i}", PROMPT) for i in range(SAMPLES)], batch_size=SAMPLES):
        counts[res.output_ids[0], res.output_ids[1]] += 1
        second |= {s.tree_size for s in res.steps[1:]}
    assert len(second) > 1  # second steps drafted different trees in different rows
    probs = exact_joint(target, PROMPT, sampling)
    assert counts[probs == 0].sum() == 0 and pooled_chisquare(counts, probs) > 0.01


def test_simulated_prompts_helper_is_reproducible():
    assert [p.prompt_ids for p in prompts(3)] == [p.prompt_ids for p in prompts(3)] and random.Random(0).random() < 1
