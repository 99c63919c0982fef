"""Ceilings of every acceptance measure for a tree shape, checked against exhaustive enumeration."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from specdyn.report.ceilings import at_ceiling, run_ceilings, shape_ceilings
from specdyn.report.levels import NodeTable
from specdyn.stats import Estimate
from treesim import TreeSim, full_tree, simulate


def brute_force_caps(parent: np.ndarray) -> tuple[int, int, int]:
    """Max locally accepted nodes, max path-accepted nodes and max accepted length over every way the
    target's argmax can fall (one child or none per position)."""
    groups = [np.flatnonzero(parent == q) for q in np.unique(parent)]
    best = (0, 0, 0)
    for choice in itertools.product(*[[None, *g] for g in groups]):
        local = np.zeros(len(parent), bool)
        local[[c for c in choice if c is not None]] = True
        path = local.copy()
        for v in range(len(parent)):
            path[v] = local[v] and (parent[v] < 0 or path[parent[v]])
        best = tuple(max(a, b) for a, b in zip(best, (local.sum(), path.sum(), path.sum())))
    return best


@pytest.mark.parametrize("parent", [full_tree(3, 2)[0], full_tree(4, 1)[0], np.array([-1, -1, 0, 0, 2]),
                                    np.array([-1, -1, -1, 0, 0, 0, 3])])
def test_caps_equal_the_best_case_of_every_shape(parent):
    caps, n = shape_ceilings(parent), len(parent)
    local, path, length = brute_force_caps(parent)
    assert caps.acceptance_local == pytest.approx(local / n)
    assert caps.acceptance_path == pytest.approx(path / n)
    assert caps.accepted_per_step == length and caps.accepted_per_step_with_bonus == length + 1
    assert caps.acceptance_level == 1.0 and caps.accept_prob == 1.0


def test_depth3_branch2_and_chain():
    tree = shape_ceilings(full_tree(3, 2)[0])
    assert (tree.acceptance_local, tree.acceptance_path, tree.accepted_per_step) == (0.5, 3 / 14, 3)
    assert tree.local_by_depth == {1: 0.5, 2: 0.5, 3: 0.5}
    assert tree.path_by_depth == {1: 0.5, 2: 0.25, 3: 0.125}
    chain = shape_ceilings(full_tree(8, 1)[0])
    assert (chain.acceptance_local, chain.acceptance_path, chain.accepted_per_step) == (1.0, 1.0, 8)
    assert set(chain.path_by_depth.values()) == {1.0}


def test_run_with_mixed_shapes_and_empty_steps():
    """Two steps: a depth-3 binary tree (14 nodes) and a 2-chain; caps pool over nodes and steps."""
    tree, chain = full_tree(3, 2), full_tree(2, 1)
    parent = np.concatenate([tree[0], chain[0]])
    nodes = NodeTable(prompt=np.zeros(16, np.int64), step=np.repeat([0, 1], [14, 2]),
                      node=np.concatenate([np.arange(14), np.arange(2)]), parent=parent,
                      depth=np.concatenate([tree[1], chain[1]]), accepted_path=np.zeros(16, bool))
    caps = run_ceilings(nodes)
    assert caps.acceptance_local == pytest.approx((7 + 2) / 16)
    assert caps.acceptance_path == pytest.approx((3 + 2) / 16)
    assert caps.accepted_per_step == pytest.approx(2.5)
    assert run_ceilings(nodes, n_steps=4).accepted_per_step == pytest.approx(5 / 4)  # 2 steps drafted nothing
    assert caps.local_by_depth == {1: pytest.approx(2 / 3), 2: pytest.approx(3 / 5), 3: 0.5}


def test_simulated_runs_never_exceed_their_caps():
    run = simulate(TreeSim(means=(0.99, 0.5), prompts=5, concentration=np.inf, rank0=1.0, seed=1))
    for d in (0, 1):
        prompts = np.flatnonzero(run.prompt_domain == d)
        caps = run_ceilings(run.nodes, prompts)
        rows = np.isin(run.nodes.prompt, prompts)
        assert run.accepted_local[rows].mean() <= caps.acceptance_local
        assert run.nodes.accepted_path[rows].mean() <= caps.acceptance_path
    near = run.accepted_local[np.isin(run.nodes.prompt, np.flatnonzero(run.prompt_domain == 0))].mean()
    assert near > 0.98 * 0.5  # a target that always agrees sits at the binary tree's local cap


def test_at_ceiling_flag():
    assert at_ceiling(Estimate(0.485, 0.47, 0.495), 0.5)
    assert not at_ceiling(Estimate(0.40, 0.38, 0.42), 0.5)
    assert at_ceiling(Estimate(2.96, 2.93, 2.99), 3.0)
    assert at_ceiling(Estimate(0.495, float("nan"), float("nan")), 0.5)  # no CI: the value decides
    assert not at_ceiling(Estimate(float("nan"), float("nan"), float("nan")), 0.5)
