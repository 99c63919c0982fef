"""Draft trees: a plain dataclass plus small pure functions that derive masks, positions and paths.

Nodes are numbered in breadth-first order (every parent precedes its children). ``parents[i] == -1``
means node i is a child of the last committed token (the "root").
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from specdyn.errors import SpecdynError

ROOT = -1
MAX_RANK = 255  # sibling ranks in a paths file must be below this (they index the draft's top-k)


@dataclass
class DraftTree:
    """A token tree proposed for one speculative step.

    ``draft_probs[i]`` is the drafter's probability of ``tokens[i]`` at its parent position and
    ``draft_entropy[i]`` the entropy (nats) of the drafter's distribution there (both temperature 1).

    ``proposals`` says how each sibling group was chosen, which sampling verification needs: a parent
    (ROOT for the top level) maps to the ``[vocab]`` distribution its children were drawn from, without
    replacement and in index order; a group not listed is deterministic (the draft's top-ranked tokens, a
    lookup match). A tree lives for one step, so these tensors are freed with it.
    """

    tokens: list[int] = field(default_factory=list)
    parents: list[int] = field(default_factory=list)
    ranks: list[int] = field(default_factory=list)
    draft_probs: list[float] = field(default_factory=list)
    draft_entropy: list[float] = field(default_factory=list)
    proposals: dict[int, torch.Tensor] = field(default_factory=dict)

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


# --------------------------------------------------------------------------------------------------
# Tree shapes: which (rank-)paths a static tree contains.


@dataclass(frozen=True)
class TreeShape:
    """A static tree shape: the set of rank paths it holds, e.g. ``(0,), (1,), (0, 0)``.

    A rank path ``(r1, ..., rd)`` names the node reached by taking the r1-th most likely draft token,
    then the r2-th most likely child of that, and so on. The set is closed under prefixes.
    """

    paths: tuple[tuple[int, ...], ...]

    @property
    def depth(self) -> int:
        return max(len(p) for p in self.paths)

    @property
    def size(self) -> int:
        return len(self.paths)

    def child_ranks(self, prefix: tuple[int, ...]) -> list[int]:
        """Sorted ranks of the children of the node at rank path ``prefix``."""
        return sorted(p[-1] for p in self.paths if len(p) == len(prefix) + 1 and p[:-1] == prefix)


def static_shape(depth: int, branch: int) -> TreeShape:
    """The full tree of the given depth where every node has ``branch`` children."""
    if depth < 1 or branch < 1:
        raise SpecdynError(f"static tree needs depth >= 1 and branch >= 1 (got depth={depth}, branch={branch})")
    level: list[tuple[int, ...]] = [()]
    paths: list[tuple[int, ...]] = []
    for _ in range(depth):
        level = [p + (r,) for p in level for r in range(branch)]
        paths.extend(level)
    return TreeShape(tuple(paths))


def shape_from_paths(raw: object, origin: str = "paths") -> TreeShape:
    """Validate a JSON-like list of rank paths and return the shape in breadth-first order."""
    if not isinstance(raw, list) or not raw:
        raise SpecdynError(f"{origin}: expected a non-empty JSON list of paths (lists of sibling ranks)")
    paths = set()
    for item in raw:
        if not isinstance(item, list) or not item or not all(type(r) is int and 0 <= r < MAX_RANK for r in item):
            raise SpecdynError(f"{origin}: every path must be a non-empty list of ranks in [0, {MAX_RANK}), got {item!r}")
        paths.add(tuple(item))
    for p in paths:
        if len(p) > 1 and p[:-1] not in paths:
            raise SpecdynError(f"{origin}: path {list(p)} is present but its prefix {list(p[:-1])} is not")
    return TreeShape(tuple(sorted(paths, key=lambda p: (len(p), p))))


# --------------------------------------------------------------------------------------------------
# `--tree` specifications.


@dataclass(frozen=True)
class DynamicSpec:
    """EAGLE-2 style dynamic tree: expand the ``topk`` best frontier nodes per level for ``depth`` levels,
    then keep the ``nodes`` best nodes overall by cumulative draft probability."""

    nodes: int
    depth: int
    topk: int


TreeSpec = TreeShape | DynamicSpec


def kv_args(text: str, spec: str, flag: str = "--tree") -> dict[str, int]:
    """Parse ``key=integer`` pairs separated by commas (the argument part of a ``--tree``/``--drafter`` spec)."""
    args = {}
    for part in filter(None, text.split(",")):
        key, sep, value = part.partition("=")
        if not sep or not re.fullmatch(r"\s*-?[0-9]+\s*", value):
            raise SpecdynError(f"malformed {flag} {spec!r}: expected key=integer pairs, got {part!r}")
        args[key.strip()] = int(value)
    return args


def _require(args: dict[str, int], keys: tuple[str, ...], spec: str) -> list[int]:
    if set(args) != set(keys):
        raise SpecdynError(f"malformed --tree {spec!r}: expected exactly {', '.join(k + '=N' for k in keys)}")
    return [args[k] for k in keys]


def parse_tree_spec(spec: str) -> TreeSpec:
    """Parse ``static:depth=D,branch=B``, ``paths:FILE`` (JSON list of rank paths) or
    ``dynamic:nodes=N,depth=D,topk=K``."""
    kind, _, rest = spec.partition(":")
    if kind == "static":
        return static_shape(*_require(kv_args(rest, spec), ("depth", "branch"), spec))
    if kind == "paths":
        return shape_from_paths(_read_json(rest), origin=rest)
    if kind == "dynamic":
        nodes, depth, topk = _require(kv_args(rest, spec), ("nodes", "depth", "topk"), spec)
        if nodes < 1 or depth < 1 or topk < 1:
            raise SpecdynError(f"malformed --tree {spec!r}: nodes, depth and topk must all be >= 1")
        return DynamicSpec(nodes, depth, topk)
    raise SpecdynError(f"malformed --tree {spec!r}: use static:depth=D,branch=B, paths:FILE or dynamic:nodes=N,depth=D,topk=K")


def _read_json(path: str) -> object:
    try:
        return json.loads(Path(path).read_text())
    except OSError as exc:
        raise SpecdynError(f"cannot read tree paths file {path!r}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise SpecdynError(f"tree paths file {path!r} is not valid JSON: {exc}") from None


def shape_to_paths_json(shape: TreeShape) -> str:
    """Serialize a shape as the JSON list accepted by ``paths:FILE``."""
    return json.dumps([list(p) for p in shape.paths])

