"""Typed specifications, parsed once at the boundary: draft trees (``--tree``), drafters (``--drafter``) and
per-domain tree folders (``--domain-trees``), and the sampling setting (``--temperature``, ``--top-p``,
``--children``: :class:`Sampling` and :class:`Children`, defined in :mod:`specdyn.sampling_spec` and
re-exported here). Pure Python (no torch): the config, the run manifest, the
engine and the analyses all pass these objects around; nothing downstream parses a spec string again.

A spec's text is ``kind`` or ``kind:key=value,...``. Every kind is a frozen dataclass whose ``text`` is its
canonical form (written to manifests, compared on resume) and whose limits are known without expanding a
tree: trees say ``max_depth`` and ``max_nodes``. Integer arguments are declared with :func:`arg` (bounds,
default); :class:`KeyValueSpec` parses, checks and prints them.

To add a kind, write a frozen dataclass deriving from its family's base, :class:`TreeSpec` (with
:class:`KeyValueSpec` for ``key=value`` kinds) or :class:`DrafterSpec`, with ``KIND`` and ``HELP``; give it
the family's properties (trees: ``shape``, ``max_depth``, ``max_nodes``; drafters: ``uses_draft_model``,
``takes_dynamic_trees``), list it in ``TREE_KINDS`` or ``DRAFTER_KINDS``, and build its proposer in
:func:`specdyn.pipeline.build_proposer`. Another family (a sampling spec, say) is a new base class with
its own ``FAMILY``, kinds and ``parse_...`` function.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from enum import Enum
from functools import cached_property
from pathlib import Path
from typing import ClassVar

from specdyn.errors import SpecdynError
from specdyn.files import read_text
from specdyn.prior import AcceptancePrior, Profile, resolve_prior
from specdyn.sampling_spec import Children, Sampling, parse_children  # the sampling family, re-exported here

MAX_TREE_NODES = 1024  # verifying n nodes computes n + 1 rows of logits over the vocabulary (and an n x (context + n) mask)
MAX_RANK = 255  # sibling ranks index the draft's top-k: below this in paths files, topk and branch at most this
MAX_DYNAMIC_CANDIDATES = 1 << 16  # candidates a dynamic tree scores per step: topk + (depth - 1) * topk**2
MAX_NGRAM = 32  # longest suffix prompt lookup matches
MAX_VOCAB = 1 << 20  # tokens a truncated draft head keeps (checked against its token list before models load)
MAX_LAYERS = 1024  # early-exit layers (checked against the target's own layer count before it loads)
SUMMARY_FILE = "budget.json"  # the one JSON file of a --domain-trees folder that is not a domain's tree...
GLOBAL_FILE = "global.json"  # ...besides the single tree for every domain (`specdyn budget --global`)
MAX_ADAPTIVE_NODES = 64  # an adaptive tree re-solves Sequoia's DP online: O(nodes^2 * depth^2 * branch)
MAX_ADAPTIVE_DEPTH = 10
MAX_ADAPTIVE_BRANCH = 8

RankPath = tuple[int, ...]


def arg(low: int = 1, high: int = MAX_TREE_NODES, default: int | object = MISSING):
    """An integer argument of a key=value spec, with its bounds (inclusive) and an optional default."""
    return field(default=default, metadata={"low": low, "high": high})


def args_of(cls) -> list:
    """The arguments of a key=value spec (:func:`arg`, :func:`real`, :func:`choice` fields); other fields
    are not written in its text."""
    return [f for f in fields(cls) if "low" in f.metadata or "kind" in f.metadata]


# --------------------------------------------------------------------------------------------------
# Tree shapes: which rank paths a static tree contains.


@dataclass(frozen=True)
class TreeShape:
    """A static tree shape: the set of rank paths it holds, e.g. ``(0,), (1,), (0, 0)``, breadth-first.

    A rank path ``(r1, ..., rd)`` names the node reached by taking the r1-th most likely draft token,
    then the r2-th most likely child of that, and so on. The set is closed under prefixes.
    """

    paths: tuple[RankPath, ...]

    @property
    def depth(self) -> int:
        return max(len(p) for p in self.paths)

    @property
    def size(self) -> int:
        return len(self.paths)

    def child_ranks(self, prefix: RankPath) -> list[int]:
        """Sorted ranks of the children of the node at rank path ``prefix``."""
        return sorted(p[-1] for p in self.paths if len(p) == len(prefix) + 1 and p[:-1] == prefix)

    def to_json(self) -> list[list[int]]:
        return [list(p) for p in self.paths]


def full_tree_size(depth: int, branch: int) -> int:
    """Nodes of the full ``branch``-ary tree of ``depth`` levels, counted without building it; any count
    above :data:`MAX_TREE_NODES` is returned as soon as it is passed (so huge arguments cost nothing)."""
    total, level = 0, 1
    for _ in range(depth):
        level *= branch
        total += level
        if total > MAX_TREE_NODES:
            break
    return total


def static_shape(depth: int, branch: int) -> TreeShape:
    """The full tree of the given depth where every node has ``branch`` children."""
    level: list[RankPath] = [()]
    paths: list[RankPath] = []
    for _ in range(depth):
        level = [p + (r,) for p in level for r in range(branch)]
        paths.extend(level)
    return TreeShape(tuple(paths))


def _rank_path(item: object, origin: str) -> RankPath:
    if not isinstance(item, list) or not item or not all(type(r) is int and 0 <= r < MAX_RANK for r in item):
        raise SpecdynError(f"{origin}: every path must be a non-empty list of ranks in [0, {MAX_RANK}), got {item!r}")
    return tuple(item)


def shape_from_paths(raw: object, origin: str = "paths") -> TreeShape:
    """Validate a JSON-like list of rank paths (each once, every prefix present) and return the shape."""
    if not isinstance(raw, list) or not raw:
        raise SpecdynError(f"{origin}: expected a non-empty JSON list of paths (lists of sibling ranks)")
    if len(raw) > MAX_TREE_NODES:
        raise SpecdynError(f"{origin}: {len(raw)} paths; a tree holds at most {MAX_TREE_NODES} nodes")
    paths: set[RankPath] = set()
    for item in raw:
        path = _rank_path(item, origin)
        if path in paths:
            raise SpecdynError(f"{origin}: path {list(path)} is listed twice")
        paths.add(path)
    for p in paths:
        if len(p) > 1 and p[:-1] not in paths:
            raise SpecdynError(f"{origin}: path {list(p)} is present but its prefix {list(p[:-1])} is not")
    return TreeShape(tuple(sorted(paths, key=lambda p: (len(p), p))))


# --------------------------------------------------------------------------------------------------
# key=value specs


def kv_pairs(text: str, spec: str, flag: str) -> dict[str, str]:
    """Parse ``key=value`` pairs separated by commas (the part of a spec after ``kind:``); a key given
    twice is an error. Values stay text: :meth:`KeyValueSpec.from_args` converts them by field type."""
    args: dict[str, str] = {}
    for part in filter(None, text.split(",")):
        key, sep, value = (s.strip() for s in part.partition("="))
        if not sep or not value:
            raise SpecdynError(f"malformed {flag} {spec!r}: expected key=value pairs, got {part!r}")
        if key in args:
            raise SpecdynError(f"malformed {flag} {spec!r}: key {key!r} is given twice")
        args[key] = value
    return args


def real(low: float, high: float, default: float | object = MISSING):
    """A number argument of a key=value spec (a float), with its bounds (inclusive) and an optional default."""
    return field(default=default, metadata={"low": low, "high": high, "kind": float})


def choice(kind: type[Enum], default: Enum | object = MISSING):
    """An argument of a key=value spec naming a member of the enum ``kind`` by its value."""
    return field(default=default, metadata={"kind": kind})


def _convert(f, value: str, spec: str, flag: str):
    """The text ``value`` of field ``f`` as the field's type (int by default, float, or an enum)."""
    kind, bad = f.metadata.get("kind", int), f"malformed {flag} {spec!r}: "
    if kind is int:
        if not re.fullmatch(r"-?[0-9]+", value):
            raise SpecdynError(f"{bad}expected key=integer pairs, got '{f.name}={value}'")
        try:
            return int(value)
        except ValueError:  # more digits than Python converts
            raise SpecdynError(f"{bad}{f.name} is far too large") from None
    try:
        return kind(value)
    except ValueError:
        expected = "a number" if kind is float else "one of " + ", ".join(m.value for m in kind)
        raise SpecdynError(f"{bad}{f.name} takes {expected}, got '{f.name}={value}'") from None


def _checked(spec, f, value):
    """``value`` of field ``f`` checked against its type and bounds (a float field accepts an int)."""
    kind, where = f.metadata.get("kind", int), f"{spec.KIND} {spec.FAMILY}"
    if isinstance(kind, type) and issubclass(kind, Enum):
        if not isinstance(value, kind):
            raise SpecdynError(f"{where}: {f.name} must be one of {', '.join(m.value for m in kind)} (got {value!r})")
        return value
    if type(value) is not int and (kind is int or type(value) is not float or not math.isfinite(value)):
        raise SpecdynError(f"{where}: {f.name} must be {'an integer' if kind is int else 'a number'} (got {value!r})")
    value = kind(value)
    if not f.metadata["low"] <= value <= f.metadata["high"]:
        bound = f">= {f.metadata['low']}" if value < f.metadata["low"] else f"<= {f.metadata['high']}"
        raise SpecdynError(f"{where} needs {f.name} {bound} (got {f.name}={value})")
    return value


def _text(value) -> str:
    return value.value if isinstance(value, Enum) else str(value)


class KeyValueSpec:
    """A spec written ``KIND`` or ``KIND:key=value,...`` over the dataclass's fields: integers (:func:`arg`),
    numbers (:func:`real`) and enum members (:func:`choice`)."""

    KIND: ClassVar[str]
    HELP: ClassVar[str]  # the usage line, e.g. ``static:depth=D,branch=B``
    FAMILY: ClassVar[str]  # "tree" or "drafter": the option ``--FAMILY`` it comes from, for messages
    TEXT_DEFAULTS: ClassVar[bool] = True  # whether ``text`` writes arguments left at their defaults

    def __post_init__(self) -> None:
        for f in args_of(self):
            object.__setattr__(self, f.name, _checked(self, f, getattr(self, f.name)))

    @classmethod
    def from_args(cls, args: dict[str, str], spec: str):
        names = {f.name: f for f in args_of(cls)}
        required = {f.name for f in args_of(cls) if f.default is MISSING}
        if set(args) - set(names) or required - set(args):
            unknown = ", ".join(repr(k) for k in sorted(set(args) - set(names)))
            detail = f" (unknown key {unknown})" if unknown else ""
            raise SpecdynError(f"malformed --{cls.FAMILY} {spec!r}: expected exactly {cls.HELP.split(' ')[0]}{detail}")
        return cls(**{k: _convert(names[k], v, spec, f"--{cls.FAMILY}") for k, v in args.items()})

    @property
    def text(self) -> str:
        """The canonical spec text: every argument written out, defaults included unless the kind says
        otherwise (``TEXT_DEFAULTS``)."""
        shown = [f for f in args_of(self) if self.TEXT_DEFAULTS or getattr(self, f.name) != f.default]
        args = ",".join(f"{f.name}={_text(getattr(self, f.name))}" for f in shown)
        return f"{self.KIND}:{args}" if args else self.KIND

    def __str__(self) -> str:
        return self.text


def _parse_kv(spec: str, kinds: Mapping[str, type], noun: str, usage: str):
    kind, _, rest = spec.partition(":")
    cls = kinds.get(kind.strip())
    if cls is None:
        raise SpecdynError(f"malformed --{noun} {spec!r}: unknown {noun} {kind!r}; use {usage}")
    return cls.from_args(kv_pairs(rest, spec, f"--{noun}"), spec)


# --------------------------------------------------------------------------------------------------
# Trees (`--tree`)


class TreeSpec:
    """What every tree kind says: ``text`` (canonical), ``shape`` (its :class:`TreeShape`, or None when
    the tree is chosen at every step), ``max_depth`` and ``max_nodes`` (known without building it)."""

    FAMILY: ClassVar[str] = "tree"
    shape: TreeShape | None
    text: str
    max_depth: int
    max_nodes: int

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class StaticTree(KeyValueSpec, TreeSpec):
    """The full tree of ``depth`` levels with ``branch`` children per node (the draft's top-``branch``)."""

    KIND: ClassVar[str] = "static"
    HELP: ClassVar[str] = "static:depth=D,branch=B"
    depth: int = arg()
    branch: int = arg(high=MAX_RANK)

    def __post_init__(self) -> None:
        super().__post_init__()
        if full_tree_size(self.depth, self.branch) > MAX_TREE_NODES:
            raise SpecdynError(f"--tree {self.text} has more than {MAX_TREE_NODES} nodes (the most a tree may hold)")

    @cached_property
    def shape(self) -> TreeShape:
        return static_shape(self.depth, self.branch)

    @property
    def max_depth(self) -> int:
        return self.depth

    @property
    def max_nodes(self) -> int:
        return full_tree_size(self.depth, self.branch)


@dataclass(frozen=True)
class PathsTree(TreeSpec):
    """A static tree read from a JSON file of rank paths (``paths:FILE``); ``source`` is the file's
    absolute path, ``shape`` its content when it was read."""

    KIND: ClassVar[str] = "paths"
    HELP: ClassVar[str] = "paths:FILE"
    source: Path
    shape: TreeShape

    @classmethod
    def load(cls, file: str) -> PathsTree:
        """Read and check ``file`` (a JSON list of rank paths)."""
        if not file:
            raise SpecdynError("malformed --tree 'paths:': expected paths:FILE")
        path = Path(file).expanduser().resolve()
        return cls(path, shape_from_paths(_read_json(path, file), origin=file))

    @property
    def text(self) -> str:
        return f"{self.KIND}:{self.source}"

    @property
    def max_depth(self) -> int:
        return self.shape.depth

    @property
    def max_nodes(self) -> int:
        return self.shape.size


def _read_json(path: Path, name: str) -> object:
    text = read_text(path, "tree paths file")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecdynError(f"tree paths file {name!r} is not valid JSON: {exc}") from None


class NodesDepthLimits:
    """For tree kinds chosen at every step, whose ``nodes`` and ``depth`` arguments are their limits."""

    nodes: int
    depth: int

    @property
    def max_depth(self) -> int:
        return self.depth

    @property
    def max_nodes(self) -> int:
        return self.nodes


@dataclass(frozen=True)
class DynamicTree(NodesDepthLimits, KeyValueSpec, TreeSpec):
    """EAGLE-2 style dynamic tree: expand the ``topk`` best frontier nodes per level for ``depth`` levels,
    then keep the ``nodes`` best nodes overall by cumulative draft probability."""

    KIND: ClassVar[str] = "dynamic"
    HELP: ClassVar[str] = "dynamic:nodes=N,depth=D,topk=K"
    nodes: int = arg()
    depth: int = arg()
    topk: int = arg(high=MAX_RANK)
    shape: ClassVar[None] = None  # no static shape: the tree is chosen at every step

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.candidates > MAX_DYNAMIC_CANDIDATES:
            raise SpecdynError(f"--tree {self.text} scores {self.candidates} candidates per step; at most "
                               f"{MAX_DYNAMIC_CANDIDATES} (topk + (depth - 1) * topk^2)")

    @property
    def candidates(self) -> int:
        return self.topk + (self.depth - 1) * self.topk**2


@dataclass(frozen=True)
class AdaptiveTree(NodesDepthLimits, KeyValueSpec, TreeSpec):
    """A tree per request that follows the request's own acceptance: Beta beliefs per (depth, rank) start
    from a prior (``profile``'s acceptance pooled over domains, else a weak built-in prior) and learn from
    every verification; every ``every`` steps the request's tree is re-solved with Sequoia's DP (at most
    ``nodes`` nodes, ``depth`` levels, ``branch`` children per node) under the measured cost model.
    ``weight``: pseudo-observations each profile cell counts for. See ``docs/engine.md``."""

    KIND: ClassVar[str] = "adaptive"
    HELP: ClassVar[str] = "adaptive[:every=K,nodes=N,depth=D,branch=B,weight=W]"
    every: int = arg(default=8)
    nodes: int = arg(high=MAX_ADAPTIVE_NODES, default=16)
    depth: int = arg(high=MAX_ADAPTIVE_DEPTH, default=6)
    branch: int = arg(high=MAX_ADAPTIVE_BRANCH, default=4)
    weight: int = arg(high=10_000, default=8)
    profile: Profile | None = None  # set from --profile at the boundary (not part of the text)
    shape: ClassVar[None] = None  # no static shape: each request's tree is chosen as it goes

    @cached_property
    def prior(self) -> AcceptancePrior:
        """The prior every request starts from (resolved from ``profile``, or the weak prior)."""
        return resolve_prior(self.profile, self.depth, self.branch, self.weight)


TREE_KINDS: dict[str, type] = {k.KIND: k for k in (StaticTree, DynamicTree, AdaptiveTree)}  # key=value kinds
TREE_HELP = " | ".join(k.HELP for k in (StaticTree, PathsTree, DynamicTree, AdaptiveTree))


def parse_tree(spec: str) -> TreeSpec:
    """``static:depth=D,branch=B``, ``paths:FILE`` (read now), ``dynamic:nodes=N,depth=D,topk=K`` or
    ``adaptive[:every=K,nodes=N,depth=D,branch=B,weight=W]`` (without a profile)."""
    kind, _, rest = spec.partition(":")
    if kind.strip() == PathsTree.KIND:
        return PathsTree.load(rest)
    return _parse_kv(spec, TREE_KINDS, "tree", TREE_HELP)


def tree_record(tree: TreeSpec) -> dict:
    """The tree as a manifest records it: its spec text and, for static shapes, its rank paths; for an
    adaptive tree also its profile's identity and counts and the prior they resolve to."""
    record = {"spec": tree.text, "paths": tree.shape.to_json() if tree.shape is not None else None}
    if isinstance(tree, AdaptiveTree):
        record |= {"profile": tree.profile.to_json() if tree.profile else None, "prior": tree.prior.to_json()}
    return record


def tree_from_record(record: object, origin: str) -> TreeSpec:
    """A tree from :func:`tree_record`'s form; a ``paths:`` tree is rebuilt from the recorded paths (its
    file is not read: it may have changed or vanished since)."""
    if not isinstance(record, dict) or not isinstance(record.get("spec"), str):
        raise SpecdynError(f"{origin}: expected {{\"spec\": TEXT, \"paths\": [...]}}, got {record!r}")
    kind, _, file = record["spec"].partition(":")
    if kind == PathsTree.KIND:
        return PathsTree(Path(file), shape_from_paths(record.get("paths"), origin))
    tree = parse_tree(record["spec"])
    if isinstance(tree, AdaptiveTree) and record.get("profile") is not None:
        return replace(tree, profile=Profile.from_json(record["profile"], origin))
    return tree


# --------------------------------------------------------------------------------------------------
# Drafters (`--drafter`)


class DrafterSpec(KeyValueSpec):
    """What every drafter kind says: whether it runs the ``--draft`` model (else none is loaded), whether
    it can draft dynamic trees, and whether it has a distribution to draw children from
    (``--children sampled``)."""

    FAMILY: ClassVar[str] = "drafter"
    uses_draft_model: ClassVar[bool] = False
    takes_dynamic_trees: ClassVar[bool] = True
    draws_children: ClassVar[bool] = True


class Quant(Enum):
    """Weights a draft model runs with: as loaded (``none``) or int8 (``int8``, CPU)."""

    NONE = "none"
    INT8 = "int8"


@dataclass(frozen=True)
class ModelDrafter(DrafterSpec):
    """The ``--draft`` model expands the tree, optionally made cheaper (each option is lossless: only the
    draft changes, verification does not, so only acceptance can move):

    - ``quant=int8``: int8 weights and dynamically quantized activations in every linear layer (CPU);
    - ``vocab=K``: an LM head over the K most frequent tokens only (FR-Spec; the token list is the one
      made for the draft's tokenizer, :mod:`specdyn.token_lists`); 0 = the full vocabulary;
    - ``stop=V``: early stop: a node whose value (product of draft probabilities on its root path) is
      below V gets no children, and a level with no such node left is not drafted; 0 = never;
    - ``lookup=N``: prompt lookup when the context's last N or more tokens occurred earlier in it (no draft
      pass at all for that step), the model otherwise; 0 = never. Takes static and paths trees.

    Its text leaves out options at their defaults, so the plain drafter is just ``model``."""

    KIND: ClassVar[str] = "model"
    HELP: ClassVar[str] = "model[:quant=int8,vocab=K,stop=V,lookup=N] (the --draft model; default)"
    TEXT_DEFAULTS: ClassVar[bool] = False
    uses_draft_model: ClassVar[bool] = True
    quant: Quant = choice(Quant, Quant.NONE)
    vocab: int = arg(low=0, high=MAX_VOCAB, default=0)
    stop: float = real(0.0, 1.0, default=0.0)
    lookup: int = arg(low=0, high=MAX_NGRAM, default=0)

    @property
    def takes_dynamic_trees(self) -> bool:
        return self.lookup == 0

    @property
    def draws_children(self) -> bool:
        return self.lookup == 0  # a lookup step's children come from the context, not the draft


@dataclass(frozen=True)
class LookupDrafter(DrafterSpec):
    """Prompt lookup: continuations of the longest earlier match (up to ``ngram`` tokens) of the context's
    suffix; no model."""

    KIND: ClassVar[str] = "lookup"
    HELP: ClassVar[str] = "lookup[:ngram=N] (prompt lookup, no draft model)"
    takes_dynamic_trees: ClassVar[bool] = False
    draws_children: ClassVar[bool] = False
    ngram: int = arg(high=MAX_NGRAM, default=3)


@dataclass(frozen=True)
class EarlyExitDrafter(DrafterSpec):
    """The target's first ``layers`` layers with its own final norm and head (fewer than the target has)."""

    KIND: ClassVar[str] = "early-exit"
    HELP: ClassVar[str] = "early-exit:layers=K (the target's first K layers + its head)"
    layers: int = arg(high=MAX_LAYERS)


DRAFTER_KINDS: dict[str, type] = {k.KIND: k for k in (ModelDrafter, LookupDrafter, EarlyExitDrafter)}
DRAFTER_HELP = " | ".join(k.HELP for k in DRAFTER_KINDS.values())


def parse_drafter(spec: str) -> DrafterSpec:
    """``model[:quant=int8,vocab=K,stop=V,lookup=N]``, ``lookup[:ngram=N]`` or ``early-exit:layers=K``."""
    return _parse_kv(spec, DRAFTER_KINDS, "drafter", DRAFTER_HELP)


def _chosen_kind(tree: TreeSpec) -> str:
    """"a dynamic one", "an adaptive one": a tree kind without a static shape, for messages."""
    return f"{'an' if tree.KIND[0] in 'aeiou' else 'a'} {tree.KIND} one"


def check_drafter_tree(drafter: DrafterSpec, tree: TreeSpec) -> None:
    """Refuse a drafter that cannot draft this kind of tree."""
    if tree.shape is None and not drafter.takes_dynamic_trees:
        raise SpecdynError(f"the {drafter.text} drafter takes a static or paths tree, not {_chosen_kind(tree)} ({tree.text})")


def check_children(children: Children, drafter: DrafterSpec, tree: TreeSpec, sampling: Sampling) -> None:
    """Refuse children drawn from the draft where nothing can be drawn: at temperature 0, from a drafter
    without a distribution (prompt lookup), or in a dynamic tree (whose cut would bias the draws) or an
    adaptive one (whose beliefs learn from top-ranked children)."""
    if children is not Children.SAMPLED:
        return
    if sampling.greedy:
        raise SpecdynError("--children sampled draws children at temperature > 0; set --temperature above 0 "
                           "or use --children topk")
    if not drafter.draws_children:
        raise SpecdynError(f"--children sampled needs a drafter with a distribution; the {drafter.text} drafter "
                           "has none (use --children topk)")
    if tree.shape is None:
        raise SpecdynError(f"--children sampled takes a static or paths tree, not {_chosen_kind(tree)} ({tree.text}); "
                           f"{tree.KIND} trees choose their children deterministically (use --children topk)")


# --------------------------------------------------------------------------------------------------
# Per-domain trees (`--domain-trees DIR`)


def domain_filename(domain: str) -> str:
    """``<domain>.json`` with every character outside ``[A-Za-z0-9_.-]`` replaced by ``_`` (the file
    `specdyn budget` writes for a domain and `specdyn run --domain-trees` reads)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", domain).strip(".") or "domain"
    return f"{safe}.json" if f"{safe}.json" not in (SUMMARY_FILE, GLOBAL_FILE) else f"{safe}_domain.json"


@dataclass(frozen=True)
class DomainTrees:
    """A folder of per-domain ``paths:`` files, read once: ``files`` maps each file name to its tree."""

    folder: Path
    files: Mapping[str, PathsTree]

    @classmethod
    def load(cls, folder: str) -> DomainTrees:
        """Read every ``*.json`` in ``folder`` except ``budget.json`` and ``global.json``; each must be a
        paths file."""
        path = Path(folder).expanduser().resolve()
        if not path.exists():
            raise SpecdynError(f"--domain-trees {folder}: no such folder")
        if not path.is_dir():
            raise SpecdynError(f"--domain-trees {folder} is not a folder (give the folder `specdyn budget` wrote)")
        files = sorted(p for p in path.glob("*.json") if p.name not in (SUMMARY_FILE, GLOBAL_FILE))
        return cls(path, {p.name: PathsTree.load(str(p)) for p in files})

    def tree_for(self, domain: str) -> PathsTree | None:
        return self.files.get(domain_filename(domain))

    @property
    def text(self) -> str:
        return str(self.folder)


def parse_domain_trees(folder: str) -> DomainTrees | None:
    """``""`` (none) or a folder of per-domain paths files."""
    return DomainTrees.load(folder) if folder else None
