"""Synthetic run folders whose true acceptance statistics are known exactly (a test fixture, also used by
benchmarks/bench_report.py). Folders are written through the real run-folder writer.

Generative model, per domain. Every step drafts the same full tree (``depth`` levels, ``branch``
children per node, breadth-first order). Each *position* (the context after the last committed token,
or after a tree node) is independently "easy" with probability ``pi`` and "hard" otherwise, where ``pi``
is the prompt's easy share: ``easy_share`` for every prompt, or drawn per prompt from a Beta
distribution with mean ``easy_share`` and the given ``concentration`` (a prompt-level random effect,
so nodes of one prompt are correlated). At a position whose children sit at depth ``k``:

- the target's argmax equals the rank-0 child with probability
  ``p0 = sigmoid(logit_s + depth_slope * (k - 1))`` (``logit_s`` = ``easy_logit`` or ``hard_logit``),
  the rank-r child (r >= 1) with probability ``(1 - p0) * h * (1 - h)**(r - 1)``
  (``h = later_rank_share``), and no child otherwise: at most one sibling is locally accepted;
- the drafter's entropy is Gamma-distributed with mean ``entropy_easy`` / ``entropy_hard`` and standard
  deviation ``entropy_sd``; the target's entropy likewise, with means scaled by ``target_entropy_ratio``;
- ``accept_prob = 0.5 * accepted_local + 0.5 * U`` with ``U`` uniform on [0, 1);
- ``draft_prob`` is uniform on [0.5, 0.9) for locally accepted nodes and on [0.05, 0.6) for the others
  (so the draft's calibration curve is known: :func:`calibration_truth`);
- ``draft_target_tv`` (shared by siblings) is uniform on [0.05, 0.35) at easy positions and on
  [0.55, 0.95) at hard ones, so every trial in a TV bin below 0.4 is at an easy position;
- a step's ``output_pos`` counts the tokens the prompt's earlier steps emitted (``accepted`` + 1 each).

``SyntheticSpec.new_fields = False`` writes a run folder as recorded before ``draft_target_tv``,
``output_pos`` and ``draft_passes`` existed (the columns are absent).

``accepted_path`` follows from ``accepted_local`` along root paths, and a step's ``accepted`` is the
number of path-accepted nodes, exactly as the real engine records them. :func:`true_values` computes the
population values of the report's statistics under this model in closed form.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.polynomial import Polynomial

from specdyn.config import RunConfig
from specdyn.rundir.layout import SCHEMAS
from specdyn.rundir.manifest import RunManifest, RunStatus
from specdyn.rundir.writer import RunWriter
from specdyn.specs import StaticTree

NOISE_VARIANCE = 1.0 / 48.0  # variance of 0.5 * U, U ~ uniform[0, 1): accept_prob's noise term


@dataclass
class DomainSpec:
    """True parameters of one synthetic domain (see the module docstring for the model)."""

    name: str
    prompts: int = 40
    min_steps: int = 20
    max_steps: int = 40
    easy_share: float = 0.5
    easy_logit: float = 1.5
    hard_logit: float = -1.5
    depth_slope: float = 0.0
    concentration: float = math.inf
    entropy_easy: float = 1.0
    entropy_hard: float = 3.0
    entropy_sd: float = 0.6
    text: str = "Synthetic prompt {i} of domain {domain}."


@dataclass
class SyntheticSpec:
    """A whole synthetic run: its domains, the tree shape and how it is sharded."""

    domains: list[DomainSpec]
    depth: int = 3
    branch: int = 2
    later_rank_share: float = 0.5
    target_entropy_ratio: float = 0.8
    prompts_per_shard: int = 50
    seed: int = 0
    status: str = "complete"  # the manifest's status: complete or running
    new_fields: bool = True  # record draft_target_tv, output_pos, draft_passes (False: a folder from before they existed)
    pair: tuple[str, str] | None = None  # (draft, target) names in the manifest; None: the config's defaults


NEW_FIELDS = {"nodes": ("draft_target_tv",), "steps": ("output_pos", "draft_passes")}  # added to the records later


def full_tree(depth: int, branch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parent, depth and sibling rank of every node of a full tree, in breadth-first order."""
    parent, depths, ranks, level = [], [], [], [-1]
    for d in range(1, depth + 1):
        nxt = []
        for p in level:
            for r in range(branch):
                parent.append(p), depths.append(d), ranks.append(r)
                nxt.append(len(parent) - 1)
        level = nxt
    return np.array(parent), np.array(depths), np.array(ranks)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _rank_probs(p0, branch: int, share: float) -> list:
    """P(the target picks the rank-r child) for r = 0..branch-1; works on scalars and arrays."""
    return [p0] + [(1 - p0) * share * (1 - share) ** (r - 1) for r in range(1, branch)]


def _gamma(rng, mean, sd):
    mean = np.asarray(mean, dtype=float)
    return rng.gamma(shape=(mean / sd) ** 2, scale=sd**2 / mean)


def simulate(spec: SyntheticSpec) -> tuple[pa.Table, pa.Table, pa.Table]:
    """Draw a run from the model: (nodes, steps, prompts) tables in the run-folder schema, by prompt."""
    rng = np.random.default_rng(spec.seed)
    parent, depth, rank = full_tree(spec.depth, spec.branch)
    pos_depth = np.concatenate([[1], depth + 1])  # depth of the children at position q (q = parent + 1)
    parts = [_simulate_domain(rng, d, spec, parent, depth, rank, pos_depth) for d in spec.domains]
    offsets = np.cumsum([0] + [p["n_prompts"] for p in parts])
    cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0] if k != "n_prompts"}
    ids = np.array([f"{d.name}-{i:05d}" for d in spec.domains for i in range(d.prompts)])
    domain_of_prompt = np.array([d.name for d in spec.domains for _ in range(d.prompts)])
    texts = [d.text.format(i=i, domain=d.name) for d in spec.domains for i in range(d.prompts)]
    node_prompt = np.concatenate([p["node_prompt"] + o for p, o in zip(parts, offsets)])
    step_prompt = np.concatenate([p["step_prompt"] + o for p, o in zip(parts, offsets)])

    def strings(codes, values):
        return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), pa.array(values)).cast(pa.string())

    n_nodes = len(node_prompt)
    nodes = pa.table({
        "prompt_id": strings(node_prompt, ids),
        "step": pa.array(cat["node_step"], pa.int32()),
        "node": pa.array(cat["node"], pa.int32()),
        "parent": pa.array(cat["parent"], pa.int32()),
        "depth": pa.array(cat["depth"], pa.int32()),
        "rank": pa.array(cat["rank"], pa.int32()),
        "token": pa.array(rng.integers(0, 32000, n_nodes), pa.int32()),
        "draft_prob": pa.array(cat["draft_prob"], pa.float32()),
        "draft_entropy": pa.array(cat["draft_entropy"], pa.float32()),
        "target_prob": pa.array(cat["accept_prob"] * cat["draft_prob"], pa.float32()),
        "target_entropy": pa.array(cat["target_entropy"], pa.float32()),
        "accept_prob": pa.array(cat["accept_prob"], pa.float32()),
        "verify_prob": pa.array(cat["accepted_local"].astype(np.float32)),  # greedy: 1.0 or 0.0
        "accepted_local": pa.array(cat["accepted_local"]),
        "accepted_path": pa.array(cat["accepted_path"]),
        "draft_target_tv": pa.array(_total_variation(spec, cat["easy"], parent), pa.float32()),
        "domain": strings(node_prompt, domain_of_prompt),
    })
    n_steps = len(step_prompt)
    steps = pa.table({
        "prompt_id": strings(step_prompt, ids),
        "step": pa.array(cat["step"], pa.int32()),
        "tree_size": pa.array(np.full(n_steps, len(parent)), pa.int32()),
        "accepted": pa.array(cat["accepted"], pa.int32()),
        "output_pos": pa.array(_output_positions(step_prompt, cat["accepted"]), pa.int32()),
        "draft_passes": pa.array(np.full(n_steps, int(np.max(cat["depth"]))), pa.int32()),  # 1 + levels below the top
        "draft_seconds": pa.array(rng.uniform(0.01, 0.02, n_steps)),
        "verify_seconds": pa.array(rng.uniform(0.02, 0.04, n_steps)),
        "domain": strings(step_prompt, domain_of_prompt),
    })
    steps_per_prompt = np.bincount(step_prompt, minlength=len(ids))
    prompts = pa.table({
        "prompt_id": pa.array(ids),
        "domain": pa.array(domain_of_prompt),
        "source": pa.array(["synthetic"] * len(ids)),
        "prompt_ids": pa.array([[1, 2, 3]] * len(ids), pa.list_(pa.int32())),
        "output_ids": pa.array([[4, 5]] * len(ids), pa.list_(pa.int32())),
        "steps": pa.array(steps_per_prompt, pa.int32()),
        "text": pa.array(texts),
        "seconds": pa.array(np.ones(len(ids))),
    })
    if not spec.new_fields:
        nodes, steps = nodes.drop_columns(NEW_FIELDS["nodes"]), steps.drop_columns(NEW_FIELDS["steps"])
    return nodes, steps, prompts


def _total_variation(spec: SyntheticSpec, easy: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """Per node, the TV distance at its parent position (drawn from its own stream: the other columns
    do not change with it)."""
    u = np.random.default_rng([spec.seed, 1]).random(easy.shape)
    return np.where(easy, 0.05 + 0.3 * u, 0.55 + 0.4 * u)[:, parent + 1].ravel()


def _output_positions(step_prompt: np.ndarray, accepted: np.ndarray) -> np.ndarray:
    """Tokens emitted by the prompt's earlier steps (steps are grouped by prompt, in step order)."""
    emitted = accepted + 1
    before = np.cumsum(emitted) - emitted
    first = np.searchsorted(step_prompt, step_prompt)  # row of each prompt's first step
    return before - before[first]


def _simulate_domain(rng, d: DomainSpec, spec: SyntheticSpec, parent, depth, rank, pos_depth) -> dict:
    if math.isinf(d.concentration):
        pi = np.full(d.prompts, d.easy_share)
    else:
        pi = rng.beta(d.easy_share * d.concentration, (1 - d.easy_share) * d.concentration, d.prompts)
    steps_per_prompt = rng.integers(d.min_steps, d.max_steps + 1, d.prompts)
    step_prompt = np.repeat(np.arange(d.prompts), steps_per_prompt)
    n_steps, n_tree, n_pos = len(step_prompt), len(parent), len(parent) + 1
    easy = rng.random((n_steps, n_pos)) < pi[step_prompt][:, None]
    mean_h = np.where(easy, d.entropy_easy, d.entropy_hard)
    h_draft = _gamma(rng, mean_h, d.entropy_sd)
    h_target = _gamma(rng, mean_h * spec.target_entropy_ratio, d.entropy_sd * spec.target_entropy_ratio)
    p0 = _sigmoid(np.where(easy, d.easy_logit, d.hard_logit) + d.depth_slope * (pos_depth - 1))
    cum = np.cumsum(np.stack(_rank_probs(p0, spec.branch, spec.later_rank_share)), axis=0)
    chosen = (rng.random((n_steps, n_pos))[None] >= cum).sum(axis=0)  # == branch: no child accepted
    local = chosen[:, parent + 1] == rank[None, :]
    path = np.zeros_like(local)
    for v in range(n_tree):
        path[:, v] = local[:, v] & (True if parent[v] < 0 else path[:, parent[v]])
    accept_prob = 0.5 * local + 0.5 * rng.random(local.shape)
    step_index = np.concatenate([np.arange(n) for n in steps_per_prompt])
    u = rng.random(local.size)
    return {
        "easy": easy,
        "n_prompts": d.prompts,
        "step_prompt": step_prompt,
        "step": step_index,
        "accepted": path.sum(axis=1),
        "node_prompt": np.repeat(step_prompt, n_tree),
        "node_step": np.repeat(step_index, n_tree),
        "node": np.tile(np.arange(n_tree), n_steps),
        "parent": np.tile(parent, n_steps),
        "depth": np.tile(depth, n_steps),
        "rank": np.tile(rank, n_steps),
        "draft_prob": np.where(local.ravel(), 0.5 + 0.4 * u, 0.05 + 0.55 * u),
        "draft_entropy": h_draft[:, parent + 1].ravel(),
        "target_entropy": h_target[:, parent + 1].ravel(),
        "accept_prob": accept_prob.ravel(),
        "accepted_local": local.ravel(),
        "accepted_path": path.ravel(),
    }


def write_run(spec: SyntheticSpec, run_dir: str | Path) -> Path:
    """Write a synthetic run folder through the real writer (shards of ``prompts_per_shard`` prompts, then
    the manifest) and return its path."""
    nodes, steps, prompts = simulate(spec)
    writer = RunWriter(Path(run_dir))
    writer.open()
    nodes, steps = _with_recorded_fields(nodes, steps)
    ids = prompts.column("prompt_id")
    node_code = pc.index_in(nodes.column("prompt_id"), value_set=ids).to_numpy()
    step_code = pc.index_in(steps.column("prompt_id"), value_set=ids).to_numpy()
    per = spec.prompts_per_shard
    for lo in range(0, len(ids), per):
        hi = lo + per
        writer.append_tables(nodes.filter(pa.array((node_code >= lo) & (node_code < hi))),
                             steps.filter(pa.array((step_code >= lo) & (step_code < hi))), prompts.slice(lo, hi - lo))
    complete = spec.status == RunStatus.COMPLETE.value
    pair = dict(zip(("draft", "target"), spec.pair)) if spec.pair else {}
    writer.write_manifest(RunManifest(
        RunStatus(spec.status), RunConfig(tree=StaticTree(spec.depth, spec.branch), suite="synthetic", **pair),
        started="2025-01-01T00:00:00+00:00", finished="2025-01-01T01:00:00+00:00" if complete else None,
        counts=writer.counts() if complete else None,
    ))
    return writer.root


def _with_recorded_fields(nodes: pa.Table, steps: pa.Table) -> tuple[pa.Table, pa.Table]:
    """The tables with a null column for every record field they lack (the writer stores what the
    records of this specdyn version define; a field that is null throughout reads as not recorded)."""
    def complete(table, schema):
        for name in set(schema.names) - set(table.column_names) - {"domain"}:
            table = table.append_column(name, pa.nulls(table.num_rows, schema.field(name).type))
        return table
    return complete(nodes, SCHEMAS["nodes"]), complete(steps, SCHEMAS["steps"])


# ----------------------------------------------------------------------------------------------------
# Closed-form truth


def _beta_moments(mean: float, concentration: float, order: int) -> np.ndarray:
    """E[pi**j] for j = 0..order, pi ~ Beta with the given mean and concentration (inf: fixed)."""
    if math.isinf(concentration):
        return mean ** np.arange(order + 1)
    a, b = mean * concentration, (1 - mean) * concentration
    return np.cumprod([1.0] + [(a + i) / (a + b + i) for i in range(order)])


def true_values(spec: SyntheticSpec, domain: DomainSpec) -> dict:
    """Population values, under the model, of the statistics the report estimates for ``domain``.

    Every quantity is a polynomial in the prompt's easy share ``pi`` (positions are independent given
    ``pi``), so its expectation is exact from the Beta moments of ``pi``. Node-level quantities pool
    nodes (every step has the full tree, and steps per prompt do not depend on ``pi``).
    """
    parent, depth, rank = full_tree(spec.depth, spec.branch)
    moments = _beta_moments(domain.easy_share, domain.concentration, spec.depth + 2)

    def expect(poly: Polynomial) -> float:
        return float(np.dot(poly.coef, moments[: len(poly.coef)]))

    easy, hard = Polynomial([0.0, 1.0]), Polynomial([1.0, -1.0])
    mu_e, mu_h, sd = domain.entropy_easy, domain.entropy_hard, domain.entropy_sd
    loc, hloc, path, hpath = [], [], [], []
    for v in range(len(parent)):
        pe, ph = (_rank_probs(_sigmoid(lg + domain.depth_slope * (depth[v] - 1)), spec.branch,
                              spec.later_rank_share)[rank[v]]
                  for lg in (domain.easy_logit, domain.hard_logit))
        loc.append(easy * pe + hard * ph)
        hloc.append(easy * (mu_e * pe) + hard * (mu_h * ph))
        above = path[parent[v]] if parent[v] >= 0 else Polynomial([1.0])
        path.append(loc[v] * above)
        hpath.append(hloc[v] * above)
    e_h = expect(easy * mu_e + hard * mu_h)
    var_h = expect(easy * (sd**2 + mu_e**2) + hard * (sd**2 + mu_h**2)) - e_h**2

    def mean(polys, idx=slice(None)) -> float:
        return float(np.mean([expect(p) for p in np.array(polys)[idx]]))

    a_loc, a_path = mean(loc), mean(path)
    wins = {int(k): sum(expect(path[v]) for v in np.flatnonzero(depth == k)) for k in np.unique(depth)}
    tries = {k: 1.0 if k == 1 else wins[k - 1] for k in wins}  # reached positions with children
    cov_loc, cov_path = mean(hloc) - e_h * a_loc, mean(hpath) - e_h * a_path
    var_loc = a_loc * (1 - a_loc)
    reach = [Polynomial([1.0]) if parent[v] < 0 else path[parent[v]] for v in range(len(parent))]
    return {
        "acceptance_local": a_loc,
        "acceptance_path": a_path,
        "accept_prob": 0.5 * a_loc + 0.25,
        "accepted_per_step": float(sum(expect(p) for p in path)),
        "acceptance_level": sum(wins.values()) / sum(tries.values()),
        "acceptance_level_by_depth": {k: wins[k] / tries[k] for k in wins},
        # P(a trial at an easy / hard position succeeds), at depth 1 (every depth when depth_slope = 0)
        "level_success": {s: float(sum(_rank_probs(_sigmoid(lg), spec.branch, spec.later_rank_share)))
                          for s, lg in (("easy", domain.easy_logit), ("hard", domain.hard_logit))},
        "depth_profile": {int(k): mean(loc, depth == k) for k in np.unique(depth)},
        "depth_profile_path": {int(k): mean(path, depth == k) for k in np.unique(depth)},
        "rank_acceptance_vector": {
            int(r): sum(expect(path[v]) for v in np.flatnonzero(rank == r))
            / sum(expect(reach[v]) for v in np.flatnonzero(rank == r))
            for r in np.unique(rank)},
        "draft_entropy_mean": e_h,
        "target_entropy_mean": e_h * spec.target_entropy_ratio,
        "pearson_draft_entropy_accepted_local": cov_loc / math.sqrt(var_h * var_loc),
        "pearson_draft_entropy_accepted_path": cov_path / math.sqrt(var_h * a_path * (1 - a_path)),
        "pearson_draft_entropy_accept_prob":
            0.5 * cov_loc / math.sqrt(var_h * (0.25 * var_loc + NOISE_VARIANCE)),
    }


def calibration_truth(acceptance_local: float, low: float, high: float) -> float:
    """P(accepted_local | draft_prob in [low, high)) under the model, given the pooled local rate."""
    def mass(a, b):  # share of uniform[a, b) inside [low, high)
        return max(0.0, min(b, high) - max(a, low)) / (b - a)
    hit, miss = acceptance_local * mass(0.5, 0.9), (1 - acceptance_local) * mass(0.05, 0.6)
    return hit / (hit + miss)
