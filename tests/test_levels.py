"""Per-level acceptance α: hand-built trees, a brute-force walk, E[L] = α + α² + α³, bootstrap sums."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize

from specdyn.report.levels import (
    NodeTable, add_level_sums, add_trial_pearson_sums, alpha, alpha_by_depth, expected_length,
    level_trials, trial_table, trial_pearson,
)
from specdyn.report.stats import SumsLayout, resample_group
from specdyn.stats import resample_counts
from treesim import TreeSim, full_tree, reached_of, shuffled, simulate

PARENT, DEPTH, RANK = full_tree(3, 2)  # 14 nodes: 0-1 depth 1, 2-5 depth 2, 6-13 depth 3


def table(steps: list[tuple[int, int, list[int]]], parent=PARENT, depth=DEPTH) -> NodeTable:
    """Nodes of the given (prompt, step, accepted path node ids) steps, all with the same tree."""
    cols = {k: [] for k in ("prompt", "step", "node", "parent", "depth", "accepted_path")}
    for prompt, step, path in steps:
        n = len(parent)
        cols["prompt"] += [prompt] * n
        cols["step"] += [step] * n
        cols["node"] += list(range(n))
        cols["parent"] += list(parent)
        cols["depth"] += list(depth)
        cols["accepted_path"] += [v in path for v in range(n)]
    return NodeTable(**{k: np.array(v) for k, v in cols.items()})


def counts(nodes: NodeTable, n_prompts: int):
    lv = level_trials(trial_table(nodes, reached_of(nodes)), n_prompts)
    return lv.depths.tolist(), lv.trials.tolist(), lv.successes.tolist()


def test_hand_built_trees():
    # prompt 0: path 0 -> 3 (stops: neither child of 3 accepted); nothing accepted; full path 1 -> 4 -> 10
    nodes = table([(0, 0, [0, 3]), (0, 1, []), (1, 0, [1, 4, 10])])
    depths, trials, wins = counts(nodes, 2)
    assert depths == [1, 2, 3]
    assert trials == [[2, 1, 1], [1, 1, 1]]  # the leaf 10 has no children: no trial at depth 4
    assert wins == [[1, 1, 0], [1, 1, 1]]
    assert level_trials(trial_table(nodes, reached_of(nodes)), 2).alpha() == pytest.approx(5 / 7)


def test_irregular_tree_and_chain():
    # node 0 has children 2, 3; node 1 has none; node 2 has child 4.  Path 1: a leaf, no deeper trial.
    parent, depth = np.array([-1, -1, 0, 0, 2]), np.array([1, 1, 2, 2, 3])
    nodes = table([(0, 0, [1]), (0, 1, [0, 3]), (0, 2, [0, 2])], parent, depth)
    assert counts(nodes, 1) == ([1, 2, 3], [[3, 2, 1]], [[3, 2, 0]])
    chain_p, chain_d = np.array([-1, 0, 1, 2]), np.array([1, 2, 3, 4])
    chain = table([(0, 0, [0, 1]), (0, 1, [0, 1, 2, 3])], chain_p, chain_d)
    assert counts(chain, 1) == ([1, 2, 3, 4], [[2, 2, 2, 1]], [[2, 2, 1, 1]])


def brute_force(nodes: NodeTable, n_prompts: int, max_depth: int) -> tuple[np.ndarray, np.ndarray]:
    """Walk every step from the root in Python: a trial per reached position with children."""
    trials, wins = np.zeros((n_prompts, max_depth)), np.zeros((n_prompts, max_depth))
    for p, s in set(zip(nodes.prompt.tolist(), nodes.step.tolist())):
        rows = np.flatnonzero((nodes.prompt == p) & (nodes.step == s))
        children = {}
        for r in rows:
            children.setdefault(int(nodes.parent[r]), []).append(r)
        position, level = -1, 1
        while position in children:
            trials[p, level - 1] += 1
            accepted = [r for r in children[position] if nodes.accepted_path[r]]
            if not accepted:
                break
            wins[p, level - 1] += 1
            position, level = int(nodes.node[accepted[0]]), level + 1
    return trials, wins


def random_trees(seed: int, n_prompts: int = 5) -> NodeTable:
    """Random tree shapes per step, one locally accepted child per position with prob 0.6."""
    rng = np.random.default_rng(seed)
    cols = {k: [] for k in ("prompt", "step", "node", "parent", "depth", "accepted_path")}
    for p in range(n_prompts):
        for s in range(rng.integers(1, 6)):
            n = int(rng.integers(1, 16))
            parent = np.array([-1] + [int(rng.integers(-1, v)) for v in range(1, n)])
            depth = np.zeros(n, int)
            for v in range(n):
                depth[v] = 1 if parent[v] < 0 else depth[parent[v]] + 1
            local = np.zeros(n, bool)
            for q in np.unique(parent):
                kids = np.flatnonzero(parent == q)
                if rng.random() < 0.6:
                    local[rng.choice(kids)] = True
            path = np.array([local[v] for v in range(n)])
            for v in range(n):
                path[v] = local[v] and (parent[v] < 0 or path[parent[v]])
            for key, values in (("prompt", [p] * n), ("step", [s] * n), ("node", range(n)),
                                ("parent", parent), ("depth", depth), ("accepted_path", path)):
                cols[key] += list(values)
    order = rng.permutation(len(cols["prompt"]))
    return NodeTable(**{k: np.array(v)[order] for k, v in cols.items()})


@pytest.mark.parametrize("seed", range(6))
def test_matches_brute_force_walk(seed):
    nodes = random_trees(seed)
    lv = level_trials(trial_table(nodes, reached_of(nodes)), 5)
    trials, wins = brute_force(nodes, 5, int(nodes.depth.max()) + 1)
    cols = lv.depths - 1
    assert np.array_equal(lv.trials, trials[:, cols]) and np.array_equal(lv.successes, wins[:, cols])
    assert trials[:, np.setdiff1d(np.arange(trials.shape[1]), cols)].sum() == 0


def test_depth_cap_pools_deep_trials():
    nodes = table([(0, 0, [0, 2, 6])])
    lv = level_trials(trial_table(nodes, reached_of(nodes)), 1, depth_cap=2)
    assert lv.depths.tolist() == [1, 2]
    assert lv.trials.tolist() == [[1, 2]] and lv.successes.tolist() == [[1, 2]]


def test_row_order_and_reached_nodes():
    run = simulate(TreeSim(means=(0.6, 0.8), prompts=4, seed=1))
    a = level_trials(trial_table(run.nodes, reached_of(run.nodes)), run.n_prompts)
    b = level_trials(trial_table(shuffled(run).nodes, reached_of(shuffled(run).nodes)), run.n_prompts)
    assert np.array_equal(a.trials, b.trials) and np.array_equal(a.successes, b.successes)
    reached = reached_of(run.nodes)
    # a reached node is accepted on the path exactly when it is accepted locally
    assert np.array_equal(run.nodes.accepted_path[reached], run.accepted_local[reached])
    # trials = reached nodes grouped by parent: 2 siblings per position in a binary tree
    assert a.trials.sum() == reached.sum() / 2


def test_constant_alpha_gives_expected_length():
    """With the same α at every level of a depth-3 tree, E[L] = α + α² + α³ (1.0 at α ≈ 0.544)."""
    root = optimize.brentq(lambda a: expected_length(a, 3) - 1.0, 0.1, 0.9)
    assert root == pytest.approx(0.5437, abs=1e-4)
    run = simulate(TreeSim(means=(root,), prompts=400, steps=(20, 30), concentration=np.inf, seed=2))
    lv = level_trials(trial_table(run.nodes, reached_of(run.nodes)), run.n_prompts)
    n = lv.trials.sum()
    assert abs(lv.alpha() - root) < 4 * np.sqrt(root * (1 - root) / n)
    length = run.accepted.mean()
    se = run.accepted.std() / np.sqrt(len(run.accepted))
    assert abs(length - expected_length(root, 3)) < 4 * se
    assert abs(length - expected_length(lv.alpha(), 3)) < 4 * se + 0.01
    by_depth = lv.successes.sum(axis=0) / lv.trials.sum(axis=0)
    assert np.all(np.abs(by_depth - root) < 0.03)


def test_bootstrap_sums_match_explicit_resamples():
    run = simulate(TreeSim(means=(0.5, 0.7), prompts=6, seed=3))
    trials = trial_table(run.nodes, reached_of(run.nodes))
    lv = level_trials(trials, run.n_prompts)
    layout = SumsLayout(run.n_prompts)
    add_level_sums(layout, lv)
    x = np.random.default_rng(0).normal(size=len(trials.prompt)) - trials.success  # correlated with success
    add_trial_pearson_sums(layout, trials, x, "x")
    members = np.flatnonzero(run.prompt_domain == 1)
    group = resample_group(layout, layout.matrix(), members, 20, np.random.default_rng(7))
    weights = resample_counts(len(members), 20, np.random.default_rng(7))
    a, by_depth = alpha(group), alpha_by_depth(group, lv)
    assert a.point == pytest.approx(lv.alpha(members))
    for b in (0, 11):
        w = np.zeros(run.n_prompts)
        w[members] = weights[b]
        assert a.boot[b] == pytest.approx((w @ lv.successes).sum() / (w @ lv.trials).sum())
        assert by_depth[3].boot[b] == pytest.approx((w @ lv.successes)[2] / (w @ lv.trials)[2])
    in_group = np.isin(trials.prompt, members)
    r = trial_pearson(group, "x")
    assert r.point == pytest.approx(np.corrcoef(x[in_group], trials.success[in_group])[0, 1], abs=1e-12)
    assert np.all(np.abs(r.boot) <= 1) and r.point < -0.3


def test_reader_parent_reached_matches_a_brute_force_walk_on_shuffled_rows():
    from synthetic import DomainSpec, SyntheticSpec, simulate as synthetic
    from specdyn.rundir.manifest import RunManifest, RunStatus
    from specdyn.rundir.reader import run_from_tables

    nodes, steps, prompts = synthetic(SyntheticSpec(domains=[DomainSpec("a", prompts=5)], seed=1))
    perm = np.random.default_rng(0).permutation(nodes.num_rows)
    n = run_from_tables(RunManifest(RunStatus.COMPLETE), [prompts], [nodes.take(perm)], [steps]).nodes
    on_path = {(p, s, v): bool(a) for p, s, v, a in zip(n.prompt, n.step, n.node, n.accepted_path)}
    expected = [par < 0 or on_path[(p, s, par)] for p, s, par in zip(n.prompt, n.step, n.parent)]
    assert n.parent_reached.tolist() == expected and not all(expected)
