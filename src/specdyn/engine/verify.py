"""Verification: turn a draft tree and the target's logits into an :class:`Acceptance`.

``target_logits`` for a tree of n nodes is ``[n + 1, vocab]``: row 0 is the target's next-token
distribution after the last committed token (it scores the top-level nodes), row ``1 + i`` is the
distribution after node i (it scores node i's children). So node i is scored by row ``parents[i] + 1``.

Two verifiers: :class:`GreedyVerifier` (temperature 0) and :class:`SamplingVerifier` (multi-draft
speculative sampling, exact for any temperature and top-p; it reduces to the greedy one at temperature 0).
Randomness comes in as an argument: each prompt's own generator, so verifiers hold no per-row state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from specdyn.engine.sampling import draw, warped_probs
from specdyn.sampling_spec import Sampling
from specdyn.engine.tree import ROOT, DraftTree


@dataclass
class Acceptance:
    """Outcome of verifying one tree.

    ``path``: accepted node indices from the top down (its length is the step's accepted length,
    bonus not counted). ``bonus``: the target's own token after the last accepted node.
    ``accepted_local[i]``: node i is the child the verifier accepts at its parent position, whether or
    not the walk reaches that position (greedy: its token is the target's argmax there).
    ``verify_prob[i]``: the probability that node i is accepted once it is tried (its parent position
    is reached and its earlier siblings are rejected); 0/1 under greedy verification.
    """

    path: list[int]
    bonus: int
    accepted_local: list[bool]
    verify_prob: list[float]

    def emitted(self, tree: DraftTree) -> list[int]:
        """Tokens this step emits: the accepted draft tokens, then the bonus token."""
        return [tree.tokens[i] for i in self.path] + [self.bonus]


class Verifier(Protocol):
    def verify(self, tree: DraftTree, target_logits: torch.Tensor,
               rng: torch.Generator | None = None) -> Acceptance: ...


class GreedyVerifier:
    """Greedy acceptance: walk down from the root, at each level accept the child whose token is the
    target's argmax; stop when none is. Emits exactly what target-only greedy decoding would."""

    def verify(self, tree: DraftTree, target_logits: torch.Tensor, rng: torch.Generator | None = None) -> Acceptance:
        best = target_logits.argmax(-1).tolist()  # [n + 1]
        local = [tok == best[p + 1] for tok, p in zip(tree.tokens, tree.parents)]
        path = accepted_walk(tree, local)
        return Acceptance(path, best[path[-1] + 1 if path else 0], local, [float(x) for x in local])


def accepted_walk(tree: DraftTree, local: list[bool]) -> list[int]:
    """From the root down, the first locally accepted child of each position, until a position has none."""
    path, node = [], ROOT
    while match := [c for c in tree.children(node) if local[c]]:
        node = match[0]
        path.append(node)
    return path


def normalized(x: torch.Tensor) -> torch.Tensor:
    """``x`` scaled to sum to 1 (left as is when it sums to 0: a branch taken with probability 0)."""
    total = x.sum()
    return x / total if total > 0 else x


@dataclass(frozen=True)
class Residual:
    """What verification at one tree position still has to match, as its children are rejected.

    ``p``: the target's warped distribution, corrected for the children rejected so far (normalized).
    ``q``: for children drawn from the draft, the distribution the next child was drawn from (the draft's
    warped distribution without the earlier children, normalized); None for deterministic children,
    whose proposal is a point mass on the child.
    """

    p: torch.Tensor  # [vocab] float64
    q: torch.Tensor | None = None  # [vocab] float64

    def accept_prob(self, token: int) -> float:
        """min(1, p(x)/q(x)) for the next child x; with a point mass q(x) = 1, so it is p(x)."""
        if self.q is None:
            return float(self.p[token])
        return min(1.0, float(self.p[token] / self.q[token]))

    def reject(self, token: int) -> "Residual":
        """After rejecting x: p <- norm(max(p - q, 0)) (a point mass just removes x from p); a drawn child
        also leaves q, which is renormalized for the next sibling (drawn without replacement)."""
        if self.q is None:
            return Residual(normalized(self.p.index_fill(0, torch.tensor(token), 0.0)))
        rest = normalized(self.q.index_fill(0, torch.tensor(token), 0.0))
        return Residual(normalized((self.p - self.q).clamp_min(0.0)), rest)


@dataclass
class Trial:
    """One position's children tried in order."""

    accepted: int | None  # the accepted child (node index); None when all are rejected
    probs: dict[int, float]  # per child: its acceptance probability once tried (all earlier siblings rejected)
    residual: Residual  # what is left once every child is rejected: the bonus is drawn from its p


def try_children(start: Residual, tree: DraftTree, kids: list[int], uniforms: list[float]) -> Trial:
    """Try the children ``kids`` in order, accepting the first whose uniform (``uniforms[node]``) falls
    below its acceptance probability. Later siblings are still scored (as if every child were rejected),
    so that all their probabilities are known."""
    res, probs, accepted = start, {}, None
    for c in kids:
        probs[c] = res.accept_prob(tree.tokens[c])
        if accepted is None and uniforms[c] < probs[c]:
            accepted = c
        res = res.reject(tree.tokens[c])
    return Trial(accepted, probs, res)


class SamplingVerifier:
    """Multi-draft speculative sampling: emits tokens distributed exactly as sampling from the warped target.

    At each position (from the root) the children are tried in order (:class:`Residual`); an accepted child
    becomes the next position, with the target's distribution after it; when all are rejected the bonus is
    drawn from the final residual. A group whose parent is in ``tree.proposals`` was drawn from that
    distribution without replacement (min(1, p/q) rule); other groups are deterministic (point masses).

    Random numbers: one uniform per node (its acceptance test) and one for the bonus, drawn from ``rng`` in
    that order every step. Every sibling group is tried, reached by the walk or not, each with its own
    uniforms: that gives ``accepted_local`` everywhere without changing the path's distribution.
    """

    def __init__(self, sampling: Sampling):
        self.sampling = sampling

    def verify(self, tree: DraftTree, target_logits: torch.Tensor, rng: torch.Generator | None = None) -> Acceptance:
        p = warped_probs(target_logits, self.sampling)  # [n + 1, vocab]
        u = torch.rand(len(tree) + 1, generator=rng, dtype=torch.float64).tolist()  # per node, then the bonus
        trials = {pos: try_children(self.start(tree, pos, p[pos + 1]), tree, kids, u)
                  for pos, kids in tree.groups().items()}
        winners = {t.accepted for t in trials.values()}
        local = [i in winners for i in range(len(tree))]
        path = accepted_walk(tree, local)
        end = path[-1] if path else ROOT
        left = trials[end].residual.p if end in trials else p[end + 1]
        probs = {c: a for t in trials.values() for c, a in t.probs.items()}
        return Acceptance(path, draw(left, u[-1]), local, [probs[i] for i in range(len(tree))])

    def start(self, tree: DraftTree, pos: int, p: torch.Tensor) -> Residual:
        """The residual before any child of ``pos`` is tried: the target's distribution there, and the
        children's proposal distribution when they were drawn from the draft."""
        q = tree.proposals.get(pos)
        return Residual(p, None if q is None else normalized(q.double()))


def make_verifier(sampling: Sampling) -> Verifier:
    """The verifier for a sampling setting: greedy at temperature 0, speculative sampling otherwise."""
    return GreedyVerifier() if sampling.greedy else SamplingVerifier(sampling)


def entropy(logp: torch.Tensor) -> torch.Tensor:
    """Entropy in nats of each row of log-probabilities ``[..., vocab]``; tokens of probability 0 (a
    truncated draft head's) add nothing."""
    p = logp.exp()
    return -torch.where(p > 0, p * logp, 0.0).sum(-1)


@dataclass
class TopK:
    """The k most likely tokens of each row's temperature-1 distribution, their probabilities, the
    distribution's entropy in nats (NaN when not asked for) and its log-probabilities."""

    tokens: torch.Tensor  # [rows, k] long
    probs: torch.Tensor  # [rows, k]
    entropy: torch.Tensor  # [rows]
    logp: torch.Tensor  # [rows, vocab]


def distribution_stats(logits: torch.Tensor, k: int, with_entropy: bool = True) -> TopK:
    """Top-k tokens, probabilities and entropy of ``logits`` (``[rows, vocab]``), all rows at once;
    ``with_entropy=False`` skips the entropy (records that nobody reads)."""
    logp = torch.log_softmax(logits.float(), -1)  # [rows, vocab]
    top = torch.topk(logp, k, dim=-1)  # [rows, k]
    ent = entropy(logp) if with_entropy else torch.full(logp.shape[:-1], float("nan"))  # [rows]
    return TopK(tokens=top.indices, probs=top.values.exp(), entropy=ent, logp=logp)
