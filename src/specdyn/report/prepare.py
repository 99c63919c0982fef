"""Node, trial and step arrays every report computation shares, derived once from a loaded run.

Depths and sibling ranks are pooled above a cap into one level ("32+", "16+"); entropies are cut into
deciles over all nodes of the run (so bins are comparable across domains). Trials are the per-level
acceptance trials of :mod:`specdyn.report.levels`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specdyn.report.levels import LevelTrials, NodeTable, TrialTable, level_trials, trial_table
from specdyn.report.notions import Entropy, Notion
from specdyn.rundir.reader import RunData

DEPTH_CAP = 32  # depths >= this are pooled into one level "32+"
RANK_CAP = 16  # sibling ranks >= this are pooled into one level "16+"
ENTROPY_BINS = 10  # quantile bins of entropy for the acceptance-vs-entropy curves
MIN_PROMPTS_FOR_CI = 2
FEW_PROMPTS = 20  # below this many prompts a domain's bootstrap CIs are flagged as unreliable


@dataclass
class Capped:
    """Integer levels with everything at or above ``cap`` pooled: the distinct ``values`` (capped) and
    each row's ``index`` into them."""

    values: np.ndarray
    index: np.ndarray
    cap: int

    @classmethod
    def of(cls, values: np.ndarray, cap: int) -> Capped:
        capped = np.minimum(values, cap)
        levels = np.unique(capped)
        return cls(levels, np.searchsorted(levels, capped), cap)

    def label(self, level: int) -> str:
        return f"{level}+" if level >= self.cap else str(int(level))

    @property
    def labels(self) -> list[str]:
        return [self.label(v) for v in self.values]


@dataclass
class Bins:
    """Edges of bins and each row's bin (-1: excluded, e.g. an undefined value)."""

    edges: np.ndarray
    index: np.ndarray

    @classmethod
    def quantiles(cls, values: np.ndarray, count: int) -> Bins:
        edges = np.unique(np.quantile(values, np.linspace(0, 1, count + 1)))
        return cls.fixed(values, edges if len(edges) > 1 else np.array([edges[0], edges[0]]))

    @classmethod
    def fixed(cls, values: np.ndarray, edges: np.ndarray) -> Bins:
        index = np.clip(np.searchsorted(edges[1:-1], values, side="right"), 0, len(edges) - 2)
        return cls(np.asarray(edges, dtype=float), np.where(np.isfinite(values), index, -1))

    @property
    def count(self) -> int:
        return len(self.edges) - 1


@dataclass
class Prepared:
    """Arrays shared by all computations; ``node_domain`` / ``trials`` / ``trial_step`` align with the
    run's nodes, trials and (for each trial) its step row."""

    run: RunData
    node_domain: np.ndarray
    depth: Capped
    rank: Capped
    reached: np.ndarray
    y: dict[Notion, np.ndarray]
    x: dict[Entropy, np.ndarray]
    entropy_bins: dict[Entropy, Bins]
    tree: NodeTable
    trials: TrialTable
    levels: LevelTrials
    trial_step: np.ndarray

    @property
    def n_prompts(self) -> int:
        return len(self.run.prompts.ids)

    def node_mask(self, members: np.ndarray) -> np.ndarray:
        """Nodes of the prompts ``members``."""
        return np.isin(self.run.nodes.prompt, members)

    def trial_x(self, values: np.ndarray) -> np.ndarray:
        """A per-node quantity recorded at the parent position, read for each trial's position."""
        return values[self.trials.child]


def prepare(run: RunData) -> Prepared:
    nodes = run.nodes
    x = {Entropy.DRAFT: nodes.draft_entropy, Entropy.TARGET: nodes.target_entropy}
    tree = NodeTable(nodes.prompt, nodes.step, nodes.node, nodes.parent, nodes.depth, nodes.accepted_path)
    trials = trial_table(tree, nodes.parent_reached)
    return Prepared(
        run=run, node_domain=run.node_domain(), depth=Capped.of(nodes.depth, DEPTH_CAP),
        rank=Capped.of(nodes.rank, RANK_CAP), reached=nodes.parent_reached,
        y={Notion.LOCAL: nodes.accepted_local.astype(float), Notion.PATH: nodes.accepted_path.astype(float),
           Notion.PROB: nodes.accept_prob},
        x=x, entropy_bins={src: Bins.quantiles(v, ENTROPY_BINS) for src, v in x.items()}, tree=tree,
        trials=trials, levels=level_trials(trials, len(run.prompts.ids), DEPTH_CAP),
        trial_step=_step_rows(run, nodes.step[trials.child], trials.prompt))


def _step_rows(run: RunData, step: np.ndarray, prompt: np.ndarray) -> np.ndarray:
    """Row in ``run.steps`` of each (prompt, step) pair."""
    steps = run.steps
    span = int(max(steps.step.max(initial=0), step.max(initial=0))) + 1
    keys = steps.prompt * span + steps.step
    order = np.argsort(keys, kind="stable")
    return order[np.searchsorted(keys[order], prompt * span + step)]


def consistency_notes(prep: Prepared) -> list[str]:
    """Records that do not add up but do not stop the report."""
    run, nodes = prep.run, prep.run.nodes
    on_path = np.bincount(nodes.prompt, weights=nodes.accepted_path, minlength=prep.n_prompts)
    accepted = np.bincount(run.steps.prompt, weights=run.steps.accepted, minlength=prep.n_prompts)
    notes = []
    bad = int(np.sum(np.abs(on_path - accepted) > 0.5))
    if bad:
        notes.append(f"For {bad} prompt(s) the number of accepted_path nodes differs from the sum of "
                     "steps' `accepted`: the records are inconsistent.")
    orphans = int(np.sum(~prep.reached & (nodes.parent >= 0) & nodes.accepted_path))
    if orphans:
        notes.append(f"{orphans} node(s) are accepted_path although their parent is not: inconsistent.")
    return notes
