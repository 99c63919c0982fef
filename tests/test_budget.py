"""Budget advice: acceptance vectors from records, Sequoia's DP (against brute force), the cost model,
the per-domain choice and `specdyn budget` on synthetic run folders."""

from __future__ import annotations

import json
import math
import random
from dataclasses import replace

import numpy as np
import pyarrow as pa
import pytest

from specdyn.budget import (
    CostModel, acceptance_vectors, best_trees, draft_passes, expected_accepted, fit_linear, plan_domain, price,
    sequoia_table, step_seconds,
)
from specdyn.budget.acceptance import AcceptanceVector
from specdyn.cli import main
from specdyn.config import RunConfig
from specdyn.defaults import DEFAULT_TREE
from specdyn.engine import GenerationResult
from specdyn.engine.cheap import int8_draft
from specdyn.engine.timing import _bench, measure_timings
from specdyn.errors import SpecdynError
from specdyn.budget.replay import replay
from specdyn.pipeline import cheaper_drafters
from specdyn.records import NodeRecord, Role, StepRecord, Timing
from specdyn.rundir.manifest import RunManifest, RunStatus
from specdyn.rundir.reader import load_run, run_from_tables
from specdyn.rundir.writer import FinishedPrompt, RunWriter
from specdyn.specs import TreeShape, parse_drafter, parse_tree, shape_from_paths, static_shape
from tiny import perturbed, save_tiny_pair, tiny_model

# ------------------------------------------------------------------ synthetic runs (also used by test_compare)


def simulate(prompt_id: str, shape: TreeShape, p: list[float], steps: int, rng: random.Random, step_seconds: float):
    """A GenerationResult whose greedy acceptance follows ``p``: at each accepted node, the child of rank r
    is the accepted one with probability p[r] (ranks outside the tree: nothing accepted)."""
    index = {path: i for i, path in enumerate(shape.paths)}
    res = GenerationResult(prompt_id, [1, 2, 3])
    for s in range(steps):
        path, prefix = [], ()
        while shape.child_ranks(prefix):
            u, cum = rng.random(), np.cumsum(p)
            r = int(np.searchsorted(cum, u, side="right"))
            if r not in shape.child_ranks(prefix):
                break
            prefix += (r,)
            path.append(index[prefix])
        on = set(path)
        for path_, i in index.items():
            parent = index[path_[:-1]] if len(path_) > 1 else -1
            res.nodes.append(NodeRecord(prompt_id, s, i, parent, len(path_), path_[-1], 10 + i, 0.5, 1.0, 0.5, 1.0,
                                        1.0, i in on, i in on))
        res.steps.append(StepRecord(prompt_id, s, shape.size, len(path), step_seconds / 2, step_seconds / 2,
                                    len(res.output_ids), shape.depth))
        res.output_ids += [7] * (len(path) + 1)
    res.seconds = steps * step_seconds
    return res


def make_run(root, tree: str, p_by_domain: dict, prompts: int = 8, steps: int = 40, step_seconds: float = 0.05,
             seed: int = 0, batch_size: int = 1, models: dict | None = None, shape: TreeShape | None = None):
    """A run folder of simulated prompts (ids ``<domain>/<i>``) decoded with ``tree``, written through the
    run-folder writer (``shape``: the shape simulated, for trees without a static one)."""
    config = RunConfig(**{"draft": "d", "target": "t", "tree": tree, "dtype": "float32", "batch_size": batch_size,
                          "device": "cpu", **(models or {})})
    rng, writer = random.Random(seed), RunWriter(root)
    writer.open()
    for dom, p in p_by_domain.items():
        writer.append([FinishedPrompt(simulate(f"{dom}/{i}", shape or config.tree.shape, p, steps, rng, step_seconds), dom,
                                      "sim") for i in range(prompts)])
    writer.write_manifest(RunManifest(RunStatus.COMPLETE, config, counts=writer.counts()))
    return root


def synthetic_costs(draft=(0.010, 0.0005), target=(0.040, 0.002), batches=(1, 4), others=None) -> CostModel:
    """Exact linear costs; ``others``: cheaper drafters' (intercept, slope), timed besides the run's."""
    drafts = [("", draft)] + list((others or {}).items())
    timings = [Timing(Role.DRAFT.value, b, n, a + k * n, drafter=d) for d, (a, k) in drafts for b in batches for n in (1, 8, 32)]
    timings += [Timing(Role.TARGET.value, b, n, target[0] + target[1] * n) for b in batches for n in (1, 8, 32)]
    return CostModel.from_timings(timings, info={"synthetic": True})


# ------------------------------------------------------------------ Sequoia DP


def forests(prefix: tuple, budget: int, depth: int, k: int):
    """Every prefix-closed, rank-contiguous set of paths below ``prefix`` (at most budget nodes, depth levels)."""
    yield from _siblings(prefix, 0, budget, depth, k)


def _siblings(prefix, rank, budget, depth, k):
    yield []
    if rank >= k or budget == 0 or depth == 0:
        return
    child = prefix + (rank,)
    for sub in forests(child, budget - 1, depth - 1, k):
        for rest in _siblings(prefix, rank + 1, budget - 1 - len(sub), depth, k):
            yield [child] + sub + rest


def brute_best(p, budget, depth) -> float:
    return max(expected_accepted(TreeShape(tuple(f)), p) for f in forests((), budget, depth, len(p)) if f)


def assert_valid(shape: TreeShape, budget: int, depth: int, k: int):
    paths = set(shape.paths)
    assert len(paths) == shape.size <= budget and shape.depth <= depth
    for q in paths:
        assert len(q) == 1 or q[:-1] in paths
        assert q[-1] < k and (q[-1] == 0 or q[:-1] + (q[-1] - 1,) in paths)  # siblings contiguous from 0
    assert shape_from_paths([list(q) for q in shape.paths]).paths == shape.paths


@pytest.mark.parametrize("p", [[0.8, 0.3], [0.5, 0.3, 0.15], [0.2, 0.6], [0.9], [0.4, 0.0, 0.3], [0.0, 0.5]])
def test_dp_matches_brute_force(p):
    table = sequoia_table(p, 6, 3)
    for depth in (1, 2, 3):
        for n in range(1, 7):
            best = table.best(n, depth)
            assert_valid(best.shape, n, depth, len(p))
            assert best.expected_accepted == pytest.approx(expected_accepted(best.shape, p))
            assert best.expected_accepted == pytest.approx(brute_best(p, n, depth)), (p, n, depth)


def test_dp_known_optima():
    two = best_trees([0.6, 0.3], 2, 1)[1]
    assert two.shape.paths == ((0,), (1,)) and two.expected_accepted == pytest.approx(0.9)
    deep = best_trees([0.6, 0.3], 2, 2)[1]  # a chain scores 0.6 + 0.36 = 0.96 > 0.9
    assert deep.shape.paths == ((0,), (0, 0)) and deep.expected_accepted == pytest.approx(0.96)
    full = best_trees([1.0], 8, 5)[-1]
    assert full.shape.paths == tuple((0,) * d for d in range(1, 6)) and full.expected_accepted == pytest.approx(5.0)


def test_chain_when_only_rank_zero_is_accepted():
    trees = best_trees([0.7, 0.0, 0.0], 10, 4)
    assert trees[-1].shape.paths == ((0,), (0, 0), (0, 0, 0), (0, 0, 0, 0))
    assert trees[-1].expected_accepted == pytest.approx(sum(0.7**d for d in range(1, 5)))
    assert [t.shape.size for t in trees] == [1, 2, 3, 4, 4, 4, 4, 4, 4, 4]  # zero-value nodes never added
    assert best_trees([0.0, 0.0], 5, 3)[-1].shape.paths == ((0,),)


def test_dp_rejects_bad_inputs():
    for args, msg in ((([0.5], 0, 3), "budget must be >= 1"), (([0.5], 4, 0), "depth must be >= 1"),
                      (([], 4, 3), "non-empty"), (([1.2], 4, 3), "in \\[0, 1\\]")):
        with pytest.raises(SpecdynError, match=msg):
            best_trees(*args)


# ------------------------------------------------------------------ acceptance vectors


def hand_run(domains=("a", "b"), broken: bool = False):
    """A run whose nodes are laid out by hand (rows shuffled), as the run-folder reader assembles it."""
    # (domain, prompt, step, node, parent, depth, rank, accepted_path, accepted_local)
    rows = [
        ("a", "p1", 0, 0, -1, 1, 0, True, True), ("a", "p1", 0, 1, -1, 1, 1, False, False),
        ("a", "p1", 0, 2, 0, 2, 0, False, False), ("a", "p1", 0, 3, 0, 2, 1, True, True),
        ("a", "p1", 0, 4, 1, 2, 0, False, True),  # parent not accepted: left out despite local acceptance
        ("a", "p1", 0, 5, 3 if not broken else 9, 3, 0, False, False),
        ("a", "p1", 1, 0, -1, 1, 0, False, False), ("a", "p1", 1, 1, -1, 1, 1, False, False),
        ("a", "p1", 1, 2, 0, 2, 0, False, True),  # parent not accepted
        ("b", "q1", 0, 0, -1, 1, 0, True, True), ("b", "q1", 0, 1, 0, 2, 0, True, True),
    ]
    rows = [r for r in rows if r[0] in domains]
    random.Random(3).shuffle(rows)
    names = ("domain", "prompt_id", "step", "node", "parent", "depth", "rank", "accepted_path", "accepted_local")
    nodes = {n: [r[i] for r in rows] for i, n in enumerate(names)}
    nodes |= {k: [0.5] * len(rows) for k in ("draft_entropy", "target_entropy", "accept_prob")}
    steps = sorted({(r[1], r[2]) for r in rows})
    sizes = [sum(1 for r in rows if (r[1], r[2]) == s) for s in steps]
    prompts = sorted({(r[1], r[0]) for r in rows})
    return run_from_tables(RunManifest(RunStatus.COMPLETE), [pa.table({
        "prompt_id": [p for p, _ in prompts], "domain": [d for _, d in prompts], "output_ids": [[1]] * len(prompts),
        "steps": [sum(1 for s in steps if s[0] == p) for p, _ in prompts], "seconds": [1.0] * len(prompts)})],
        [pa.table(nodes)], [pa.table({"prompt_id": [s[0] for s in steps], "step": [s[1] for s in steps],
                                       "tree_size": sizes, "accepted": [0] * len(steps)})])


def test_acceptance_vector_on_hand_made_run():
    vecs = acceptance_vectors(hand_run(), min_observations=1)
    a, b = vecs["a"], vecs["b"]
    assert a.trials == [4, 3] and a.accepted == [1, 1] and a.p == pytest.approx([0.25, 1 / 3])
    assert a.depth_trials[1] == [2, 2] and a.depth_rates[2] == pytest.approx([0.0, 1.0])
    assert b.trials == [2] and b.p == [1.0]


def test_too_few_observations():
    only_a = hand_run(domains=("a",))
    assert acceptance_vectors(only_a, min_observations=4)["a"].p == [0.25]  # rank 1 (3 trials) left out
    with pytest.raises(SpecdynError, match=r"'a' has 4 parent-accepted observations of rank 0; at least 5"):
        acceptance_vectors(only_a, min_observations=5)
    with pytest.raises(SpecdynError, match="parent absent"):  # the reader refuses a run with a missing parent
        hand_run(domains=("a",), broken=True)


def test_vector_from_simulated_run_recovers_p(tmp_path):
    run = make_run(tmp_path / "r", "static:depth=3,branch=3", {"code": [0.6, 0.2, 0.1]}, prompts=10, steps=60)
    vec = acceptance_vectors(load_run(run), min_observations=100)["code"]
    assert vec.p == pytest.approx([0.6, 0.2, 0.1], abs=0.05)
    assert vec.trials[0] == vec.trials[1] == vec.trials[2] > 600


# ------------------------------------------------------------------ cost model


def test_fit_recovers_line_and_json_roundtrip():
    rng = np.random.default_rng(0)
    sizes = np.array([1, 2, 4, 8, 16, 32])
    fit = fit_linear(sizes, 0.012 + 0.0031 * sizes + rng.normal(0, 1e-5, sizes.size))
    assert fit.intercept == pytest.approx(0.012, abs=2e-5) and fit.slope == pytest.approx(0.0031, abs=2e-6)
    costs = synthetic_costs()
    assert costs.draft_seconds(9, 1) == pytest.approx(0.010 + 0.0005 * 9)
    assert costs.target_seconds(15, 4) == pytest.approx(0.040 + 0.002 * 15)
    again = CostModel.from_json(json.loads(json.dumps(costs.to_json())))
    assert again == costs
    with pytest.raises(SpecdynError, match="no target timings for batch 2"):
        costs.target_seconds(3, 2)
    clipped = fit_linear([1, 2, 4, 8], [0.01, 0.5, 1.2, 2.6])  # unconstrained: negative intercept
    assert clipped.intercept == 0.0 and clipped.slope > 0 and clipped.rel_error > 0.1
    with pytest.raises(SpecdynError, match="two or more"):
        fit_linear([4, 4], [0.1, 0.2])
    with pytest.raises(SpecdynError, match="malformed"):
        CostModel.from_json({"fits": {}})


def test_cost_model_with_cheaper_drafters_and_without_a_draft_model():
    costs = synthetic_costs(others={"model:quant=int8": (0.004, 0.0002)})
    assert costs.draft_seconds(1, 1) == pytest.approx(0.0105)
    assert list(costs.alternatives) == ["model:quant=int8"]
    cheap = costs.for_drafter("model:quant=int8")
    assert cheap.draft_seconds(1, 1) == pytest.approx(0.0042) and cheap.target_seconds(1, 1) == costs.target_seconds(1, 1)
    assert CostModel.from_json(json.loads(json.dumps(costs.to_json()))) == costs
    with pytest.raises(SpecdynError, match="no timings of drafter"):
        costs.for_drafter("model:quant=int4")
    lookup = CostModel.from_timings([t for t in costs.timings if t.role == "target"], info={"drafter": "lookup:ngram=3"})
    assert lookup.draft_seconds(4, 1) == 0.0 and lookup.batches == [1, 4] and not lookup.poor_fits(1)


def test_measure_costs_on_tiny_models_restores_the_cache():
    target = tiny_model(seed=0)
    bench = _bench(Role.TARGET, target, 2, (3,), 20, __import__("torch").Generator().manual_seed(0))
    first = bench.lm.forward(bench.queries[3])
    bench.lm.commit([[], []])
    assert bench.lm.context_len() == [20, 20]
    assert (bench.lm.forward(bench.queries[3]) == first).all()  # same cache, same logits
    measured = measure_timings(perturbed(target, 0.3), target, sizes=(1, 4), batches=(1, 2), repeats=1, context=16,
                               drafter="model", alternatives={"model:quant=int8": int8_draft(target)})
    costs = CostModel.from_timings(measured.timings, measured.context_tokens, measured.info | {"drafter": "model"})
    assert len(costs.timings) == 12 and all(t.seconds > 0 and len(t.samples) == 1 for t in costs.timings)
    assert costs.batches == [1, 2] and costs.context_tokens == 16
    assert list(costs.alternatives) == ["model:quant=int8"] and set(costs.alternatives["model:quant=int8"]) == {1, 2}


# ------------------------------------------------------------------ choice


def test_draft_passes_and_step_formula():
    assert draft_passes(static_shape(3, 2)) == [1, 2, 4]
    assert draft_passes(static_shape(1, 4)) == [1]
    assert draft_passes(shape_from_paths([[0], [1], [0, 0], [0, 0, 0]])) == [1, 1, 1]
    costs, shape = synthetic_costs(), static_shape(2, 2)  # 6 nodes
    expected = (0.010 + 0.0005) + (0.010 + 0.0005 * 2) + (0.040 + 0.002 * 7)
    assert step_seconds(shape, costs, 1) == pytest.approx(expected)
    c = price(shape, [0.5, 0.25], costs, 1)
    assert c.expected_accepted == pytest.approx(0.75 + 0.75**2)
    assert c.tokens_per_second == pytest.approx((1 + c.expected_accepted) / expected)


def vector(p, trials=1000):
    return AcceptanceVector("x", list(p), [trials] * len(p), [int(x * trials) for x in p], len(p), 200)


def test_choice_follows_the_costs():
    p = [0.7, 0.15, 0.05]
    cheap_nodes = plan_domain(vector(p), synthetic_costs(draft=(0.001, 0.0), target=(0.05, 0.0)), 32, 6, 1)
    dear_nodes = plan_domain(vector(p), synthetic_costs(draft=(0.001, 0.0), target=(0.01, 0.01)), 32, 6, 1)
    dear_draft = plan_domain(vector(p), synthetic_costs(draft=(0.2, 0.0), target=(0.01, 0.0)), 32, 6, 1)
    assert cheap_nodes.best.shape.size >= 20 and dear_nodes.best.shape.size <= 3
    assert dear_draft.best.shape.depth == 1  # every extra level costs a draft pass
    for plan in (cheap_nodes, dear_nodes, dear_draft):
        assert plan.best.tokens_per_second == max(c.tokens_per_second for c in plan.candidates)
        assert len(plan.candidates) == 32 * 6


def test_replay_prices_each_recorded_step(tmp_path):
    shape = static_shape(3, 2)
    run = load_run(make_run(tmp_path / "run", DEFAULT_TREE, {"code": [0.7, 0.15]}, prompts=2, steps=10))
    costs = synthetic_costs()
    got = replay(run, 0, costs, 1)
    assert got.step_seconds == pytest.approx(step_seconds(shape, costs, 1))  # a static tree: the shape's formula
    assert got.draft_passes_per_step == 3 and got.nodes_per_step == 14
    assert got.tokens_per_second == pytest.approx((1 + got.accepted_per_step) / got.step_seconds)
    lookup = replace(run, steps=replace(run.steps, draft_passes=np.zeros_like(run.steps.step)))  # no draft pass at all
    assert replay(lookup, 0, costs, 1).step_seconds == pytest.approx(costs.target_seconds(15, 1))
    cut = replace(run, steps=replace(run.steps, draft_passes=np.ones_like(run.steps.step)))  # early stop after the root
    assert replay(cut, 0, costs, 1).step_seconds == pytest.approx(0.010 + 0.0005 * 7 + costs.target_seconds(15, 1))
    old = replace(run, steps=replace(run.steps, draft_passes=None))  # recorded before draft_passes existed
    assert replay(old, 0, costs, 1).step_seconds == pytest.approx(got.step_seconds)


def test_cheaper_drafters():
    assert [d.text for d in cheaper_drafters(parse_drafter("model"))] == ["model:quant=int8", "model:quant=int8,vocab=32768"]
    assert [d.text for d in cheaper_drafters(parse_drafter("model:quant=int8,stop=0.3"))] == ["model:quant=int8,vocab=32768,stop=0.3"]
    assert cheaper_drafters(parse_drafter("model:quant=int8,vocab=100")) == []
    assert cheaper_drafters(parse_drafter("lookup")) == []


# ------------------------------------------------------------------ `specdyn budget`


@pytest.fixture(scope="module")
def sim_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("budget") / "run"
    return make_run(root, DEFAULT_TREE, {"code": [0.7, 0.15], "chat": [0.35, 0.2]}, batch_size=4)


def test_budget_command_writes_usable_trees(sim_run, tmp_path, capsys):
    synthetic_costs().save(sim_run / "costs.json")
    out = tmp_path / "advice"
    assert main(["budget", str(sim_run), "--out", str(out), "--max-nodes", "12", "--max-depth", "4",
                 "--min-observations", "100"]) == 0
    text = capsys.readouterr().out
    assert "code: p by rank" in text and "own tree static:depth=3,branch=2" in text and "own tree measured" in text
    doc = json.loads((out / "budget.json").read_text())
    assert doc["settings"] == {"max_nodes": 12, "max_depth": 4, "min_observations": 100, "batch": 4}
    for dom in ("code", "chat"):
        entry = doc["domains"][dom]
        shape = parse_tree(f"paths:{out / entry['paths_file']}").shape
        assert [list(q) for q in shape.paths] == entry["recommended"]["paths"]
        assert shape.size <= 12 and shape.depth <= 4
        assert entry["recommended"]["tokens_per_second"] >= entry["own_tree"]["tokens_per_second"]
        assert entry["recommended"]["tokens_per_second"] == max(c["tokens_per_second"] for c in entry["candidates"])
        assert entry["measured"]["steps"] == 8 * 40
        assert entry["replayed"]["draft_passes_per_step"] == 3 and entry["drafters"] == []
    assert doc["domains"]["code"]["recommended"]["depth"] > doc["domains"]["chat"]["recommended"]["depth"]


def test_budget_recommends_a_cheaper_drafter_where_it_wins(sim_run, tmp_path, capsys):
    others = {"model:quant=int8": (0.002, 0.0001), "model:quant=int8,vocab=32768": (0.5, 0.0)}  # one wins, one loses
    synthetic_costs(others=others).save(sim_run / "costs.json")
    out = tmp_path / "advice"
    assert main(["budget", str(sim_run), "--out", str(out), "--min-observations", "100"]) == 0
    text = capsys.readouterr().out
    assert text.count("recommendation: --drafter model:quant=int8:") == 2 and "--drafter model:quant=int8,vocab" not in text
    entry = json.loads((out / "budget.json").read_text())["domains"]["code"]
    choices = {d["drafter"]: d for d in entry["drafters"]}
    assert choices["model:quant=int8"]["best"]["tokens_per_second"] > entry["recommended"]["tokens_per_second"]
    assert choices["model:quant=int8"]["replayed"]["tokens_per_second"] > entry["replayed"]["tokens_per_second"]


def test_budget_command_errors(sim_run, tmp_path, capsys):
    (sim_run / "costs.json").unlink(missing_ok=True)
    assert main(["budget", str(sim_run), "--min-observations", "100"]) == 2
    assert "pass --measure" in capsys.readouterr().err
    synthetic_costs(batches=(1,)).save(sim_run / "costs.json")
    assert main(["budget", str(sim_run), "--min-observations", "100"]) == 2  # the run used batch 4
    assert "no draft timings for batch 4" in capsys.readouterr().err
    assert main(["budget", str(sim_run), "--min-observations", "100000", "--batch", "1"]) == 2
    assert "at least 100000 are needed" in capsys.readouterr().err
    assert main(["budget", str(sim_run), "--max-nodes", "0"]) == 2
    assert "--max-nodes must be >= 1" in capsys.readouterr().err
    assert main(["budget", str(tmp_path)]) == 2
    assert "not a specdyn run folder" in capsys.readouterr().err
    assert math.isfinite(synthetic_costs().target_seconds(1, 1))


def test_budget_measure_times_the_runs_models(tmp_path, capsys):
    pair = save_tiny_pair(tmp_path / "models")
    run = make_run(tmp_path / "run", DEFAULT_TREE, {"code": [0.7, 0.15]}, batch_size=2, models=pair)
    assert main(["budget", str(run), "--measure", "--repeats", "1", "--min-observations", "100", "--max-nodes", "8"]) == 0
    costs = CostModel.load(run / "costs.json")
    assert costs.batches == [1, 2, 4] and costs.info["draft"] == pair["draft"] and costs.info["drafter"] == "model"
    assert list(costs.alternatives) == ["model:quant=int8"]  # no token list for the tiny tokenizer: no vocab=K
    assert (run / "budget" / "code.json").is_file()
    assert "timing" in capsys.readouterr().err
