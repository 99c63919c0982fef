"""Turning one verified step into records (:mod:`specdyn.records`), at the :class:`RecordLevel` asked for.

Node statistics are computed once per *parent position* of the tree, all positions of a tree in one
batched pass over the vocabulary: the target's log-probabilities there (token probability, entropy) and,
when the drafter kept its distributions, the draft–target total variation distance.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from specdyn.engine.tree import DraftTree
from specdyn.engine.verify import Acceptance, entropy
from specdyn.records import NodeRecord, RecordLevel, StepRecord


@dataclass
class PositionStats:
    """Per tree node, temperature-1 statistics at its parent position: the target's probability of the
    node's token, the target's entropy (nats) and the draft–target total variation (NaN without a draft
    distribution)."""

    target_prob: list[float]
    target_entropy: list[float]
    tv: list[float]


def padded_probs(logits: torch.Tensor, vocab: int) -> torch.Tensor:
    """Softmax of ``[rows, v]`` logits, zero-padded to ``vocab`` columns (a draft and a target may differ
    in padded vocabulary rows)."""
    probs = torch.softmax(logits.float(), -1)
    return torch.nn.functional.pad(probs, (0, vocab - probs.shape[-1]))


def total_variation(draft_logits: list[torch.Tensor], target_logp: torch.Tensor) -> torch.Tensor:
    """0.5 * sum |q - p| per row, q from the draft's logits and p from the target's log-probabilities
    (``[rows, vocab]``), over the larger of the two vocabularies."""
    vocab = max(target_logp.shape[-1], *(d.shape[-1] for d in draft_logits))
    q = padded_probs(torch.stack(draft_logits), vocab)  # [rows, vocab]
    p = torch.nn.functional.pad(target_logp.exp(), (0, vocab - target_logp.shape[-1]))  # [rows, vocab]
    return 0.5 * (q - p).abs().sum(-1)


def position_stats(tree: DraftTree, target_logits: torch.Tensor) -> PositionStats:
    """:class:`PositionStats` of every node; ``target_logits`` is the step's ``[n + 1, vocab]``."""
    positions = sorted(set(tree.parents))
    logp = torch.log_softmax(target_logits[[p + 1 for p in positions]].float(), -1)  # [positions, vocab]
    at = {p: i for i, p in enumerate(positions)}
    rows = [at[p] for p in tree.parents]
    prob = logp[rows, tree.tokens].exp()  # [n]
    tv = torch.full((len(positions),), float("nan"))
    if positions and all(p in tree.draft_logits for p in positions):
        tv = total_variation([tree.draft_logits[p] for p in positions], logp)
    return PositionStats(prob.tolist(), entropy(logp)[rows].tolist(), tv[rows].tolist())


@dataclass
class StepTimes:
    """A row's share of the step's wall time (batch time split evenly among its rows)."""

    draft: float
    verify: float


class Recorder:
    """Appends a step's records to a result's ``steps`` and ``nodes`` lists, as ``level`` says."""

    def __init__(self, level: RecordLevel = RecordLevel.FULL):
        self.level = level

    def record(self, res, tree: DraftTree, logits: torch.Tensor, acc: Acceptance, times: StepTimes) -> None:
        """Records of one row's step, taken before its tokens are emitted (``res.output_ids`` is the output
        so far)."""
        if self.level is RecordLevel.NONE:
            return
        step = len(res.steps)
        res.steps.append(StepRecord(res.prompt_id, step, len(tree), len(acc.path), times.draft, times.verify,
                                    len(res.output_ids), tree.passes))
        if self.level is RecordLevel.FULL:
            res.nodes.extend(node_records(res.prompt_id, step, tree, logits, acc))


def node_records(prompt_id: str, step: int, tree: DraftTree, logits: torch.Tensor, acc: Acceptance) -> list[NodeRecord]:
    """One :class:`NodeRecord` per tree node."""
    stats, on_path = position_stats(tree, logits), set(acc.path)
    out = []
    for i, depth in enumerate(tree.depths):
        q, p = tree.draft_probs[i], stats.target_prob[i]
        out.append(NodeRecord(
            prompt_id, step, i, tree.parents[i], depth, tree.ranks[i], tree.tokens[i], q, tree.draft_entropy[i],
            p, stats.target_entropy[i], min(1.0, p / q) if q > 0 else 1.0, acc.accepted_local[i], i in on_path,
            acc.verify_prob[i], stats.tv[i],
        ))
    return out
