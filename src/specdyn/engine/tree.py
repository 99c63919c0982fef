"""Draft trees: a plain dataclass plus small pure functions that derive masks, positions and paths.
(Tree *shapes* and ``--tree`` specs are pure Python and live in :mod:`specdyn.specs`.)

Nodes are numbered in breadth-first order (every parent precedes its children). ``parents[i] == -1``
means node i is a child of the last committed token (the "root").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

ROOT = -1


@dataclass
class DraftTree:
    """A token tree proposed for one speculative step.

    ``draft_probs[i]`` is the drafter's probability of ``tokens[i]`` at its parent position and
    ``draft_entropy[i]`` the entropy (nats) of the drafter's distribution there (both temperature 1).

    ``proposals`` says how each sibling group was chosen, which sampling verification needs: a parent
    (ROOT for the top level) maps to the ``[vocab]`` distribution its children were drawn from, without
    replacement and in index order; a group not listed is deterministic (the draft's top-ranked tokens, a
    lookup match). A tree lives for one step, so these tensors are freed with it.

    ``draft_logits`` maps each parent position (ROOT for the top level) to the drafter's ``[vocab]``
    temperature-1 logits there, kept only when full records are asked for (they give each node's
    draft–target total variation); drafters without a distribution leave it empty. ``passes``: draft-model
    forward passes that drafted the tree (0 for prompt lookup).
    """

    tokens: list[int] = field(default_factory=list)
    parents: list[int] = field(default_factory=list)
    ranks: list[int] = field(default_factory=list)
    draft_probs: list[float] = field(default_factory=list)
    draft_entropy: list[float] = field(default_factory=list)
    proposals: dict[int, torch.Tensor] = field(default_factory=dict)
    draft_logits: dict[int, torch.Tensor] = field(default_factory=dict)
    passes: int = 0

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def depths(self) -> list[int]:
        """Depth of each node: 1 for children of the root."""
        return node_depths(self.parents)

    def add(self, token: int, parent: int, rank: int, prob: float, entropy: float) -> int:
        """Append a node (its parent must already exist) and return its index."""
        assert parent < len(self.tokens), "parents must precede children"
        for name, value in zip(
            ("tokens", "parents", "ranks", "draft_probs", "draft_entropy"),
            (token, parent, rank, prob, entropy),
        ):
            getattr(self, name).append(value)
        return len(self.tokens) - 1

    def children(self, node: int) -> list[int]:
        """Indices of the children of ``node`` (ROOT for the top level), in index order."""
        return [i for i, p in enumerate(self.parents) if p == node]

    def groups(self) -> dict[int, list[int]]:
        """Every sibling group: parent (ROOT for the top level) -> its children in index order."""
        out: dict[int, list[int]] = {}
        for i, p in enumerate(self.parents):
            out.setdefault(p, []).append(i)
        return out


def node_depths(parents: list[int]) -> list[int]:
    """Depth of every node (1 at the top), from parent indices in breadth-first order."""
    depths: list[int] = []
    for p in parents:
        depths.append(1 if p == ROOT else depths[p] + 1)
    return depths


def ancestor_mask(parents: list[int]) -> torch.Tensor:
    """Boolean ``[n, n]`` mask: ``mask[i, j]`` is True when node j is node i or one of its ancestors.

    Row i is its parent's row plus i itself (parents precede children).
    """
    n = len(parents)
    mask = torch.zeros(n, n, dtype=torch.bool)  # [nodes, nodes]
    for i, p in enumerate(parents):
        if p != ROOT:
            mask[i] = mask[p]
        mask[i, i] = True
    return mask


def node_positions(parents: list[int], context_len: int) -> torch.Tensor:
    """Position id of every node: ``context_len + depth - 1`` (the root token sits at ``context_len - 1``)."""
    return torch.tensor([context_len + d - 1 for d in node_depths(parents)], dtype=torch.long)


def path_to(parents: list[int], node: int) -> list[int]:
    """Node indices from the top level down to ``node`` (inclusive); empty for ROOT."""
    path = []
    while node != ROOT:
        path.append(node)
        node = parents[node]
    return path[::-1]
