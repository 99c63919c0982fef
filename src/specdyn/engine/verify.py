"""Verification: turn a draft tree and the target's logits into an :class:`Acceptance`.

``target_logits`` for a tree of n nodes is ``[n + 1, vocab]``: row 0 is the target's next-token
distribution after the last committed token (it scores the top-level nodes), row ``1 + i`` is the
distribution after node i (it scores node i's children). So node i is scored by row ``parents[i] + 1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from specdyn.engine.tree import ROOT, DraftTree


@dataclass
class Acceptance:
    """Outcome of verifying one tree.

    ``path``: accepted node indices from the top down (its length is the step's accepted length,
    bonus not counted). ``bonus``: the target's own token after the last accepted node.
    ``accepted_local[i]``: node i's token equals the target's argmax at its parent position.
    """

    path: list[int]
    bonus: int
    accepted_local: list[bool]

    def emitted(self, tree: DraftTree) -> list[int]:
        """Tokens this step emits: the accepted draft tokens, then the bonus token."""
        return [tree.tokens[i] for i in self.path] + [self.bonus]


class Verifier(Protocol):
    def verify(self, tree: DraftTree, target_logits: torch.Tensor) -> Acceptance: ...


class GreedyVerifier:
    """Greedy acceptance: walk down from the root, at each level accept the child whose token is the
    target's argmax; stop when none is. Emits exactly what target-only greedy decoding would."""

    def verify(self, tree: DraftTree, target_logits: torch.Tensor) -> Acceptance:
        best = target_logits.argmax(-1).tolist()  # [n + 1]
        local = [tok == best[p + 1] for tok, p in zip(tree.tokens, tree.parents)]
        path, node = [], ROOT
        while True:
            match = [c for c in tree.children(node) if local[c]]
            if not match:
                return Acceptance(path=path, bonus=best[node + 1], accepted_local=local)
            node = match[0]
            path.append(node)


@dataclass
class TargetNodeStats:
    """Per node, from the target's temperature-1 distribution at the node's parent position:
    the probability of the node's token and the distribution's entropy in nats."""

    prob: list[float]
    entropy: list[float]


def target_node_stats(tree: DraftTree, target_logits: torch.Tensor) -> TargetNodeStats:
    """Target probability of each node's token and target entropy at each node's parent position."""
    logp = torch.log_softmax(target_logits.float(), -1)  # [n + 1, vocab]
    entropy = -(logp.exp() * logp).sum(-1)  # [n + 1]
    rows = torch.tensor(tree.parents, dtype=torch.long) + 1  # [n]
    tokens = torch.tensor(tree.tokens, dtype=torch.long)  # [n]
    return TargetNodeStats(prob=logp[rows, tokens].exp().tolist(), entropy=entropy[rows].tolist())


@dataclass
class TopK:
    """The k most likely tokens of each row's temperature-1 distribution, their probabilities, and the
    distribution's entropy in nats."""

    tokens: torch.Tensor  # [rows, k] long
    probs: torch.Tensor  # [rows, k]
    entropy: torch.Tensor  # [rows]


def distribution_stats(logits: torch.Tensor, k: int) -> TopK:
    """Top-k tokens, probabilities and entropy of ``logits`` (``[rows, vocab]``)."""
    logp = torch.log_softmax(logits.float(), -1)  # [rows, vocab]
    entropy = -(logp.exp() * logp).sum(-1)  # [rows]
    top = torch.topk(logp, k, dim=-1)  # [rows, k]
    return TopK(tokens=top.indices, probs=top.values.exp(), entropy=entropy)
