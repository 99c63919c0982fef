"""Proposers: ``propose(contexts, rngs) -> list[DraftTree]``, one tree per row of the batch.

A proposer that keeps state (a KV cache) is told about batch changes through ``add_rows`` /
``select_rows`` and about each step's outcome through ``commit``; stateless proposers ignore them.
``rngs`` holds each row's own random generator, for proposers that sample; others ignore it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from specdyn.engine.cache import CONTEXT, DEAD, CachedModel, Query
from specdyn.engine.sampling import draw_without_replacement, warped_probs
from specdyn.engine.tree import ROOT, DraftTree, ancestor_mask
from specdyn.engine.verify import distribution_stats, token_stats
from specdyn.sampling_spec import Children, Sampling
from specdyn.specs import DynamicTree, TreeShape


class Proposer(Protocol):
    """The interface every drafter implements (like :class:`~specdyn.engine.verify.Verifier`, a Protocol).

    Drafters that keep no state may subclass it to inherit the no-op row and commit methods."""

    def propose(self, contexts: list[list[int]], rngs: list[torch.Generator] | None = None) -> list[DraftTree]:
        """One draft tree per row of the batch; ``rngs`` (one generator per row) are used only by drafters
        that sample."""
        ...

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
    """A new cache for these rows holding all but the last token of each context.

    Rows are prefilled one at a time (no padding compute), then stacked."""
    lm = CachedModel(model, batch=0)
    for ctx in contexts:
        row = CachedModel(model, batch=1)
        if len(ctx) > 1:
            row.forward(pending_query([ctx[:-1]], [0]), logits_to_keep=1)
        lm.append_rows(row)
    return lm


def last_pending(contexts: list[list[int]], cached: list[int]) -> list[int]:
    """Per row, the query index of the last committed token in a :func:`pending_query`."""
    return [len(c) - k - 1 for c, k in zip(contexts, cached)]


class CachedRows:
    """A model plus its batched cache, kept in step with the batch's rows (shared by draft and target)."""

    def __init__(self, model):
        self.model = model
        self.lm = CachedModel(model)

    def add_rows(self, contexts: list[list[int]]) -> None:
        self.lm.append_rows(prefill(self.model, contexts))

    def select_rows(self, rows: list[int]) -> None:
        self.lm.select_rows(rows)

    def commit(self, paths: list[list[int]]) -> None:
        self.lm.commit(paths)


@dataclass
class Frontier:
    """A node awaiting children: its index (ROOT for the top), rank path, and draft distribution."""

    node: int
    prefix: tuple[int, ...]
    logits: torch.Tensor  # [vocab]


@dataclass
class Picked:
    """The children chosen at one parent, in sibling order, and the distribution they were drawn from
    (None when they are deterministic)."""

    tokens: list[int]
    proposal: torch.Tensor | None = None  # [vocab]


class DraftModelProposer(CachedRows, Proposer):
    """A small causal LM expands a static tree shape level by level, one batched pass per level.

    Children of a node are the draft's top-ranked tokens at that node, in rank order; with
    ``children=Children.SAMPLED`` and a temperature > 0 they are drawn from the draft's distribution
    warped by ``sampling``, without replacement (Sequoia): a node with m child ranks in the shape gets m
    draws, which fill those ranks in order (fewer when the warped distribution has fewer tokens); a drawn
    node's recorded rank is its draw order.
    """

    def __init__(self, model, shape: TreeShape, children: Children = Children.TOPK, sampling: Sampling = Sampling()):
        super().__init__(model)
        self.shape = shape
        self.sampled = children is Children.SAMPLED and not sampling.greedy
        self.sampling = sampling

    def _root_logits(self, contexts) -> list[torch.Tensor]:
        """Feed each row's uncached committed tokens; the draft's logits after the last one, per row."""
        cached = self.lm.context_len()
        logits = self.lm.forward(pending_query(contexts, cached))  # [b, q, vocab]
        return [logits[b, i] for b, i in enumerate(last_pending(contexts, cached))]

    def row_shapes(self, rows: int) -> list[TreeShape]:
        """The shape of each row's tree this step: ``shape`` for every row (the adaptive proposer gives each
        row its own)."""
        return [self.shape] * rows

    def propose(self, contexts, rngs=None):
        trees = [DraftTree() for _ in contexts]
        rngs = rngs or [None] * len(contexts)
        shapes = self.row_shapes(len(contexts))
        frontiers = [[Frontier(ROOT, (), lg)] for lg in self._root_logits(contexts)]
        for depth in range(1, max(s.depth for s in shapes) + 1):
            frontiers = [self._expand(t, f, g, s) for t, f, g, s in zip(trees, frontiers, rngs, shapes)]
            if not any(frontiers):  # nodes at a shape's last level have no children in it
                break
            frontiers = self._score(contexts, trees, frontiers)
        return trees

    def _expand(self, tree: DraftTree, frontier: list[Frontier], rng, shape: TreeShape) -> list[Frontier]:
        """Add each frontier node's children; return the new nodes that have children in the shape."""
        new = []
        for f in frontier:
            ranks = shape.child_ranks(f.prefix)
            picked = self._pick(f.logits, ranks, rng)
            if picked.proposal is not None:
                tree.proposals[f.node] = picked.proposal
            stats = token_stats(f.logits[None], [0] * len(picked.tokens), picked.tokens)  # temperature 1
            for j, (r, tok, prob, entropy) in enumerate(zip(ranks, picked.tokens, stats.prob, stats.entropy)):
                node = tree.add(tok, f.node, r if picked.proposal is None else j, prob, entropy)  # draws: their order
                if shape.child_ranks(f.prefix + (r,)):
                    new.append(Frontier(node, f.prefix + (r,), f.logits))
        return new

    def _pick(self, logits: torch.Tensor, ranks: list[int], rng) -> Picked:
        """The children for these shape ranks: top-ranked tokens, or draws from the warped draft."""
        if not self.sampled:
            top = distribution_stats(logits[None], max(ranks) + 1)
            return Picked([int(top.tokens[0, r]) for r in ranks])
        if rng is None:
            raise ValueError("sampled children need each row's random generator")
        q = warped_probs(logits, self.sampling)  # [vocab]
        return Picked(draw_without_replacement(q, len(ranks), rng), q)

    def _score(self, contexts, trees, frontiers) -> list[list[Frontier]]:
        """One batched draft pass over the frontier nodes; attach each node's own next-token logits."""
        feed = [[f.node for f in fr] for fr in frontiers]
        logits = self.lm.forward(pending_query(contexts, self.lm.context_len(), trees, feed))  # [b, q, vocab]
        return [[Frontier(f.node, f.prefix, logits[b, i]) for i, f in enumerate(fr)] for b, fr in enumerate(frontiers)]


class DynamicDraftProposer(DraftModelProposer):
    """EAGLE-2 style dynamic trees from a draft model.

    A node's value is the product of draft probabilities on its root path. The top level holds the
    draft's ``topk`` best tokens; at each further level (up to ``depth``) the ``topk`` most valuable
    nodes of the previous level are expanded (one batched draft pass) with their ``topk`` best tokens.
    Finally the ``nodes`` most valuable candidates are kept (ancestors are never less valuable than
    their descendants, so the kept set is a tree) and re-indexed breadth-first.

    Children are deterministic at every temperature. Sampling them would not give the min(1, p/q) rule
    its premise: the final cut keeps a drawn child or not depending on its own token's value, so the kept
    siblings are no longer a without-replacement sample of the draft. Deterministic children are verified
    exactly whatever chose them (point-mass rule, :class:`~specdyn.engine.verify.Residual`).
    """

    def __init__(self, model, spec: DynamicTree):
        super().__init__(model, TreeShape(((0,),)))
        self.spec = spec
        self._kept: list[list[int]] = []  # per row: candidate index of each kept node

    def commit(self, paths):
        self.lm.commit([[kept[i] for i in path] for kept, path in zip(self._kept, paths)])

    def propose(self, contexts, rngs=None):
        cands = [DraftTree() for _ in contexts]
        values: list[list[float]] = [[] for _ in contexts]
        frontiers = [[(ROOT, 1.0, lg)] for lg in self._root_logits(contexts)]
        for depth in range(1, self.spec.depth + 1):
            level = [self._grow(c, v, f) for c, v, f in zip(cands, values, frontiers)]
            if depth == self.spec.depth:
                break
            feed = [lv[: self.spec.topk] for lv in level]
            logits = self.lm.forward(pending_query(contexts, self.lm.context_len(), cands, feed))  # [b, q, vocab]
            frontiers = [[(n, v[n], logits[b, i]) for i, n in enumerate(fd)] for b, (fd, v) in enumerate(zip(feed, values))]
        pruned = [prune(c, v, self.spec.nodes) for c, v in zip(cands, values)]
        self._kept = [kept for _, kept in pruned]
        return [tree for tree, _ in pruned]

    def _grow(self, tree: DraftTree, values: list[float], frontier) -> list[int]:
        """Add the top-k children of every frontier node; return the new nodes, most valuable first."""
        new = []
        for parent, value, logits in frontier:
            top = distribution_stats(logits[None], self.spec.topk)
            for r in range(self.spec.topk):
                prob = float(top.probs[0, r])
                new.append(tree.add(int(top.tokens[0, r]), parent, r, prob, float(top.entropy[0])))
                values.append(value * prob)
        return sorted(new, key=lambda n: -values[n])


def prune(tree: DraftTree, values: list[float], n: int) -> tuple[DraftTree, list[int]]:
    """Keep the ``n`` most valuable nodes (ties: shallower first) as a breadth-first tree.

    Returns the pruned tree and, for each of its nodes, its index in ``tree``."""
    depths = tree.depths
    best = sorted(range(len(tree)), key=lambda i: (-values[i], depths[i], i))[:n]
    keep = sorted(best, key=lambda i: (depths[i], i))
    index = {old: new for new, old in enumerate(keep)}
    out = DraftTree()
    for old in keep:
        parent = tree.parents[old]
        out.add(tree.tokens[old], index[parent] if parent != ROOT else ROOT, tree.ranks[old],
                tree.draft_probs[old], tree.draft_entropy[old])
    return out, keep
