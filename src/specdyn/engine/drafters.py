"""Drafters other than a separate draft model: prompt lookup and self-speculative early exit."""

from __future__ import annotations

import copy

import torch

from specdyn.engine.proposers import DraftModelProposer, Proposer
from specdyn.engine.tree import ROOT, DraftTree
from specdyn.errors import SpecdynError
from specdyn.specs import TreeShape


class PromptLookupProposer(Proposer):
    """Prompt-lookup (n-gram) drafting: no model, no cost.

    Find the longest suffix of the context (``max_ngram`` down to 1 tokens) that occurred earlier in the
    context; the tokens that followed its occurrences (most recent first) become the tree: a trie of up
    to ``shape.depth`` tokens per continuation, at most ``branch`` children per node, where branch is the
    widest fan-out of ``shape``. Each node's draft_prob is 1.0 (a deterministic draft) and draft_entropy
    0.0, so accept_prob equals the target's probability of the token. No match: an empty tree (the step
    emits the target's token only). ``min_ngram``: shorter matches do not count.
    """

    def __init__(self, shape: TreeShape, max_ngram: int = 3, min_ngram: int = 1):
        self.depth, self.max_ngram, self.min_ngram = shape.depth, max(max_ngram, min_ngram), min_ngram
        self.branch = max(len(shape.child_ranks(p)) for p in ((),) + shape.paths)

    def propose(self, contexts, rngs=None):
        return [self._tree(ctx) for ctx in contexts]

    def continuations(self, ctx: list[int]) -> list[list[int]]:
        """What followed earlier occurrences of the longest matching suffix, most recent first."""
        for n in range(min(self.max_ngram, len(ctx) - 1), self.min_ngram - 1, -1):
            suffix = ctx[-n:]
            starts = [i for i in range(len(ctx) - n - 1, -1, -1) if ctx[i : i + n] == suffix]
            if starts:
                return [ctx[i + n : i + n + self.depth] for i in starts]
        return []

    def _tree(self, ctx: list[int]) -> DraftTree:
        tree, children = DraftTree(), {}  # children[(parent, token)] -> node
        for cont in self.continuations(ctx):
            parent = ROOT
            for tok in cont:
                if (parent, tok) not in children:
                    rank = sum(1 for (p, _) in children if p == parent)
                    if rank >= self.branch:
                        break
                    children[(parent, tok)] = None  # placeholder, filled after breadth-first ordering
                parent = (parent, tok)
        return _trie_to_tree(list(children), tree)


class LookupOrModelProposer(Proposer):
    """Prompt lookup where it finds a match, the draft model elsewhere (``--drafter model:lookup=N``).

    Per row and step: when the context's suffix of ``lookup.min_ngram`` or more tokens occurred earlier in
    it, the lookup's tree is used and the draft model drafts nothing for that row (no pass at all when no
    row needs it); the other rows get the model's tree. The model's cache follows every row: rows that
    used lookup have their new tokens fed in the model's next pass.
    """

    def __init__(self, lookup: PromptLookupProposer, model: DraftModelProposer):
        self.lookup, self.model = lookup, model

    def propose(self, contexts, rngs=None):
        found = self.lookup.propose(contexts)
        drafted = self.model.draft(contexts, rngs, [len(t) == 0 for t in found])
        return [f if len(f) else d for f, d in zip(found, drafted)]

    def add_rows(self, contexts):
        self.model.add_rows(contexts)

    def select_rows(self, rows):
        self.model.select_rows(rows)

    def commit(self, paths):
        self.model.commit(paths)


def _trie_to_tree(keys: list[tuple], tree: DraftTree) -> DraftTree:
    """Lay out trie keys ``(parent_key|ROOT, token)`` breadth-first as a DraftTree (ranks by insertion)."""
    depth = {}
    for key in keys:
        depth[key] = 1 if key[0] == ROOT else depth[key[0]] + 1
    order = sorted(range(len(keys)), key=lambda i: (depth[keys[i]], i))
    index, seen = {}, {}
    for i in order:
        parent_key, tok = keys[i]
        parent = ROOT if parent_key == ROOT else index[parent_key]
        rank = seen.get(parent, 0)
        seen[parent] = rank + 1
        index[keys[i]] = tree.add(tok, parent, rank, 1.0, 0.0)
    return tree


def early_exit_model(target, layers: int):
    """The target's first ``layers`` decoder layers with its own final norm and LM head, sharing weights.

    Works for decoder-only models laid out as ``model.model.layers`` (Qwen2, Llama, Mistral, ...)."""
    inner = getattr(target, "model", None)
    total = len(getattr(inner, "layers", []))
    if not 1 <= layers < total:
        raise SpecdynError(f"early-exit needs 1 <= layers < {total} (the target's layer count), got {layers}")
    config = copy.copy(target.config)
    config.num_hidden_layers = layers
    if getattr(config, "layer_types", None):
        config.layer_types = config.layer_types[:layers]
    shallow = shallow_copy(target)
    shallow.model = shallow_copy(inner)
    shallow.model.layers = torch.nn.ModuleList(inner.layers[:layers])
    shallow.config = shallow.model.config = config
    return shallow


def shallow_copy(module: torch.nn.Module) -> torch.nn.Module:
    """A new module object sharing all submodules and tensors, whose own attributes can be replaced."""
    new = copy.copy(module)
    for registry in ("_modules", "_parameters", "_buffers"):
        setattr(new, registry, dict(getattr(module, registry)))
    return new
