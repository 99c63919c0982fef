"""Typed configuration, parsed once: defaults here; a TOML file and command-line flags give strings and
numbers, which become spec objects (:mod:`specdyn.specs`) when a config is made, and nowhere else.

A config is frozen. Spec fields accept their text form too (``DecodeConfig(tree="dynamic:...")``): it is
parsed on construction, so every config object holds objects. ``to_json`` gives the canonical strings
(TOML keys, manifest ``config``); ``trees_record`` the resolved trees a manifest records beside them.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from specdyn.adapter_spec import AdapterInfo, check_drafter_adapter, parse_adapter
from specdyn.defaults import DEFAULT_DRAFT, DEFAULT_DRAFTER, DEFAULT_TARGET, DEFAULT_TREE
from specdyn.errors import SpecdynError
from specdyn.files import read_text
from specdyn.specs import (
    Children, DomainTrees, DrafterSpec, Sampling, TreeSpec, check_children, check_drafter_tree, parse_children,
    parse_domain_trees, parse_drafter, parse_tree, tree_from_record, tree_record,
)


def _spec(default, parse):
    """A field holding a spec object, given as text in TOML and flags (``parse`` turns text into it)."""
    return field(default=default, metadata={"parse": parse})


SAMPLING_KEYS = ("temperature", "top_p", "children", "seed")  # how a config samples (see DecodeConfig.sampling)


@dataclass(frozen=True)
class DecodeConfig:
    """What every decoding job needs: the model pair, the drafter, the tree, the limits and the sampling
    setting (``temperature`` 0 = greedy; see :attr:`sampling`), how children are chosen, and the seed
    that, with each prompt's id, seeds that prompt's random draws. ``draft_adapter``: a `specdyn distill`
    adapter merged into the draft (or None)."""

    draft: str = DEFAULT_DRAFT
    target: str = DEFAULT_TARGET
    drafter: DrafterSpec = _spec(DEFAULT_DRAFTER, parse_drafter)
    tree: TreeSpec = _spec(DEFAULT_TREE, parse_tree)
    max_new_tokens: int = 128
    dtype: str = "auto"  # bfloat16 where the hardware runs it natively, else float32 (resolved before loading)
    device: str = "auto"
    temperature: float = 0.0
    top_p: float = 1.0
    children: Children = _spec(Children.TOPK, parse_children)
    seed: int = 0
    draft_adapter: AdapterInfo | None = _spec(None, parse_adapter)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if "parse" in f.metadata and isinstance(value, str):
                object.__setattr__(self, f.name, f.metadata["parse"](value))
            elif f.type == "float" and type(value) is int:  # TOML and Python write 1 for 1.0
                object.__setattr__(self, f.name, float(value))
        self.validate()

    def validate(self) -> None:
        """Reject values no run could use (model-dependent limits are checked before models load)."""
        if self.max_new_tokens < 1:
            raise SpecdynError(f"max_new_tokens must be >= 1 (got {self.max_new_tokens})")
        sampling = self.sampling  # checks temperature and top-p
        for tree in self.trees():
            check_drafter_tree(self.drafter, tree)
            check_children(self.children, self.drafter, tree, sampling)
        check_drafter_adapter(self.drafter, self.draft_adapter)

    @property
    def sampling(self) -> Sampling:
        """Temperature and top-p as the engine takes them (validated when the config is made)."""
        return Sampling(self.temperature, self.top_p)

    def trees(self) -> list[TreeSpec]:
        """Every tree this config may decode with."""
        return [self.tree]

    def to_json(self) -> dict:
        """Every setting as TOML would write it: spec objects as their canonical text."""
        return {f.name: _text(getattr(self, f.name)) for f in fields(self)}

    def sampling_json(self) -> dict:
        """The sampling keys of :meth:`to_json` (``temperature``, ``top_p``, ``children``, ``seed``)."""
        return {k: v for k, v in self.to_json().items() if k in SAMPLING_KEYS}

    def trees_record(self) -> dict:
        """The resolved trees behind the spec texts (see :func:`specdyn.specs.tree_record`)."""
        return {"tree": tree_record(self.tree)}

    def adapter_record(self) -> dict | None:
        """The draft adapter as a manifest records it beside the config (None without one)."""
        return self.draft_adapter.record() if self.draft_adapter else None


def _text(value):
    if value is None:
        return ""
    return value.text if hasattr(value, "text") else value


@dataclass(frozen=True)
class RunConfig(DecodeConfig):
    """A study run: a suite of prompts decoded with one configuration.

    The default token limit (160) is what makes the default study exceed the reference study's 99,768
    speculative nodes with the default pair and tree (the measured count is in README.md).
    ``domain_trees``: per-domain ``paths:`` trees (a folder as `specdyn budget` writes it) or None.
    ``seed`` serves twice here: it draws the default suite, and seeds each prompt's sampling stream."""

    max_new_tokens: int = 160
    suite: str = "default"
    per_domain: int = 50
    batch_size: int = 4
    domain_trees: DomainTrees | None = _spec(None, parse_domain_trees)

    def validate(self) -> None:
        super().validate()
        if self.per_domain < 1 or self.batch_size < 1:
            raise SpecdynError("per_domain and batch_size must be >= 1")

    def tree_for(self, domain: str) -> TreeSpec:
        """The tree ``domain`` is decoded with: its own paths file under ``domain_trees``, else ``tree``."""
        own = self.domain_trees.tree_for(domain) if self.domain_trees else None
        return own or self.tree

    def trees(self) -> list[TreeSpec]:
        return [self.tree, *(self.domain_trees.files.values() if self.domain_trees else ())]

    def trees_record(self) -> dict:
        files = self.domain_trees.files if self.domain_trees else {}
        return {**super().trees_record(), "domain_trees": {name: tree_record(t) for name, t in files.items()}}

    @classmethod
    def from_record(cls, config: dict, trees: dict | None, origin: str, adapter: dict | None = None) -> RunConfig:
        """The config a manifest recorded. Trees come from ``trees`` (:meth:`trees_record`) and the draft
        adapter from ``adapter`` (:meth:`adapter_record`), never from files; manifests written before trees
        were recorded (``trees`` None) read their files once more."""
        values = checked_values(cls, config, origin)
        if trees is not None:
            values |= _recorded_trees(values, trees, origin)
        if adapter is not None:
            values["draft_adapter"] = AdapterInfo.from_record(adapter, f"{origin} draft_adapter")
        return cls(**values)


def _recorded_trees(values: dict, trees: dict, origin: str) -> dict:
    if not isinstance(trees, dict) or not isinstance(trees.get("domain_trees", {}), dict):
        raise SpecdynError(f"{origin}: `trees` must be an object")
    out = {"tree": tree_from_record(trees.get("tree"), f"{origin} trees.tree")}
    folder = values.get("domain_trees")
    if folder:
        files = {name: tree_from_record(r, f"{origin} trees.domain_trees.{name}")
                 for name, r in trees.get("domain_trees", {}).items()}
        out["domain_trees"] = DomainTrees(Path(folder), files)
    return out


RUN_ONLY_KEYS = frozenset(f.name for f in fields(RunConfig)) - frozenset(f.name for f in fields(DecodeConfig))


def _raw_type(f) -> type:
    """What TOML or a flag must give for a field: text for specs, else the field's own type."""
    return str if "parse" in f.metadata else {"int": int, "str": str, "float": float}[str(f.type)]


def _accepts(kind: type, value) -> bool:
    """A float field takes an integer too (TOML's ``temperature = 1``); nothing else converts."""
    return type(value) is kind or (kind is float and type(value) is int)


def checked_values(cls, raw: dict, origin: str) -> dict:
    """``raw`` (TOML, flags or a manifest) checked against ``cls``'s fields: known keys, right types."""
    types = {f.name: _raw_type(f) for f in fields(cls)}
    for key, value in raw.items():
        if key not in types:
            raise SpecdynError(f"{origin}: unknown config key {key!r} (known: {', '.join(sorted(types))})")
        if not _accepts(types[key], value):
            raise SpecdynError(f"{origin}: {key} must be {types[key].__name__}, got {value!r}")
    return dict(raw)


def merge(config, overrides: dict, origin: str = "command line"):
    """A copy of ``config`` with ``overrides`` applied (None values are ignored), checked and parsed."""
    values = checked_values(type(config), {k: v for k, v in overrides.items() if v is not None}, origin)
    return replace(config, **values)


def read_toml(path: str | Path) -> dict:
    """The key/value pairs of a TOML config file."""
    text = read_text(path, "config")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecdynError(f"config {path} is not valid TOML: {exc}") from None


def load_toml(path: str | Path, cls=RunConfig):
    """A config of class ``cls`` from a TOML file; unknown keys and wrong types are errors."""
    return merge(cls(), read_toml(path), origin=str(path))
