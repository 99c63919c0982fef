"""Proposers: ``propose(contexts) -> list[DraftTree]``, one tree per row of the batch.

A proposer that keeps state (a KV cache) is told about batch changes through ``add_rows`` /
``select_rows`` and about each step's outcome through ``commit``; stateless proposers ignore them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from specdyn.cache import CONTEXT, DEAD, CachedModel, Query
from specdyn.tree import ROOT, DraftTree, TreeShape, ancestor_mask
from specdyn.verify import distribution_stats


class Proposer:
    """Base class: the interface every drafter implements."""

    def propose(self, contexts: list[list[int]]) -> list[DraftTree]:
        raise NotImplementedError

    def add_rows(self, contexts: list[list[int]]) -> None:
        """New prompts join the batch (below the existing rows)."""

    def select_rows(self, rows: list[int]) -> None:
        """Keep only these rows, in this order."""

    def commit(self, paths: list[list[int]]) -> None:
        """Each row's accepted path (node indices) for the last proposed trees."""


def pad_rows(rows: list[list[int]], fill: int) -> torch.Tensor:
    """Right-pad integer lists into a ``[len(rows), max_len]`` long tensor."""
    width = max(len(r) for r in rows)
    return torch.tensor([r + [fill] * (width - len(r)) for r in rows], dtype=torch.long)


def stack_anc(trees: list[DraftTree]) -> torch.Tensor:
    """Ancestor masks of several trees, zero-padded to ``[batch, n_max, n_max]`` (n_max >= 1)."""
    n = max([len(t) for t in trees] + [1])
    out = torch.zeros(len(trees), n, n, dtype=torch.bool)
    for b, t in enumerate(trees):
        out[b, : len(t), : len(t)] = ancestor_mask(t.parents)
    return out


def pending_query(contexts: list[list[int]], cached: list[int], trees: list[DraftTree] | None = None,
                  nodes: list[list[int]] | None = None) -> Query:
    """Query feeding each row's committed-but-uncached tokens, then (optionally) some of its tree's nodes.

    ``nodes[b]`` lists the tree node indices to feed for row b (default: none).
    """
    trees = trees or [DraftTree() for _ in contexts]
    nodes = nodes or [[] for _ in contexts]
    toks, pos, labels = [], [], []
    for ctx, c, tree, feed in zip(contexts, cached, trees, nodes):
        depths = tree.depths
        toks.append(ctx[c:] + [tree.tokens[i] for i in feed])
        pos.append(list(range(c, len(ctx))) + [len(ctx) - 1 + depths[i] for i in feed])
        labels.append([CONTEXT] * (len(ctx) - c) + list(feed))
    return Query(pad_rows(toks, 0), pad_rows(pos, 0), pad_rows(labels, DEAD), stack_anc(trees))


def prefill(model, contexts: list[list[int]]) -> CachedModel:
    """A new cache for these rows holding all but the last token of each context."""
    lm = CachedModel(model, batch=len(contexts))
    heads = [ctx[:-1] for ctx in contexts]
    if max(len(h) for h in heads) > 0:
        lm.forward(pending_query(heads, [0] * len(heads)), logits_to_keep=1)
        lm.commit([[] for _ in contexts])
    return lm


@dataclass
class Frontier:
    """A node awaiting children: its index (ROOT for the top), rank path, and draft distribution."""

    node: int
    prefix: tuple[int, ...]
    logits: torch.Tensor  # [vocab]


class DraftModelProposer(Proposer):
    """A small causal LM expands a static tree shape level by level, one batched pass per level.

    Children of a node are the draft's top-ranked tokens at that node, in rank order.
    """

    def __init__(self, model, shape: TreeShape):
        self.model, self.shape = model, shape
        self.lm = CachedModel(model)

    def add_rows(self, contexts):
        self.lm.append_rows(prefill(self.model, contexts))

    def select_rows(self, rows):
        self.lm.select_rows(rows)

    def commit(self, paths):
        self.lm.commit(paths)

    def propose(self, contexts):
        trees = [DraftTree() for _ in contexts]
        cached = self.lm.context_len()
        logits = self.lm.forward(pending_query(contexts, cached))  # [b, q, vocab]
        last = [len(c) - k - 1 for c, k in zip(contexts, cached)]
        frontiers = [[Frontier(ROOT, (), logits[b, i])] for b, i in enumerate(last)]
        for depth in range(1, self.shape.depth + 1):
            frontiers = [self._expand(t, f) for t, f in zip(trees, frontiers)]
            if depth == self.shape.depth or not any(frontiers):
                break
            frontiers = self._score(contexts, trees, frontiers)
        return trees

    def _expand(self, tree: DraftTree, frontier: list[Frontier]) -> list[Frontier]:
        """Add each frontier node's children; return the new nodes that have children in the shape."""
        new = []
        for f in frontier:
            ranks = self.shape.child_ranks(f.prefix)
            top = distribution_stats(f.logits[None], max(ranks) + 1)
            for r in ranks:
                tok, prob = int(top.tokens[0, r]), float(top.probs[0, r])
                node = tree.add(tok, f.node, r, prob, float(top.entropy[0]))
                if self.shape.child_ranks(f.prefix + (r,)):
                    new.append(Frontier(node, f.prefix + (r,), f.logits))
        return new

    def _score(self, contexts, trees, frontiers) -> list[list[Frontier]]:
        """One batched draft pass over the frontier nodes; attach each node's own next-token logits."""
        feed = [[f.node for f in fr] for fr in frontiers]
        logits = self.lm.forward(pending_query(contexts, self.lm.context_len(), trees, feed))  # [b, q, vocab]
        return [[Frontier(f.node, f.prefix, logits[b, i]) for i, f in enumerate(fr)] for b, fr in enumerate(frontiers)]
