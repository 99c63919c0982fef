"""Proposers: ``propose(contexts, rngs) -> list[DraftTree]``, one tree per row of the batch.

A proposer that keeps state (a KV cache) is told about batch changes through ``add_rows`` /
``select_rows`` and about each step's outcome through ``commit``; stateless proposers ignore them.
``rngs`` holds each row's own random generator, for proposers that sample; others ignore it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

import torch

from specdyn.engine.cache import CONTEXT, DEAD, CachedModel, Query
from specdyn.engine.sampling import draw_without_replacement, warped_probs
from specdyn.engine.tree import ROOT, DraftTree, ancestor_mask
from specdyn.engine.verify import TopK, distribution_stats
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
    """A node awaiting children: its index (ROOT for the top), rank path, the draft's logits after it, and
    its value, the product of draft probabilities on its root path (1 at the root)."""

    node: int
    prefix: tuple[int, ...]
    logits: torch.Tensor  # [vocab]
    value: float = 1.0


@dataclass
class Picked:
    """The children chosen at one parent, in sibling order, and the distribution they were drawn from
    (None when they are deterministic)."""

    tokens: list[int]
    proposal: torch.Tensor | None = None  # [vocab]


def flatten(frontiers: list[list[Frontier]]) -> list[tuple[int, Frontier]]:
    """Every frontier node of the batch as (row, node), row by row."""
    return [(b, f) for b, frontier in enumerate(frontiers) for f in frontier]


class DraftModelProposer(CachedRows, Proposer):
    """A small causal LM expands a static tree shape level by level, one batched pass per level.

    Children of a node are the draft's top-ranked tokens at that node, in rank order; with
    ``children=Children.SAMPLED`` and a temperature > 0 they are drawn from the draft's distribution
    warped by ``sampling``, without replacement (Sequoia): a node with m child ranks in the shape gets m
    draws, which fill those ranks in order (fewer when the warped distribution has fewer tokens); a drawn
    node's recorded rank is its draw order.

    ``stop`` (early stop): a node whose value (product of draft probabilities on its root path) is below
    ``stop`` gets no children, and a level none of whose nodes qualifies is not drafted at all, so the
    number of draft passes follows how predictable the text is. 0 keeps every shape node. Only the tree
    shrinks; verification is unchanged, so the output is too. ``full_stats``: compute the draft entropies
    and keep the draft distributions that full node records need (else draft_entropy is NaN).
    """

    def __init__(self, model, shape: TreeShape, children: Children = Children.TOPK, sampling: Sampling = Sampling(),
                 stop: float = 0.0, full_stats: bool = True):
        super().__init__(model)
        self.shape, self.stop, self.full_stats = shape, stop, full_stats
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
        return self.draft(contexts, rngs, [True] * len(contexts))

    def draft(self, contexts, rngs, active: list[bool]) -> list[DraftTree]:
        """Trees for the ``active`` rows (the others get empty trees and ride along in the first pass, which
        keeps their caches current); no pass at all when no row is active."""
        trees = [DraftTree(passes=int(a)) for a in active]
        if not any(active):
            return trees
        rngs = rngs or [None] * len(contexts)
        shapes = self.row_shapes(len(contexts))
        frontiers = [[Frontier(ROOT, (), lg)] if a else [] for lg, a in zip(self._root_logits(contexts), active)]
        for _ in range(max(s.depth for s in shapes)):
            frontiers = self._expand(trees, frontiers, rngs, shapes)
            if not any(frontiers):  # nodes at a shape's last level have no children in it
                break
            frontiers = self._score(contexts, trees, frontiers)
        return trees

    def _expand(self, trees: list[DraftTree], frontiers: list[list[Frontier]], rngs,
                shapes: list[TreeShape]) -> list[list[Frontier]]:
        """Add every frontier node's children (statistics of the whole level at once); return, per row, the
        new nodes that get children of their own."""
        flat = flatten(frontiers)
        top = self._level_top(flat, shapes)
        new: list[list[Frontier]] = [[] for _ in trees]
        for i, (b, f) in enumerate(flat):
            new[b] += self._children(trees[b], f, top, i, rngs[b], shapes[b])
        return new

    def _level_top(self, flat: list[tuple[int, Frontier]], shapes: list[TreeShape], at_least: int = 1) -> TopK:
        """Top-k statistics of every frontier node's logits in one pass; k is the most children any of them
        has in its row's shape, and at least ``at_least``."""
        k = max(max(shapes[b].child_ranks(f.prefix)) for b, f in flat) + 1
        return distribution_stats(torch.stack([f.logits for _, f in flat]), max(k, at_least), self.full_stats)

    def _children(self, tree: DraftTree, f: Frontier, top: TopK, i: int, rng, shape: TreeShape) -> list[Frontier]:
        """Add ``f``'s children (row ``i`` of the level's statistics) as ``shape`` says; return those to
        expand further."""
        ranks = shape.child_ranks(f.prefix)
        picked = self._pick(f.logits, ranks, rng, top.tokens[i].tolist())
        if picked.proposal is not None:
            tree.proposals[f.node] = picked.proposal
        if self.full_stats:
            tree.draft_logits[f.node] = f.logits
        probs, entropy = top.logp[i, picked.tokens].exp().tolist(), float(top.entropy[i])
        out = []
        for j, (r, tok, prob) in enumerate(zip(ranks, picked.tokens, probs)):
            node = tree.add(tok, f.node, r if picked.proposal is None else j, prob, entropy)  # draws: their order
            value = f.value * prob
            if shape.child_ranks(f.prefix + (r,)) and value >= self.stop:
                out.append(Frontier(node, f.prefix + (r,), f.logits, value))
        return out

    def _pick(self, logits: torch.Tensor, ranks: list[int], rng, best: list[int]) -> Picked:
        """The children for these shape ranks: top-ranked tokens (``best``, the draft's top tokens by rank),
        or draws from the warped draft."""
        if not self.sampled:
            return Picked([best[r] for r in ranks])
        if rng is None:
            raise ValueError("sampled children need each row's random generator")
        q = warped_probs(logits, self.sampling)  # [vocab]
        return Picked(draw_without_replacement(q, len(ranks), rng), q)

    def _score(self, contexts, trees, frontiers) -> list[list[Frontier]]:
        """One batched draft pass over the frontier nodes; attach each node's own next-token logits."""
        feed = [[f.node for f in fr] for fr in frontiers]
        logits = self.lm.forward(pending_query(contexts, self.lm.context_len(), trees, feed))  # [b, q, vocab]
        for tree, fd in zip(trees, feed):
            tree.passes += bool(fd)
        return [[replace(f, logits=logits[b, i]) for i, f in enumerate(fr)] for b, fr in enumerate(frontiers)]


class DynamicDraftProposer(DraftModelProposer):
    """EAGLE-2 style dynamic trees from a draft model.

    A node's value is the product of draft probabilities on its root path. The top level holds the
    draft's ``topk`` best tokens; at each further level (up to ``depth``) the ``topk`` most valuable
    nodes of the previous level are expanded (one batched draft pass) with their ``topk`` best tokens.
    Finally the ``nodes`` most valuable candidates are kept (ancestors are never less valuable than
    their descendants, so the kept set is a tree) and re-indexed breadth-first. With ``stop`` > 0, nodes
    valued below it are not expanded (EAGLE-2's value cut), and drafting ends at a level with none left.

    Children are deterministic at every temperature. Sampling them would not give the min(1, p/q) rule
    its premise: the final cut keeps a drawn child or not depending on its own token's value, so the kept
    siblings are no longer a without-replacement sample of the draft. Deterministic children are verified
    exactly whatever chose them (point-mass rule, :class:`~specdyn.engine.verify.Residual`).
    """

    def __init__(self, model, spec: DynamicTree, stop: float = 0.0, full_stats: bool = True):
        super().__init__(model, TreeShape(((0,),)), stop=stop, full_stats=full_stats)
        self.spec = spec
        self._kept: list[list[int]] = []  # per row: candidate index of each kept node

    def commit(self, paths):
        self.lm.commit([[kept[i] for i in path] for kept, path in zip(self._kept, paths)])

    def propose(self, contexts, rngs=None):
        cands = [DraftTree(passes=1) for _ in contexts]
        values: list[list[float]] = [[] for _ in contexts]
        frontiers = [[Frontier(ROOT, (), lg)] for lg in self._root_logits(contexts)]
        for depth in range(1, self.spec.depth + 1):
            level = self._grow(cands, values, frontiers)
            feed = [[n for n in lv[: self.spec.topk] if v[n] >= self.stop] for lv, v in zip(level, values)]
            if depth == self.spec.depth or not any(feed):
                break
            frontiers = self._score(contexts, cands, [[Frontier(n, (), None, v[n]) for n in fd] for fd, v in zip(feed, values)])
        pruned = [prune(c, v, self.spec.nodes) for c, v in zip(cands, values)]
        self._kept = [kept for _, kept in pruned]
        return [tree for tree, _ in pruned]

    def _grow(self, trees: list[DraftTree], values: list[list[float]], frontiers) -> list[list[int]]:
        """Add the top-k children of every frontier node (statistics of the whole level at once); return,
        per row, the new nodes, most valuable first."""
        flat = flatten(frontiers)
        top = distribution_stats(torch.stack([f.logits for _, f in flat]), self.spec.topk, self.full_stats)
        toks, probs, entropy = top.tokens.tolist(), top.probs.tolist(), top.entropy.tolist()
        new: list[list[int]] = [[] for _ in trees]
        for i, (b, f) in enumerate(flat):
            if self.full_stats:
                trees[b].draft_logits[f.node] = f.logits
            for r in range(self.spec.topk):
                new[b].append(trees[b].add(toks[i][r], f.node, r, probs[i][r], entropy[i]))
                values[b].append(f.value * probs[i][r])
        return [sorted(n, key=lambda x: -v[x]) for n, v in zip(new, values)]


def prune(tree: DraftTree, values: list[float], n: int) -> tuple[DraftTree, list[int]]:
    """Keep the ``n`` most valuable nodes (ties: shallower first) as a breadth-first tree, with the draft
    distributions of the kept parent positions and the tree's pass count.

    Returns the pruned tree and, for each of its nodes, its index in ``tree``."""
    depths = tree.depths
    best = sorted(range(len(tree)), key=lambda i: (-values[i], depths[i], i))[:n]
    keep = sorted(best, key=lambda i: (depths[i], i))
    index = {old: new for new, old in enumerate(keep)} | {ROOT: ROOT}
    out = DraftTree(passes=tree.passes)
    for old in keep:
        out.add(tree.tokens[old], index[tree.parents[old]], tree.ranks[old], tree.draft_probs[old], tree.draft_entropy[old])
    out.draft_logits = {index[p]: lg for p, lg in tree.draft_logits.items() if p in index}
    return out, keep
