"""Per-level acceptance α: the acceptance rate that fits the reference study (docs/report.md).

A *trial* is a tree position the greedy acceptance walk reached and that has drafted children: the root
(the last committed token) of every step with at least one drafted node, then every ``accepted_path``
node with at least one child. The trial *succeeds* when one of its children is ``accepted_path``. Its
depth is the depth of the children it tests (1 for the root). α = successes / trials, pooled over the
trials of a group of prompts (a domain, all prompts) or of one depth.

Under a constant α at every level of a full depth-d tree the accepted length without the bonus token is
E[L] = α + α² + … + α^d (:func:`expected_length`). With prompt-to-prompt variation of α this is only an
approximation (Jensen: E[α²] ≥ E[α]²).

:func:`trial_table` lists the trials (the reached nodes grouped by their parent position). The counts
are kept per prompt and depth (:class:`LevelTrials`) so that they plug into the report's prompt-level
bootstrap as per-prompt sufficient sums (:func:`add_level_sums`, :func:`alpha`, :func:`alpha_by_depth`);
so do the sums of a trial-level Pearson correlation between a per-position quantity (e.g. the draft's
entropy at the trial position) and trial success (:func:`add_trial_pearson_sums`,
:func:`trial_pearson`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specdyn.report.stats import PearsonParts, Resampled, SumsLayout, correlation_samples, moment_sums, ratio
from specdyn.stats import Sampled

TRIALS, SUCCESSES = "level:trials", "level:successes"  # SumsLayout blocks, one column per depth


@dataclass
class NodeTable:
    """The node columns every tree statistic needs (one entry per node record, any row order).

    ``prompt`` indexes prompts 0..n_prompts-1; ``parent`` is the parent's ``node`` index in the same
    (prompt, step), -1 for a child of the last committed token.
    """

    prompt: np.ndarray
    step: np.ndarray
    node: np.ndarray
    parent: np.ndarray
    depth: np.ndarray
    accepted_path: np.ndarray


@dataclass
class TrialTable:
    """One row per trial: its prompt, depth (of the children it tests), success, and ``child``, the row
    of one of its children (per-position quantities such as the entropy at the trial position are
    recorded on every child; read them from this row)."""

    prompt: np.ndarray
    depth: np.ndarray
    success: np.ndarray
    child: np.ndarray


@dataclass
class LevelTrials:
    """Trials and successes per prompt (rows) and trial depth (columns, labelled by ``depths``)."""

    depths: np.ndarray
    trials: np.ndarray
    successes: np.ndarray

    def alpha(self, prompts: np.ndarray | slice = slice(None)) -> float:
        """Pooled α over the given prompts (NaN without trials)."""
        return float(ratio(self.successes[prompts].sum(), self.trials[prompts].sum()))


def step_keys(nodes: NodeTable) -> np.ndarray:
    """One integer per (prompt, step), increasing in both."""
    span = int(nodes.step.max()) + 1 if len(nodes.step) else 1
    return nodes.prompt.astype(np.int64) * span + nodes.step


def trial_table(nodes: NodeTable, reached: np.ndarray) -> TrialTable:
    """Every trial of the run: the reached nodes (``reached``: the run folder reader's ``parent_reached``)
    grouped by (prompt, step, parent); a group succeeds when one of its nodes is on the accepted path."""
    rows = np.flatnonzero(reached)
    span = int(nodes.parent.max()) + 2
    key = step_keys(nodes)[rows] * span + nodes.parent[rows] + 1
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    success = np.bincount(inverse, weights=nodes.accepted_path[rows], minlength=len(first)) > 0
    child = rows[first]
    return TrialTable(nodes.prompt[child], nodes.depth[child], success, child)


def _per_prompt(prompt, depth_idx, n_prompts: int, n_depths: int, weights=None) -> np.ndarray:
    flat = np.bincount(prompt * n_depths + depth_idx, weights=weights, minlength=n_prompts * n_depths)
    return flat.reshape(n_prompts, n_depths).astype(float)


def level_trials(trials: TrialTable, n_prompts: int, depth_cap: int | None = None) -> LevelTrials:
    """Trials and successes per prompt and trial depth; ``depth_cap`` pools depths >= the cap into one
    column labelled by the cap."""
    depth = trials.depth if depth_cap is None else np.minimum(trials.depth, depth_cap)
    depths = np.unique(depth) if len(depth) else np.array([1])
    idx = np.searchsorted(depths, depth)
    return LevelTrials(depths, _per_prompt(trials.prompt, idx, n_prompts, len(depths)),
                       _per_prompt(trials.prompt, idx, n_prompts, len(depths), trials.success))


def add_level_sums(layout: SumsLayout, levels: LevelTrials) -> None:
    """Register the per-prompt trial and success counts (one column per depth) for the bootstrap."""
    layout.add(TRIALS, levels.trials)
    layout.add(SUCCESSES, levels.successes)


def alpha(group: Resampled) -> Sampled:
    """Pooled α of a resampled group of prompts, on the data and on every resample."""
    return group.sample(lambda g: ratio(g(SUCCESSES).sum(axis=-1), g(TRIALS).sum(axis=-1)))


def alpha_by_depth(group: Resampled, levels: LevelTrials) -> dict[int, Sampled]:
    """α among the trials of each depth (keyed by depth) with at least one trial in the group."""
    point, boot = group.columns(lambda g: ratio(g(SUCCESSES), g(TRIALS)))
    counts = group.get(TRIALS)[0]
    return {int(d): Sampled(float(point[j]), boot[:, j])
            for j, d in enumerate(levels.depths) if counts[j] > 0}


def expected_length(alpha_value, depth: int):
    """α + α² + … + α^depth: accepted tokens per step (bonus excluded) under a constant α in a tree
    whose every reached position has children down to ``depth``."""
    a = np.asarray(alpha_value, dtype=float)
    return sum(a**k for k in range(1, depth + 1))


def add_trial_pearson_sums(layout: SumsLayout, trials: TrialTable, x: np.ndarray, name: str) -> None:
    """Per-prompt sums for the Pearson correlation between ``x`` (one value per trial) and trial
    success, and for its within- and between-prompt parts (:func:`specdyn.report.stats.moment_sums`)."""
    layout.add(f"trial-r:{name}", moment_sums(trials.prompt, layout.n_prompts, x, trials.success))


def trial_pearson_parts(group: Resampled, name: str) -> PearsonParts:
    """Trial-level Pearson r registered by :func:`add_trial_pearson_sums` and its within- and
    between-prompt parts, each a :class:`~specdyn.stats.Sampled` (the data and the resamples)."""
    return correlation_samples(group, f"trial-r:{name}")[0]


def trial_pearson(group: Resampled, name: str) -> Sampled:
    """Trial-level Pearson r registered by :func:`add_trial_pearson_sums`, on the data and resamples."""
    return trial_pearson_parts(group, name).total
